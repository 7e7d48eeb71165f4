"""OPTIONS on every path (``Allow``), and CORS for the read routes when ``[http] cors_origins``
names the calling origin.

CORS is off by default: a browser page from another site can then read nothing. With origins
configured (``"*"`` for any), GET and HEAD answers of read routes carry
``Access-Control-Allow-Origin`` and expose ``ETag`` and ``Link``; a preflight may ask for the
``Authorization`` header (needed with ``protect_reads``). Write routes never answer CORS: they
are for the token holder's own tools and the same-site status page. Cookies are never allowed
cross-site (no ``Access-Control-Allow-Credentials``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from aiohttp import web

from vultr_scraper_worker.api.auth import Access
from vultr_scraper_worker.api.routing import Route
from vultr_scraper_worker.api.state import state_of

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

READ_METHODS = ("GET", "HEAD")
EXPOSED_HEADERS = "ETag, Link, Retry-After"
PREFLIGHT_MAX_AGE = "600"


def allowed_methods(routes: Sequence[Route]) -> list[str]:
    """The methods one path answers: its routes', HEAD beside GET, and OPTIONS."""
    methods: list[str] = []
    for route in routes:
        methods.append(route.method)
        if route.method == "GET":
            methods.append("HEAD")
    return [*dict.fromkeys(methods), "OPTIONS"]


def _cors_route(routes: Sequence[Route]) -> bool:
    return any(route.method == "GET" and route.access is not Access.WRITE for route in routes)


def allowed_origin(request: web.Request) -> str | None:
    """The value for Access-Control-Allow-Origin, or None when this origin gets no CORS."""
    origin = request.headers.get("Origin")
    if not origin:
        return None
    origins = state_of(request).config.http.cors_origins
    if "*" in origins:
        return "*"
    return origin if origin in origins else None


def options_handler(routes: Sequence[Route]) -> Handler:
    """``OPTIONS <path>``: 204 with ``Allow``; a CORS preflight too, when the origin is let in."""
    allow = ", ".join(allowed_methods(routes))
    cors = _cors_route(routes)

    async def options(request: web.Request) -> web.StreamResponse:
        headers = {"Allow": allow}
        origin = allowed_origin(request) if cors else None
        asked = request.headers.get("Access-Control-Request-Method", "")
        if origin is not None and asked in READ_METHODS:
            headers.update(
                {
                    "Access-Control-Allow-Origin": origin,
                    "Access-Control-Allow-Methods": ", ".join(READ_METHODS),
                    "Access-Control-Allow-Headers": "Authorization, If-None-Match",
                    "Access-Control-Max-Age": PREFLIGHT_MAX_AGE,
                }
            )
        response = web.Response(status=204, headers=headers)
        if cors:
            response.headers["Vary"] = "Origin"
        return response

    return options


@web.middleware
async def cors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    response = await handler(request)
    route: Route | None = getattr(request.match_info.handler, "route", None)
    if route is None or route.access is Access.WRITE or request.method not in READ_METHODS:
        return response
    origin = allowed_origin(request)
    if origin is not None:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Expose-Headers"] = EXPOSED_HEADERS
    if state_of(request).config.http.cors_origins:
        vary = response.headers.get("Vary")
        response.headers["Vary"] = f"{vary}, Origin" if vary else "Origin"
    return response
