"""``/badge/...``: SVG status badges for a README or a wiki.

* ``/badge/endpoint/{name}.svg``: up / down / unknown (or "maintenance") and the uptime over
  ``?window=24h`` (default), ``7d`` or ``30d``.
* ``/badge/catalog.svg``: the catalogue is fresh, stale or quarantined (same rule as /healthz).
* ``/badge/plan/{plan_id}.svg``: in stock in N regions, and the lowest monthly price.

Badges need the token unless ``[http] public_badges`` is on (``Access.BADGE``). They are
cacheable: ``Cache-Control`` with ``[http] badge_max_age``, and (like every read) a strong
``ETag`` from the image itself, so a poll that finds nothing new is a 304 with no body.
Something unknown is a 404 that is still an image ("not found"), so a README shows why instead
of a broken picture.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from aiohttp import web

from vultr_scraper_core.formats import format_money
from vultr_scraper_core.store.health import HealthStore
from vultr_scraper_core.store.queries import PlanFilter, PlanRow
from vultr_scraper_jobs.health import configured_endpoints
from vultr_scraper_jobs.maintenance import maintenance_now
from vultr_scraper_worker.api import reads_catalog
from vultr_scraper_worker.api.auth import Access
from vultr_scraper_worker.api.params import choice, text
from vultr_scraper_worker.api.reads_health import UPTIME_WINDOWS
from vultr_scraper_worker.api.routing import Response, Route
from vultr_scraper_worker.api.state import ApiState, state_of
from vultr_scraper_worker.api.svg_badge import Colour, render_badge

SVG_TYPE = "image/svg+xml"
_STATE_COLOURS = {"up": Colour.GOOD, "down": Colour.BAD}


def percent(ratio: float) -> str:
    """``99.95%``; rounded down, so an uptime short of 100 % never reads as 100 %."""
    if ratio >= 1:
        return "100%"
    hundredths = int(ratio * 10000)
    return f"{hundredths / 100:.2f}%"


def svg_response(request: web.Request, body: bytes, *, status: int = 200) -> web.StreamResponse:
    """The image with how long it may be cached. The ETag and the 304 for a client that has
    it already come from ``conditional``, as for every read."""
    state = state_of(request)
    headers: dict[str, str] = {}
    if status == 200:
        max_age = state.config.http.badge_max_age
        if state.config.http.public_badges:
            headers["Cache-Control"] = f"public, max-age={max_age}"
        else:
            headers["Cache-Control"] = f"private, max-age={max_age}"
            headers["Vary"] = "Authorization, Cookie"
    return web.Response(
        body=body, status=status, content_type=SVG_TYPE, charset="utf-8", headers=headers
    )


def _not_found(request: web.Request, label: str) -> web.StreamResponse:
    return svg_response(request, render_badge(label, "not found", Colour.NEUTRAL), status=404)


# -- endpoint ---------------------------------------------------------------------------------


async def endpoint_badge(request: web.Request, args: dict[str, Any]) -> web.StreamResponse:
    state = state_of(request)
    name, window = args["name"], args["window"]
    store = HealthStore(state.redis, state.prefix)
    configured = {endpoint.name for endpoint in configured_endpoints(state.config)}
    if name not in configured and name not in await store.known():
        return _not_found(request, name)
    now = datetime.now(UTC)
    endpoint = (await store.states([name]))[name]
    uptime = (await store.uptime([name], UPTIME_WINDOWS[window], now))[name]
    held = (await maintenance_now(state.redis, state.config, now)).subjects.get(name)
    word = "maintenance" if held is not None else endpoint.state
    colour = Colour.INFO if held is not None else _STATE_COLOURS.get(endpoint.state, Colour.NEUTRAL)
    ratio = uptime.ratio
    share = "no data" if ratio is None else f"{percent(ratio)} {window}"
    return svg_response(request, render_badge(name, f"{word} · {share}", colour))


# -- catalogue --------------------------------------------------------------------------------


async def catalog_word(state: ApiState, now: datetime) -> tuple[str, Colour]:
    """quarantined (a held-back scrape), stale (no good scrape within catalog_max_age) or
    fresh; quarantine comes first: it is the one a person must act on."""
    summary = await reads_catalog.summary(state)
    if summary.quarantine is not None:
        return "quarantined", Colour.BAD
    fresh, _ = reads_catalog.freshness(state, summary, now)
    return ("fresh", Colour.GOOD) if fresh else ("stale", Colour.WARN)


async def catalog_badge(request: web.Request, args: dict[str, Any]) -> web.StreamResponse:
    word, colour = await catalog_word(state_of(request), datetime.now(UTC))
    return svg_response(request, render_badge("catalogue", word, colour))


# -- plan -------------------------------------------------------------------------------------


def plan_value(rows: list[PlanRow]) -> tuple[str, Colour]:
    """``in stock in 3 regions · from $5.00/mo``. The price is the lowest monthly one among
    the regions where it is in stock, or among all its regions when it is in stock nowhere."""
    in_stock = [row for row in rows if row.in_stock]
    known = any(row.in_stock is not None for row in rows)
    regions = {row.region for row in in_stock}
    priced: list[Decimal] = [
        row.monthly_cost for row in (in_stock or rows) if row.monthly_cost is not None
    ]
    price = f" · from ${format_money(min(priced))}/mo" if priced else ""
    if in_stock:
        count = len(regions)
        where = f"in stock in {count} region{'s' if count != 1 else ''}"
        return where + price, Colour.GOOD
    if known:
        return "out of stock" + price, Colour.BAD
    return "stock unknown" + price, Colour.NEUTRAL


async def plan_badge(request: web.Request, args: dict[str, Any]) -> web.StreamResponse:
    plan_id = args["plan_id"]
    rows = await reads_catalog.plans(state_of(request), PlanFilter(plan=plan_id))
    if not rows:
        return _not_found(request, plan_id)
    value, colour = plan_value(rows)
    return svg_response(request, render_badge(plan_id, value, colour))


_SVG = Response(
    "The badge (SVG)",
    media_type=SVG_TYPE,
    schema={"type": "string"},
    headers={"ETag": "The image's entity tag", "Cache-Control": "How long it may be cached"},
)
_SVG_404 = Response(
    "A grey 'not found' badge (SVG)", media_type=SVG_TYPE, schema={"type": "string"}
)
_NOT_MODIFIED = Response("Unchanged since the ETag sent in If-None-Match", media_type=None)
_DESCRIPTION = (
    "Needs the token unless [http] public_badges is on. Cacheable: Cache-Control max-age is "
    "[http] badge_max_age; send If-None-Match with the ETag to get 304 when nothing changed."
)

ROUTES = [
    Route(
        "GET",
        "/badge/endpoint/{name}.svg",
        endpoint_badge,
        operation_id="getEndpointBadge",
        summary="Badge: an endpoint's state (up, down, maintenance) and its uptime",
        tag="badges",
        access=Access.BADGE,
        params=(
            text(
                "name",
                "An endpoint name (from GET /api/v1/health)",
                pattern=r"^[^/]+$",
                max_length=200,
                location="path",
                example="vultr-api",
            ),
            replace(choice("window", "The uptime window", list(UPTIME_WINDOWS)), default="24h"),
        ),
        description=_DESCRIPTION,
        responses={200: _SVG, 304: _NOT_MODIFIED, 404: _SVG_404},
    ),
    Route(
        "GET",
        "/badge/catalog.svg",
        catalog_badge,
        operation_id="getCatalogBadge",
        summary="Badge: the catalogue is fresh, stale or quarantined",
        tag="badges",
        access=Access.BADGE,
        description=_DESCRIPTION,
        responses={200: _SVG, 304: _NOT_MODIFIED},
    ),
    Route(
        "GET",
        "/badge/plan/{plan_id}.svg",
        plan_badge,
        operation_id="getPlanBadge",
        summary="Badge: in how many regions a plan is in stock, and its lowest monthly price",
        tag="badges",
        access=Access.BADGE,
        params=(
            text(
                "plan_id",
                "A plan id, e.g. vc2-1c-1gb",
                pattern=r"^[A-Za-z0-9._-]+$",
                max_length=100,
                location="path",
                example="vc2-1c-1gb",
            ),
        ),
        description=_DESCRIPTION,
        responses={200: _SVG, 304: _NOT_MODIFIED, 404: _SVG_404},
    ),
]
