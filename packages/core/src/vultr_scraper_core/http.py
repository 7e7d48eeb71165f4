"""Outgoing HTTP in one place: sessions, pacing, error classification and the retry policy.

Every caller (the Vultr client, health probes, notification sinks) uses ``HttpClient`` so that
timeouts, the ``User-Agent``, the rate limit and the retry rules are the same everywhere:

* transient: connection errors, timeouts, truncated bodies, and HTTP 429, 500, 502, 503, 504;
  retried with capped exponential backoff and full jitter, honouring ``Retry-After``;
* permanent: every other status and unusable data; raised at once.
"""

from __future__ import annotations

import asyncio
import html
import math
import os
import random
import re
import socket
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from errno import ECONNREFUSED
from typing import Any, TypeVar

import aiohttp
import msgspec
from loguru import logger
from redis.exceptions import AuthenticationError as RedisAuthenticationError
from redis.exceptions import AuthorizationError as RedisAuthorizationError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.exceptions import WatchError

from vultr_scraper_core import __version__
from vultr_scraper_core.config import ClientConfig, mask_url
from vultr_scraper_core.redis_faults import is_refusal
from vultr_scraper_core.text import mask_urls

USER_AGENT = f"vultr-scraper/{__version__}"
TRANSIENT_STATUSES = frozenset({429, 500, 502, 503, 504})
_EXCERPT = 200
_SECONDS = re.compile(r"\d+(\.\d+)?", re.ASCII)

T = TypeVar("T")


