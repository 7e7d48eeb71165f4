"""Who may call what: a bearer token read from ``[http] token_file``, or a login cookie.

* Write endpoints always need the token; with no token configured they answer 403 with a
  message saying how to configure one. Read endpoints need it only with ``protect_reads``.
* API clients send ``Authorization: Bearer <token>``. Browsers log in once through ``/login``,
  which sets an HttpOnly, SameSite=Strict cookie; the cookie holds an HMAC of the token (not the
  token itself), so rotating the token logs every browser out.
* A request authenticated by the cookie that changes state (POST) must also come from this
  site: SameSite=Strict keeps the cookie off cross-site requests, and the Origin (or Referer)
  host must be the Host the request was sent to. Bearer requests are not CSRF-prone.
* Every comparison is constant-time (``hmac.compare_digest``).
* A wrong token (bearer or login form) is a failed login: logged with the client's address and
  counted against it; an address with too many gets 429 for every token it sends (``throttle``).
"""

from __future__ import annotations

import hashlib
import hmac
from enum import StrEnum
from urllib.parse import urlsplit

from aiohttp import web

from vultr_scraper_worker.api.errors import ApiError
from vultr_scraper_worker.api.throttle import LoginThrottle, client_address

SESSION_COOKIE = "vs_session"
SESSION_MAX_AGE = 30 * 24 * 3600
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

NO_TOKEN_MESSAGE = (
    "no API token is configured, so this server refuses {what}: write a long random token to "
    "a file only the worker can read (e.g. `openssl rand -hex 32 > /etc/vultr-scraper/token`), "
    "set [http] token_file to its path (or VULTR_SCRAPER__HTTP__TOKEN_FILE) and restart"
)


class Access(StrEnum):
    """Who may call an endpoint; each ``Route`` declares one."""

    OPEN = "open"  # never needs the token (health check, OpenAPI document, login form)
    READ = "read"  # open unless [http] protect_reads
    WRITE = "write"  # always needs the token
    BADGE = "badge"  # open only with [http] public_badges, else needs the token


def token_needed(access: Access, *, protect_reads: bool, public_badges: bool) -> bool:
    """The one rule, for the server and for the OpenAPI document alike."""
    if access is Access.BADGE:
        return not public_badges
    return access is Access.WRITE or (access is Access.READ and protect_reads)


class Authenticator:
    def __init__(
        self,
        token: str | None,
        *,
        protect_reads: bool,
        public_badges: bool = False,
        throttle: LoginThrottle | None = None,
    ) -> None:
        self._token = token.encode() if token else None
        self.protect_reads = protect_reads
        self.public_badges = public_badges
        self.throttle = throttle or LoginThrottle(0)
        self._session = (
            hmac.new(self._token, b"vultr-scraper session v1", hashlib.sha256).hexdigest()
            if self._token
            else None
        )

    @property
    def configured(self) -> bool:
        return self._token is not None

    def needs_token(self, access: Access) -> bool:
        return token_needed(
            access, protect_reads=self.protect_reads, public_badges=self.public_badges
        )

    def token_matches(self, candidate: str) -> bool:
        if self._token is None:
            return False
        return hmac.compare_digest(_raw(candidate), self._token)

    def login(self, request: web.Request, candidate: str) -> bool:
        """Whether ``candidate`` is the token, as a login attempt of the request's client: 429
        (``ApiError``) while the client is throttled, and a wrong token logged and counted."""
        client = client_address(request)
        self.throttle.check(client)
        if self.token_matches(candidate):
            self.throttle.succeeded(client)
            return True
        self.throttle.failed(client, request.path)
        return False

    def session_value(self) -> str:
        if self._session is None:
            raise ApiError(403, NO_TOKEN_MESSAGE.format(what="logins"))
        return self._session

    def session_valid(self, request: web.Request) -> bool:
        value = request.cookies.get(SESSION_COOKIE)
        if not value or self._session is None:
            return False
        return hmac.compare_digest(_raw(value), self._session.encode())

    def authenticated(self, request: web.Request) -> bool:
        """True when the request carries a valid token or a valid login cookie (no CSRF check)."""
        header = request.headers.get("Authorization", "")
        scheme, _, credential = header.partition(" ")
        if scheme.lower() == "bearer" and credential.strip() and self._token is not None:
            if self.login(request, credential.strip()):
                return True
        return self.session_valid(request)

    def authorize(self, request: web.Request, access: Access) -> None:
        """Return if ``request`` may use an endpoint of this ``access``; raise ApiError if not."""
        if not self.needs_token(access):
            return
        if self._token is None:
            what = {
                Access.WRITE: "write requests",
                Access.BADGE: "badges (public_badges is off)",
            }.get(access, "reads (protect_reads is on)")
            raise ApiError(403, NO_TOKEN_MESSAGE.format(what=what))
        header = request.headers.get("Authorization")
        if header is not None:
            scheme, _, credential = header.partition(" ")
            if scheme.lower() != "bearer" or not credential.strip():
                raise _unauthorized("the Authorization header must be `Bearer <token>`")
            if not self.login(request, credential.strip()):
                raise _unauthorized("invalid token", error="invalid_token")
            return
        if self.session_valid(request):
            if request.method not in _SAFE_METHODS:
                check_same_origin(request)
            return
        raise _unauthorized(
            "authentication required: send `Authorization: Bearer <token>`, or log in at /login"
        )


def _raw(text: str) -> bytes:
    """Header text as bytes, whatever it holds: aiohttp may hand over undecodable bytes as
    surrogates, which plain ``encode()`` refuses (a 500 found by the fuzzer)."""
    return text.encode("utf-8", "surrogatepass")


def _unauthorized(message: str, *, error: str = "") -> ApiError:
    challenge = 'Bearer realm="vultr-scraper"'
    if error:
        challenge += f', error="{error}"'
    return ApiError(401, message, headers={"WWW-Authenticate": challenge})


def check_same_origin(request: web.Request) -> None:
    """Refuse a state-changing browser request that did not come from a page of this site."""
    fetch_site = request.headers.get("Sec-Fetch-Site")
    if fetch_site is not None and fetch_site not in ("same-origin", "none"):
        raise ApiError(403, f"cross-site request refused (Sec-Fetch-Site: {fetch_site})")
    source = request.headers.get("Origin") or request.headers.get("Referer")
    if not source or source == "null":
        raise ApiError(403, "cross-site check failed: the request has no Origin or Referer header")
    try:
        source_host = urlsplit(source).netloc.lower()
    except ValueError:
        source_host = ""
    if not source_host or source_host != request.host.lower():
        raise ApiError(403, "cross-site request refused: Origin does not match this site")


def is_https(request: web.Request) -> bool:
    forwarded = request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip().lower()
    return request.secure or forwarded == "https"


def set_session_cookie(response: web.StreamResponse, request: web.Request, value: str) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        value,
        max_age=SESSION_MAX_AGE,
        path="/",
        httponly=True,
        samesite="Strict",
        secure=is_https(request),
    )


def clear_session_cookie(response: web.StreamResponse) -> None:
    response.del_cookie(SESSION_COOKIE, path="/")
