"""``/healthz`` (is this appliance doing its job?) and ``/api/v1/health`` (endpoint probes)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgspec
from aiohttp import web
from loguru import logger
from redis.exceptions import RedisError

from vultr_scraper_core.formats import format_time
from vultr_scraper_core.redis_faults import redis_cause
from vultr_scraper_worker.api import reads_catalog, reads_health, schemas
from vultr_scraper_worker.api.auth import Access
from vultr_scraper_worker.api.routing import Response, Route, json_response
from vultr_scraper_worker.api.state import state_of


def endpoint_doc(endpoint: reads_health.EndpointHealth) -> dict[str, Any]:
    state = endpoint.state
    return {
        "name": endpoint.name,
        "url": endpoint.url,
        "state": state.state,
        "since": state.since,
        "checks": state.checks,
        "failures": state.failures,
        "successes": state.successes,
        "last": msgspec.to_builtins(state.last) if state.last else None,
        "uptime": {
            label: {
                "probes": uptime.probes,
                "successes": uptime.successes,
                "ratio": uptime.ratio,
                "avg_latency_ms": uptime.avg_latency_ms,
            }
            for label, uptime in endpoint.uptime.items()
        },
        "in_maintenance": endpoint.maintenance is not None,
        "maintenance": msgspec.to_builtins(endpoint.maintenance) if endpoint.maintenance else None,
    }


async def healthz(request: web.Request, args: dict[str, Any]) -> web.StreamResponse:
    """200 while the worker runs and the last good catalogue scrape is younger than
    ``[http] catalog_max_age``; 503 with the reason otherwise (also when Redis is down)."""
    state = state_of(request)
    now = datetime.now(UTC)
    max_age = state.config.http.catalog_max_age
    checks: dict[str, Any] = {"worker": {"ok": True, "started_at": state.started_at}}
    document: dict[str, Any]
    try:
        await state.redis.ping()
        summary = await reads_catalog.summary(state)
    except (RedisError, OSError) as error:
        cause = redis_cause(error)
        logger.warning("healthz: {}", cause)
        checks["redis"] = {"ok": False, "error": cause}
        document = {
            "status": "unhealthy",
            "reason": f"Redis is unavailable ({cause})",
            "catalog_last_success": None,
            "catalog_max_age_seconds": max_age,
            "checks": checks,
        }
        return json_response(document, status=503)
    fresh, reason = reads_catalog.freshness(state, summary, now)
    checks["redis"] = {"ok": True}
    checks["catalog"] = {
        "ok": fresh,
        "last_success": summary.last_success,
        "last_attempt": summary.last_attempt,
        "quarantined": summary.quarantine is not None,
    }
    status = "ok" if fresh else "unhealthy"
    if fresh and summary.quarantine is not None:
        # Still 200 (the current catalogue is fresh enough), but not a plain "ok": a scrape is
        # held back and waits for an operator (`vultr-scraper quarantine`).
        status = "quarantined"
        held = format_time(summary.quarantine.quarantined_at)
        reason = (
            f"{reason}; a newer scrape is quarantined since {held} "
            f"({'; '.join(summary.quarantine.reasons)}): review with `vultr-scraper quarantine`"
        )
    document = {
        "status": status,
        "reason": reason,
        "catalog_last_success": summary.last_success,
        "catalog_max_age_seconds": max_age,
        "checks": checks,
    }
    return json_response(document, status=200 if fresh else 503)


async def health(request: web.Request, args: dict[str, Any]) -> web.StreamResponse:
    endpoints = await reads_health.endpoint_health(state_of(request))
    return json_response({"endpoints": [endpoint_doc(endpoint) for endpoint in endpoints]})


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
            200: Response("Healthy", schema=schemas.HEALTHZ),
            503: Response(
                "Unhealthy: no recent good catalogue scrape, or Redis down; `reason` says which",
                schema=schemas.HEALTHZ,
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
        responses={200: Response("Endpoint health", schema=schemas.HEALTH)},
    ),
]
