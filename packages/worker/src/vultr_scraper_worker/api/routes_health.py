"""``/healthz`` (is this appliance doing its job?) and ``/api/v1/health`` (endpoint probes)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from loguru import logger
from redis.exceptions import RedisError

from vultr_scraper_core.formats import format_time
from vultr_scraper_core.redis_faults import redis_cause
from vultr_scraper_worker.api import reads_catalog, reads_health
from vultr_scraper_worker.api.auth import Access
from vultr_scraper_worker.api.paging import (
    LINK_HEADER,
    PAGE_LIMIT,
    PART,
    key_cursor,
    next_link,
    page_after,
)
from vultr_scraper_worker.api.routing import Response, Route, json_response
from vultr_scraper_worker.api.state import state_of
from vultr_scraper_worker.documents.health import (
    CatalogCheck,
    Endpoint,
    EndpointHealthReport,
    Healthz,
    HealthzChecks,
    HealthzStatus,
    RedisCheck,
    WorkerCheck,
)


async def healthz(request: web.Request, args: dict[str, Any]) -> web.StreamResponse:
    """200 while the worker runs and the last good catalogue scrape is younger than
    ``[http] catalog_max_age``; 503 with the reason otherwise (also when Redis is down)."""
    state = state_of(request)
    now = datetime.now(UTC)
    max_age = state.config.http.catalog_max_age
    worker = WorkerCheck(ok=True, started_at=state.started_at)
    try:
        await state.redis.ping()
        summary = await reads_catalog.summary(state)
    except (RedisError, OSError) as error:
        cause = redis_cause(error)
        logger.warning("healthz: {}", cause)
        unavailable = Healthz(
            status="unhealthy",
            reason=f"Redis is unavailable ({cause})",
            catalog_last_success=None,
            catalog_max_age_seconds=max_age,
            checks=HealthzChecks(worker=worker, redis=RedisCheck(ok=False, error=cause)),
        )
        return json_response(unavailable, status=503)
    fresh, reason = reads_catalog.freshness(state, summary, now)
    catalog = CatalogCheck(
        ok=fresh,
        last_success=summary.last_success,
        last_attempt=summary.last_attempt,
        quarantined=summary.quarantine is not None,
    )
    status: HealthzStatus = "ok" if fresh else "unhealthy"
    if fresh and summary.quarantine is not None:
        # Still 200 (the current catalogue is fresh enough), but not a plain "ok": a scrape is
        # held back and waits for an operator (`vultr-scraper quarantine`).
        status = "quarantined"
        held = format_time(summary.quarantine.quarantined_at)
        reason = (
            f"{reason}; a newer scrape is quarantined since {held} "
            f"({'; '.join(summary.quarantine.reasons)}): review with `vultr-scraper quarantine`"
        )
    document = Healthz(
        status=status,
        reason=reason,
        catalog_last_success=summary.last_success,
        catalog_max_age_seconds=max_age,
        checks=HealthzChecks(worker=worker, redis=RedisCheck(ok=True), catalog=catalog),
    )
    return json_response(document, status=200 if fresh else 503)


async def health(request: web.Request, args: dict[str, Any]) -> web.StreamResponse:
    endpoints = await reads_health.endpoint_health(state_of(request))  # sorted by name
    count = len(endpoints)
    if args["cursor"] is not None:
        endpoints = [found for found in endpoints if found.name > args["cursor"]]
    page, has_more = page_after(endpoints, args["limit"])
    next_cursor = page[-1].name if has_more else None
    report = EndpointHealthReport(
        endpoints=[Endpoint.of(found) for found in page],
        count=count,
        cursor=next_cursor,
        has_more=has_more,
    )
    return json_response(
        report, headers=next_link(request, "cursor", next_cursor) if next_cursor else None
    )


_NAME_CURSOR = key_cursor(
    "Start after this endpoint: the `cursor` of the previous page (an endpoint name)",
    f"^{PART}$",
    "vultr-api",
    lambda parts: parts[0],
    invalid="two~parts",
)


ROUTES = [
    Route(
        "GET",
        "/healthz",
        healthz,
        operation_id="getHealthz",
        summary="Liveness and data freshness, for load balancers and monitors",
        tag="meta",
        access=Access.OPEN,
        uses_redis=False,  # a Redis outage is reported in the healthz document itself
        responses={
            200: Response("Healthy", struct=Healthz),
            503: Response(
                "Unhealthy: no recent good catalogue scrape, or Redis down; `reason` says which",
                struct=Healthz,
            ),
        },
    ),
    Route(
        "GET",
        "/api/v1/health",
        health,
        operation_id="getEndpointHealth",
        summary="Every checked endpoint: state, last probe, latency and uptime (24 h, 7 d, 30 d)",
        tag="health",
        params=(
            PAGE_LIMIT,
            _NAME_CURSOR,
        ),
        responses={
            200: Response(
                "Endpoint health, by name",
                struct=EndpointHealthReport,
                headers=LINK_HEADER,
            )
        },
    ),
]
