"""``/api/v1/maintenance``: what is in maintenance now, and one-off mutes set and ended over HTTP
(the same operations as ``vultr-scraper mute`` / ``unmute`` / ``maintenance``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from loguru import logger

from vultr_scraper_jobs.maintenance import (
    DURATION_FORMS,
    MAX_REASON,
    UnknownTarget,
    maintenance_now,
    parse_duration,
    remove_mute,
    set_mute,
)
from vultr_scraper_worker.api.auth import Access
from vultr_scraper_worker.api.errors import ApiError, bad_request
from vultr_scraper_worker.api.params import Param, text, timestamp
from vultr_scraper_worker.api.routing import Response, Route, json_response
from vultr_scraper_worker.api.state import state_of
from vultr_scraper_worker.documents.maintenance import MaintenanceReport, MuteEntry, Unmuted


async def get_maintenance(request: web.Request, args: dict[str, Any]) -> web.StreamResponse:
    state = state_of(request)
    found = await maintenance_now(state.redis, state.config, datetime.now(UTC))
    return json_response(MaintenanceReport.of(found))


async def mute(request: web.Request, args: dict[str, Any]) -> web.StreamResponse:
    state = state_of(request)
    target = args["target"]
    now = datetime.now(UTC)
    if (args["for"] is None) == (args["until"] is None):
        raise bad_request("give exactly one of the parameters 'for' (a duration) or 'until'")
    until = args["until"] if args["until"] is not None else now + args["for"]
    try:
        found = await set_mute(
            state.redis, state.config, target, until=until, now=now, reason=args["reason"] or ""
        )
    except UnknownTarget as error:
        raise ApiError(404, str(error)) from None
    except ValueError as error:
        raise bad_request(str(error)) from None
    logger.bind(target=target, until=found.until.isoformat()).info(
        "{} muted over HTTP until {}", target, found.until.isoformat()
    )
    return json_response(MuteEntry.of(found), status=201)


async def unmute(request: web.Request, args: dict[str, Any]) -> web.StreamResponse:
    state = state_of(request)
    target = args["target"]
    if not await remove_mute(state.redis, state.config, target):
        raise ApiError(404, f"{target!r} is not muted")
    logger.bind(target=target).info("{} unmuted over HTTP", target)
    return json_response(Unmuted(target=target, removed=True))


_TARGET = text(
    "target",
    "An endpoint name, `catalog` (the catalogue's stale and quarantine alerts) or `*`",
    pattern=r"^[^/]+$",
    max_length=200,
    location="path",
    example="vultr-api",
)


def _reason(raw: str) -> str:
    if len(raw) > MAX_REASON:
        raise ValueError(f"must be at most {MAX_REASON} characters")
    return raw


_MUTE_PARAMS = (
    _TARGET,
    Param(
        "for",
        f"How long the mute lasts: {DURATION_FORMS} (at most a year)",
        {"type": "string", "pattern": r"^([0-9]{1,6}[smhdwSMHDW])+$", "maxLength": 40},
        parse_duration,
        example="2h",
        invalid="two hours",
    ),
    timestamp("until", "When the mute ends instead (must be in the future)"),
    Param(
        "reason",
        "Why, shown in listings and on the status page",
        {"type": "string", "maxLength": MAX_REASON},
        _reason,
        example="moving the database",
    ),
)

ROUTES = [
    Route(
        "GET",
        "/api/v1/maintenance",
        get_maintenance,
        operation_id="getMaintenance",
        summary="What is in maintenance now and why; active mutes; the recurring windows",
        tag="health",
        responses={200: Response("Maintenance now", struct=MaintenanceReport)},
    ),
    Route(
        "POST",
        "/api/v1/maintenance/{target}",
        mute,
        operation_id="muteTarget",
        summary="Mute an endpoint (or `catalog`, or `*`) for a while: alerts are held back",
        tag="health",
        access=Access.WRITE,
        params=_MUTE_PARAMS,
        description=(
            "Give exactly one of `for` and `until`; the mute must end in the future and last "
            "at most a year (JSON Schema cannot state these rules of query parameters: each is "
            "answered 400 with its own message). Checks still run and are recorded; alerts "
            "are held back until the mute ends, then a condition that still lasts is announced "
            "once. Muting a target again replaces its mute."
        ),
        responses={
            201: Response("Muted", struct=MuteEntry),
            404: Response("No endpoint of this name"),
        },
    ),
    Route(
        "DELETE",
        "/api/v1/maintenance/{target}",
        unmute,
        operation_id="unmuteTarget",
        summary="End a mute now (recurring windows are not affected)",
        tag="health",
        access=Access.WRITE,
        params=(_TARGET,),
        responses={
            200: Response("Unmuted", struct=Unmuted),
            404: Response("The target is not muted"),
        },
    ),
]