class HttpError(Exception):
    """A failed request, with the URL, the status (if any) and a readable reason."""

    transient = False

    def __init__(
        self,
        reason: str,
        *,
        url: str,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        # The message is logged, stored and shown: no URL in it keeps its password.
        self.reason = reason = mask_urls(reason)
        self.url = url = mask_url(url)
        self.status = status
        self.retry_after = retry_after
        prefix = f"HTTP {status} from {url}" if status is not None else f"request to {url} failed"
        super().__init__(f"{prefix}: {reason}")


class TransientHttpError(HttpError):
    """Worth retrying later: the server or the network may recover."""

    transient = True


class PermanentHttpError(HttpError):
    """Retrying will not help: a client error or data we cannot use."""


class UnreachableHttpError(PermanentHttpError):
    """The host could not be reached at all: its name does not resolve, or nothing listens on
    the port. Retrying within seconds cannot help (no network, a wrong ``base_url``, a server
    that is down), so it fails at once, with one line naming the URL; a scheduled job's next
    run tries again."""


class ByteCap(msgspec.Struct, frozen=True, kw_only=True):
    """The most body bytes a caller reads from one response, and the setting that says so
    (named in the error, so the operator knows what to raise)."""

    limit: int
    setting: str = ""


class ResponseTooLarge(PermanentHttpError):
    """The body was larger than the caller's ``ByteCap``: reading stopped at the cap.

    Permanent: the same request would send the same flood again."""

    def __init__(self, cap: ByteCap, *, url: str, status: int | None, announced: int | None):
        self.cap = cap
        setting = f" ({cap.setting})" if cap.setting else ""
        seen = f"announced {announced} bytes" if announced is not None else "stopped reading"
        super().__init__(
            f"response body larger than the cap of {cap.limit} bytes{setting}; {seen}",
            url=url,
            status=status,
        )


def is_transient(error: BaseException) -> bool:
    """The one classifier every retry decision uses.

    Besides HTTP trouble, Redis going away in the middle of a job is transient: its connection
    errors once redis-py's own retries are spent, a Redis refusing for now (out of memory, a
    read-only replica after a failover, still loading), and ``WatchError``, which is what a dropped
    connection inside a WATCH transaction becomes (the store's own retry loops have already
    absorbed ordinary contention by then). A refused password or ACL is not: trying again
    cannot fix it.
    """
    if isinstance(error, HttpError):
        return error.transient
    if isinstance(error, RedisAuthenticationError | RedisAuthorizationError):
        return False
    if is_refusal(error):  # out of memory, a read-only replica, LOADING, ...: wait and retry
        return True
    return isinstance(
        error,
        aiohttp.ClientConnectionError
        | aiohttp.ClientPayloadError
        | TimeoutError
        | RedisConnectionError
        | RedisTimeoutError
        | WatchError,
    )


def retry_after_of(error: BaseException) -> float | None:
    return error.retry_after if isinstance(error, HttpError) else None


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP-date."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    if _SECONDS.fullmatch(value):
        seconds = float(value)
        return seconds if math.isfinite(seconds) else None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    current = now or datetime.now(UTC)
    return max(0.0, (when - current).total_seconds())


class Backoff(msgspec.Struct, frozen=True, kw_only=True):
    """Capped exponential backoff with full jitter; ``attempt`` counts from 1."""

    base: float = 0.5
    cap: float = 30.0
    max_attempts: int = 4
    retry_after_cap: float = 120.0

    def ceiling(self, attempt: int) -> float:
        # The exponent is bounded so that absurd attempt numbers cannot overflow a float.
        return float(min(self.cap, self.base * 2.0 ** min(max(0, attempt - 1), 64)))

    def delay(
        self,
        attempt: int,
        retry_after: float | None = None,
        rand: Callable[[], float] = random.random,
    ) -> float:
        # Half fixed, half jitter: delays still grow with every attempt while concurrent
        # clients spread out.
        ceiling = self.ceiling(attempt)
        wait = ceiling / 2 + rand() * ceiling / 2
        if retry_after is not None:
            wait = max(wait, min(retry_after, self.retry_after_cap))
        return wait

    @classmethod
    def from_config(cls, config: ClientConfig) -> Backoff:
        return cls(
            base=config.backoff_base,
            cap=config.backoff_cap,
            max_attempts=config.max_attempts,
            retry_after_cap=config.retry_after_cap,
        )


class RateLimiter:
    """Spaces request starts at least ``1 / rate`` seconds apart (rate <= 0: no pacing)."""

    def __init__(
        self,
        rate: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._interval = 1.0 / rate if rate > 0 else 0.0
        self._clock = clock
        self._sleep = sleep
        self._next = -math.inf

    async def acquire(self) -> None:
        if not self._interval:
            return
        # No await between reading and reserving the slot, so concurrent callers (one event
        # loop) each get their own slot without a lock.
        now = self._clock()
        start = max(now, self._next)
        self._next = start + self._interval
        if start > now:
            await self._sleep(start - now)


class Response(msgspec.Struct, frozen=True, kw_only=True):
    url: str
    status: int
    headers: dict[str, str]
    body: bytes
    elapsed: float  # seconds from request start to the full body

    def header(self, name: str) -> str | None:
        """A response header by case-insensitive name (HTTP/2 servers send lower case)."""
        wanted = name.lower()
        return next((v for k, v in self.headers.items() if k.lower() == wanted), None)

    def json(self, decode: Callable[[bytes], Any] = msgspec.json.decode) -> Any:
        """The decoded body (``decode``: another JSON decoder, e.g. an exact-decimal one). A
        body that is not JSON (cut short, or an HTML page served with 200) raises
        TransientHttpError with a readable reason, never a decode crash."""
        try:
            return decode(self.body)
        except msgspec.DecodeError as exc:
            content_type = self.header("Content-Type") or "no content type"
            if "json" in content_type.lower():
                reason = f"response body is not valid JSON (truncated?): {exc}"
            else:
                excerpt = describe_error_body(self.body, content_type)
                reason = f"expected JSON, got {content_type}: {excerpt}"
            raise TransientHttpError(reason, url=self.url, status=self.status) from None


def create_session(
    config: ClientConfig,
    *,
    headers: Mapping[str, str] | None = None,
    connection_limit: int | None = None,
    force_close: bool = False,
) -> aiohttp.ClientSession:
    """A ClientSession with the project's timeouts, connection limit and User-Agent.

    ``connection_limit`` overrides ``client.connection_limit``; ``force_close`` opens a fresh
    connection per request (health probes measure connect and TLS time that way)."""
    timeout = aiohttp.ClientTimeout(total=config.timeout, connect=config.connect_timeout)
    limit = config.connection_limit if connection_limit is None else connection_limit
    connector = aiohttp.TCPConnector(limit=limit, force_close=force_close)
    merged = {"User-Agent": USER_AGENT, **(headers or {})}
    return aiohttp.ClientSession(timeout=timeout, connector=connector, headers=merged)


_ERROR_BODY_LIMIT = 64 * 1024  # enough to describe any error page; the rest is not read
_CHUNK = 64 * 1024


async def read_capped(response: aiohttp.ClientResponse, cap: ByteCap | None) -> bytes:
    """The body, streamed, never more than ``cap.limit`` bytes held (after decompression).

    A ``Content-Length`` above the cap fails before reading anything."""
    if cap is None:
        return await response.read()
    url = str(response.url)
    announced = response.content_length
    if announced is not None and announced > cap.limit:
        raise ResponseTooLarge(cap, url=url, status=response.status, announced=announced)
    body = bytearray()
    async for chunk in response.content.iter_chunked(_CHUNK):
        body += chunk
        if len(body) > cap.limit:
            raise ResponseTooLarge(cap, url=url, status=response.status, announced=None)
    return bytes(body)


async def _read_error_body(response: aiohttp.ClientResponse) -> bytes:
    """At most ``_ERROR_BODY_LIMIT`` bytes of an error body (for its reason, nothing more)."""
    body = bytearray()
    async for chunk in response.content.iter_chunked(_CHUNK):
        body += chunk[: _ERROR_BODY_LIMIT - len(body)]
        if len(body) >= _ERROR_BODY_LIMIT:
            break
    return bytes(body)


_TAGS = re.compile(r"<[^>]+>")
_HIDDEN = re.compile(r"<(script|style|head)\b.*?</\1\s*>", re.IGNORECASE | re.DOTALL)
_SPACE = re.compile(r"\s+")


def connection_error_reason(error: BaseException) -> str:
    """Why a connection failed, in the system's words (``Connection refused``), not asyncio's
    (``Cannot connect to host ... [Connect call failed ('127.0.0.1', 1)]``); the caller already
    names the URL. Used by the HTTP client and the health probes alike."""
    cause: BaseException | None = error
    if isinstance(error, aiohttp.ClientConnectorError):
        cause = error.os_error
    if isinstance(cause, socket.gaierror):
        return str(cause.strerror or cause)
    if isinstance(cause, OSError) and cause.errno and cause.errno > 0:
        return os.strerror(cause.errno)
    if isinstance(cause, OSError) and cause.strerror:
        return str(cause.strerror)
    text = str(error)
    return text or type(error).__name__


def unreachable_reason(error: aiohttp.ClientConnectorError) -> str | None:
    """Why the host cannot be reached, when retrying soon cannot help: the name does not
    resolve (``cannot resolve host api.vultr.com: Temporary failure in name resolution``) or
    the connection is refused. None for other connection failures (a reset, a timeout)."""
    cause = error.os_error
    if isinstance(cause, socket.gaierror):
        return f"cannot resolve host {error.host}: {connection_error_reason(error)}"
    if isinstance(cause, ConnectionRefusedError) or getattr(cause, "errno", None) == ECONNREFUSED:
        return f"connection error: {connection_error_reason(error)}"
    return None


def _without_status(reason: str, status: int) -> str:
    """``405: Method Not Allowed`` -> ``Method Not Allowed`` (the status is said already)."""
    match = re.match(rf"{status}\b[\s:.-]*", reason)
    return reason[match.end() :] or reason if match else reason


def describe_error_body(body: bytes, content_type: str) -> str:
    """A short human reason from an error body: JSON ``error`` (or ``message``) field, else the
    text with HTML tags, scripts and entities removed, at most 200 characters."""
    if "json" in content_type.lower() or body.lstrip()[:1] == b"{":
        try:
            decoded = msgspec.json.decode(body)
        except msgspec.DecodeError:
            decoded = None
        if isinstance(decoded, dict):
            for key in ("error", "message"):
                if isinstance(decoded.get(key), str) and decoded[key].strip():
                    return _shorten(str(decoded[key]))
    text = body.decode("utf-8", errors="replace")
    if "<" in text:
        text = html.unescape(_TAGS.sub(" ", _HIDDEN.sub(" ", text)))
    return _shorten(text) or "(empty body)"


def _shorten(text: str) -> str:
    text = _SPACE.sub(" ", text).strip()
    return text if len(text) <= _EXCERPT else text[: _EXCERPT - 1] + "…"


class HttpClient:
    """Requests with the shared policy. One instance per session; safe for concurrent use."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        config: ClientConfig,
        *,
        limiter: RateLimiter | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.session = session
        self.backoff = Backoff.from_config(config)
        self.limiter = limiter if limiter is not None else RateLimiter(config.rate_limit)
        self._sleep = sleep

    async def request_once(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, str | int] | None = None,
        headers: Mapping[str, str] | None = None,
        data: bytes | None = None,
        timeout: float | None = None,
        cap: ByteCap | None = None,
    ) -> Response:
        """One attempt. Non-2xx statuses raise Transient/PermanentHttpError; a body larger than
        ``cap`` raises ResponseTooLarge (an error body is only read far enough to describe it)."""
        await self.limiter.acquire()
        started = time.perf_counter()
        options: dict[str, Any] = {}
        if timeout:
            # Only when given: aiohttp reads an explicit ``timeout=None`` as "no timeout at
            # all", which would silently drop the session's total and connect limits.
            session_timeout = self.session.timeout
            options["timeout"] = aiohttp.ClientTimeout(
                total=timeout,
                connect=session_timeout.connect,
                sock_connect=session_timeout.sock_connect,
                sock_read=session_timeout.sock_read,
            )
        try:
            async with self.session.request(
                method,
                url,
                params=params,
                headers=headers,
                data=data,
                allow_redirects=True,
                **options,
            ) as response:
                status = response.status
                if status >= 400:
                    body = await _read_error_body(response)
                else:
                    body = await read_capped(response, cap)
                final_url = str(response.url)
                response_headers = {key: value for key, value in response.headers.items()}
                content_type = response.headers.get("Content-Type", "")
                retry_after = response.headers.get("Retry-After")
        except TimeoutError:
            raise TransientHttpError("timed out", url=url) from None
        except aiohttp.ClientPayloadError as exc:
            raise TransientHttpError(f"incomplete response body: {exc}", url=url) from None
        except aiohttp.ClientConnectorError as exc:
            unreachable = unreachable_reason(exc)
            if unreachable is not None:
                raise UnreachableHttpError(unreachable, url=url) from None
            reason = f"connection error: {connection_error_reason(exc)}"
            raise TransientHttpError(reason, url=url) from None
        except aiohttp.ClientConnectionError as exc:
            reason = f"connection error: {connection_error_reason(exc)}"
            raise TransientHttpError(reason, url=url) from None
        except aiohttp.ClientError as exc:
            # Invalid URL, too many redirects, a response that is not HTTP: retrying won't help.
            reason = f"{type(exc).__name__}: {exc}".rstrip(": ")
            raise PermanentHttpError(reason, url=url) from None
        elapsed = time.perf_counter() - started
        if status >= 400:
            error_type = TransientHttpError if status in TRANSIENT_STATUSES else PermanentHttpError
            raise error_type(
                _without_status(describe_error_body(body, content_type), status),
                url=final_url,
                status=status,
                retry_after=parse_retry_after(retry_after),
            )
        return Response(
            url=final_url, status=status, headers=response_headers, body=body, elapsed=elapsed
        )

    async def request(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, str | int] | None = None,
        headers: Mapping[str, str] | None = None,
        data: bytes | None = None,
        timeout: float | None = None,
        max_attempts: int | None = None,
    ) -> Response:
        """``request_once`` retried on transient errors, at most ``max_attempts`` times."""

        async def attempt() -> Response:
            return await self.request_once(
                method, url, params=params, headers=headers, data=data, timeout=timeout
            )

        return await self.retrying(url, attempt, max_attempts)

    async def get_json(
        self,
        url: str,
        *,
        params: Mapping[str, str | int] | None = None,
        headers: Mapping[str, str] | None = None,
        max_attempts: int | None = None,
    ) -> tuple[Any, Response]:
        """GET and decode JSON; a body that does not decode counts as a transient failure."""

        async def attempt() -> tuple[Any, Response]:
            response = await self.request_once("GET", url, params=params, headers=headers)
            return response.json(), response

        return await self.retrying(url, attempt, max_attempts)

    async def retrying(
        self, url: str, operation: Callable[[], Awaitable[T]], max_attempts: int | None = None
    ) -> T:
        """Run ``operation`` until it succeeds, fails permanently, or attempts run out.

        Whether an error is worth another attempt is ``is_transient``'s decision alone, so an
        operation may also raise aiohttp's or asyncio's own errors."""
        attempts = max_attempts or self.backoff.max_attempts
        for attempt in range(1, attempts + 1):
            try:
                return await operation()
            except Exception as error:
                if not is_transient(error) or attempt == attempts:
                    raise
                delay = self.backoff.delay(attempt, retry_after_of(error))
                reason = error.reason if isinstance(error, HttpError) else repr(error)
                shown = mask_url(url)
                logger.bind(url=shown, attempt=attempt, delay=round(delay, 3)).warning(
                    "{} failed ({}), retrying in {:.1f} s", shown, reason, delay
                )
                await self._sleep(delay)
        raise AssertionError("unreachable: the loop returns or raises")
