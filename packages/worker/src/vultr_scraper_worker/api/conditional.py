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

The body is still built for each request: this saves the transfer, not the work.
"""

from __future__ import annotations

import gzip
import hashlib
from collections.abc import Awaitable, Callable

from aiohttp import web

from vultr_scraper_worker.api.auth import SESSION_COOKIE

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

GZIP_MIN_BYTES = 1024
GZIP_LEVEL = 6
_GZIP_SUFFIX = "-gzip"


def entity_tag(body: bytes) -> str:
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


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


@web.middleware
async def conditional_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
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
    tag = entity_tag(body)
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
