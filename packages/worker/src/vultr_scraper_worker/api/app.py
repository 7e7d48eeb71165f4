"""The aiohttp application: every route of every area, its middlewares and the OpenAPI route."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from loguru import logger
from redis.exceptions import RedisError

from vultr_scraper_core.redis_faults import redis_cause
from vultr_scraper_worker.api.auth import Access
from vultr_scraper_worker.api.conditional import conditional_middleware
from vultr_scraper_worker.api.cors import cors_middleware, options_handler
from vultr_scraper_worker.api.errors import PROBLEM_JSON, ApiError, problem_document
from vultr_scraper_worker.api.explorer import ROUTES as EXPLORER_ROUTES
from vultr_scraper_worker.api.feed import ROUTES as FEED_ROUTES
from vultr_scraper_worker.api.job_page import ROUTES as JOB_PAGE_ROUTES
from vultr_scraper_worker.api.metrics import ROUTES as METRICS_ROUTES
from vultr_scraper_worker.api.openapi import build_document
from vultr_scraper_worker.api.page import ROUTES as PAGE_ROUTES
from vultr_scraper_worker.api.page import error_page
from vultr_scraper_worker.api.routes_badges import ROUTES as BADGE_ROUTES
from vultr_scraper_worker.api.routes_catalog import ROUTES as CATALOG_ROUTES
from vultr_scraper_worker.api.routes_explorer import ROUTES as EXPLORER_API_ROUTES
from vultr_scraper_worker.api.routes_export import ROUTES as EXPORT_ROUTES
from vultr_scraper_worker.api.routes_health import ROUTES as HEALTH_ROUTES
from vultr_scraper_worker.api.routes_jobs import ROUTES as JOBS_ROUTES
from vultr_scraper_worker.api.routes_jobs import parameter_choices
from vultr_scraper_worker.api.routes_maintenance import ROUTES as MAINTENANCE_ROUTES
from vultr_scraper_worker.api.routes_offerings import ROUTES as OFFERING_ROUTES
from vultr_scraper_worker.api.routing import Response, Route, json_response
from vultr_scraper_worker.api.state import STATE_KEY, ApiState, state_of

OPENAPI_PATH = "/api/v1/openapi.json"

# No scripts at all; styles and form targets only from this server; never framed.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)


async def _openapi(request: web.Request, args: dict[str, Any]) -> web.StreamResponse:
    state = state_of(request)
    http = state.config.http
    document = build_document(
        all_routes(),
        protect_reads=http.protect_reads,
        public_badges=http.public_badges,
        choices=parameter_choices(state.plans),
    )
    return json_response(document)


OPENAPI_ROUTE = Route(
    "GET",
    OPENAPI_PATH,
    _openapi,
    operation_id="getOpenApi",
    summary="This OpenAPI 3.1 document",
    tag="meta",
    access=Access.OPEN,
    uses_redis=False,
    responses={200: Response("The OpenAPI document", schema={"type": "object"})},
)


def all_routes() -> list[Route]:
    return [
        *PAGE_ROUTES,
        *EXPLORER_ROUTES,
        *JOB_PAGE_ROUTES,
        *EXPLORER_API_ROUTES,
        *HEALTH_ROUTES,
        *METRICS_ROUTES,
        *FEED_ROUTES,
        *BADGE_ROUTES,
        *CATALOG_ROUTES,
        *OFFERING_ROUTES,
        *EXPORT_ROUTES,
        *JOBS_ROUTES,
        *MAINTENANCE_ROUTES,
        OPENAPI_ROUTE,
    ]


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every error is a small JSON document (or an HTML page for the HTML routes)."""
    route: Route | None = getattr(request.match_info.handler, "route", None)
    try:
        return await handler(request)
    except ApiError as error:
        return _error_response(request, route, error.status, error.message, error.headers)
    except web.HTTPException as error:
        if error.status < 400:
            raise
        headers = {"Allow": error.headers["Allow"]} if "Allow" in error.headers else {}
        message = error.reason if error.status != 404 else f"no such page: {request.path}"
        return _error_response(request, route, error.status, message, headers)
    except RedisError as error:  # unreachable, refusing, or past [http] redis_timeout
        cause = redis_cause(error)
        logger.bind(path=request.path, error=cause).warning(f"HTTP API: {cause}")
        detail = f"{cause}; try again shortly"
        return _error_response(request, route, 503, detail, {"Retry-After": "5"})
    except Exception:
        logger.bind(path=request.path).exception("HTTP API: internal error")
        return _error_response(request, route, 500, "internal error (logged by the worker)")


def _error_response(
    request: web.Request,
    route: Route | None,
    status: int,
    message: str,
    headers: dict[str, str] | None = None,
) -> web.StreamResponse:
    if (route is not None and route.html) or _browser_form(request):
        return error_page(request, status, message, headers or {})
    response = json_response(problem_document(status, message), status=status, headers=headers)
    response.content_type = PROBLEM_JSON
    return response


def _browser_form(request: web.Request) -> bool:
    """A status-page form post: its errors are shown as a page with a way back."""
    return (
        request.method == "POST"
        and request.content_type == "application/x-www-form-urlencoded"
        and "text/html" in request.headers.get("Accept", "")
    )


@web.middleware
async def headers_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    response = await handler(request)
    response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Cache-Control", "no-store")
    return response


def create_app(state: ApiState) -> web.Application:
    # Outermost first: CORS sees the final answer; the security headers' Cache-Control default
    # (no-store) yields to the conditional middleware's for cacheable reads.
    app = web.Application(
        middlewares=[cors_middleware, headers_middleware, conditional_middleware, errors_middleware]
    )
    app[STATE_KEY] = state
    by_path: dict[str, list[Route]] = {}
    for route in all_routes():
        by_path.setdefault(route.path, []).append(route)
    for path, routes in by_path.items():
        for route in routes:
            handler = route.aiohttp_handler()
            handler.route = route  # type: ignore[attr-defined]
            app.router.add_route(route.method, path, handler)
            if route.method == "GET":  # RFC 9110: HEAD wherever GET is (aiohttp drops the body)
                app.router.add_route("HEAD", path, handler)
        app.router.add_route("OPTIONS", path, options_handler(routes))
    return app
