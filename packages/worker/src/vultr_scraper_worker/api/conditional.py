"""Conditional GET and compression for every successful read (API, feed, metrics, pages).

* A strong ``ETag`` (a hash of the body) on every 200 answer to GET or HEAD; a request whose
  ``If-None-Match`` names it gets ``304 Not Modified`` with no body, so a feed reader polling
  ``/feed.atom`` downloads the feed only when it changed.
* ``Cache-Control: no-cache`` on those answers (store, but ask before reuse: the ETag makes the
  question cheap) instead of ``no-store``; ``private`` when the request carried credentials.
  Everything else (errors, redirects, answers that set a cookie) stays ``no-store``.
* gzip when the client accepts it and the body is larger than ``GZIP_MIN_BYTES``. The gzipped
  representation has its own strong tag (``"<hash>-gzip"``); ``If-None-Match`` is compared
  weakly (RFC 9110 13.1.2), so either tag revalidates the same content.

For the routes in ``CHEAP_VERSIONS`` (the Atom feed) the tag is not a hash of the body but of
what the body is made from, read from Redis in one round trip before the handler runs: the
change feed's newest id and length (entries are never changed, only added and trimmed), plus
the request's URL and the code's version. A matching ``If-None-Match`` then gets its 304
without the body being built at all. The plans listing is not among them: it is made from the
per-pair stock state too, which has no version that every write is bound to change, so there
the 304 saves the transfer, not the work, as on every other route.
"""

from __future__ import annotations

import gzip
import hashlib
from collections.abc import Awaitable, Callable
from importlib.metadata import PackageNotFoundError, version

from aiohttp import web

from vultr_scraper_worker.api.auth import SESSION_COOKIE
from vultr_scraper_worker.api.state import state_of

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

GZIP_MIN_BYTES = 1024
GZIP_LEVEL = 6
_GZIP_SUFFIX = "-gzip"


def entity_tag(body: bytes) -> str:
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def _code_version() -> str:
    try:
        return version("vultr-scraper-worker")
    except PackageNotFoundError:  # pragma: no cover - a source tree without metadata
        return "unknown"


_CODE_VERSION = _code_version()


async def _feed_inputs(request: web.Request) -> list[object] | None:
    state = state_of(request)
    key = f"{state.prefix}:changes"
    async with state.redis.pipeline(transaction=True) as pipe:
        pipe.xlen(key)
        pipe.xrevrange(key, count=1)
        length, newest = await pipe.execute()
    if not newest:
        return None  # an empty feed says "updated now": its body changes with the clock
    return [length, newest[0][0]]


Inputs = Callable[[web.Request], Awaitable[list[object] | None]]

# Route path -> what its body is made from (None: not cheaply known for this request).
CHEAP_VERSIONS: dict[str, Inputs] = {
    "/feed.atom": _feed_inputs,
}


async def cheap_tag(request: web.Request) -> str | None:
    """The strong tag of the answer to ``request`` from its inputs, or None."""
    inputs = CHEAP_VERSIONS.get(_route_path(request))
    if inputs is None:
        return None
    found = await inputs(request)
    if found is None:
        return None
    text = repr(
        [
            _CODE_VERSION,
            request.scheme,
            request.host,
            str(request.rel_url),
            _credentialed(request),
            *found,
        ]
    )
    return '"v' + hashlib.sha256(text.encode()).hexdigest()[:31] + '"'


def _route_path(request: web.Request) -> str:
    route = getattr(request.match_info.handler, "route", None)
    return str(getattr(route, "path", ""))


def _opaque(tag: str) -> str:
    """The tag without ``W/`` and without the gzip suffix, for the weak comparison."""
    tag = tag.strip().removeprefix("W/")
    if tag.endswith(_GZIP_SUFFIX + '"'):
        tag = tag[: -len(_GZIP_SUFFIX) - 1] + '"'
    return tag


def not_modified(if_none_match: str, tag: str) -> bool:
    if if_none_match.strip() == "*":
        return True
    return any(_opaque(candidate) == tag for candidate in if_none_match.split(","))


def accepts_gzip(accept_encoding: str) -> bool:
    for part in accept_encoding.split(","):
        coding, _, params = part.strip().partition(";")
        if coding.strip().lower() not in ("gzip", "*"):
            continue
        quality = params.strip().lower()
        if quality.startswith("q="):
            try:
                return float(quality[2:]) > 0
            except ValueError:
                return False
        return True
    return False


def _add_vary(response: web.StreamResponse, *names: str) -> None:
    present = [value.strip() for value in response.headers.get("Vary", "").split(",") if value]
    for name in names:
        if name.lower() not in {value.lower() for value in present}:
            present.append(name)
    response.headers["Vary"] = ", ".join(present)


def _credentialed(request: web.Request) -> bool:
    return "Authorization" in request.headers or SESSION_COOKIE in request.cookies


def _not_modified_response(request: web.Request, tag: str, cache_control: str) -> web.Response:
    headers = {"ETag": tag, "Cache-Control": cache_control, "Vary": "Accept-Encoding"}
    return web.Response(status=304, headers=headers)


@web.middleware
async def conditional_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    cheap: str | None = None
    if request.method in ("GET", "HEAD") and _route_path(request) in CHEAP_VERSIONS:
        route = request.match_info.handler.route  # type: ignore[attr-defined]
        try:
            state_of(request).auth.authorize(request, route.access)  # 304s only for readers
            cheap = await cheap_tag(request)  # read before the body: a later write changes it
        except Exception:  # the handler meets it again, and answers with the error
            cheap = None
        if cheap is not None and not_modified(request.headers.get("If-None-Match", ""), cheap):
            gzipped = accepts_gzip(request.headers.get("Accept-Encoding", ""))
            tag = cheap[:-1] + _GZIP_SUFFIX + '"' if gzipped else cheap
            cache_control = "private, no-cache" if _credentialed(request) else "no-cache"
            return _not_modified_response(request, tag, cache_control)
    response = await handler(request)
    if (
        request.method not in ("GET", "HEAD")
        or response.status != 200
        or not isinstance(response, web.Response)
        or not isinstance(response.body, bytes)
        or "Set-Cookie" in response.headers
        or "Content-Encoding" in response.headers
    ):
        return response
    body = response.body
    tag = cheap or entity_tag(body)
    cache_control = "private, no-cache" if _credentialed(request) else "no-cache"
    _add_vary(response, "Accept-Encoding")
    if not_modified(request.headers.get("If-None-Match", ""), tag):
        gzipped = len(body) > GZIP_MIN_BYTES and accepts_gzip(
            request.headers.get("Accept-Encoding", "")
        )
        headers = {
            "ETag": tag[:-1] + _GZIP_SUFFIX + '"' if gzipped else tag,
            "Cache-Control": cache_control,
            "Vary": response.headers["Vary"],
        }
        return web.Response(status=304, headers=headers)
    response.headers.setdefault("Cache-Control", cache_control)
    if len(body) > GZIP_MIN_BYTES and accepts_gzip(request.headers.get("Accept-Encoding", "")):
        response.body = gzip.compress(body, compresslevel=GZIP_LEVEL, mtime=0)
        response.headers["Content-Encoding"] = "gzip"
        response.headers["ETag"] = tag[:-1] + _GZIP_SUFFIX + '"'
    else:
        response.headers["ETag"] = tag
    return response
