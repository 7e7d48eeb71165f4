"""``/api/v1/plans/{id}``, ``/api/v1/plans/{id}/history`` and ``/api/v1/stock/stats``: the
plan page's data as JSON (the same ``history.plan_view`` the page and the CLI use). Documents
are msgspec Structs; their schemas in the OpenAPI document are generated from them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from vultr_scraper_core.history import stats
from vultr_scraper_core.history.plan_view import (
    PlanHistory,
    PlanNotFound,
    PlanRange,
    plan_history,
    plan_range,
    region_stats,
)
from vultr_scraper_worker.api.errors import ApiError
from vultr_scraper_worker.api.paging import (
    LINK_HEADER,
    PAGE_LIMIT,
    PAIR_CURSOR,
    join_cursor,
    next_link,
    page_after,
)
from vultr_scraper_worker.api.params import choice, text, timestamp
from vultr_scraper_worker.api.routing import Response, Route, json_response
from vultr_scraper_worker.api.state import state_of
from vultr_scraper_worker.documents.catalog import StockStatsPage

_ID = r"^[A-Za-z0-9._-]+$"
DEFAULT_RANGE = timedelta(days=30)


async def get_plan(request: web.Request, args: dict[str, Any]) -> web.StreamResponse:
    state = state_of(request)
    span = stats.WINDOWS[args["span"] or "90d"]
    try:
        found = await plan_history(state.history(), args["plan_id"], datetime.now(UTC), span)
    except PlanNotFound as error:
        raise ApiError(404, str(error)) from None
    return json_response(found)


async def get_plan_history(request: web.Request, args: dict[str, Any]) -> web.StreamResponse:
    state = state_of(request)
    until = args["to"] or datetime.now(UTC)
    since = args["from"] or until - DEFAULT_RANGE
    try:
        found = await plan_range(state.history(), args["plan_id"], since, until)
    except PlanNotFound as error:
        raise ApiError(404, str(error)) from None
    return json_response(found)


async def get_stock_stats(request: web.Request, args: dict[str, Any]) -> web.StreamResponse:
    state = state_of(request)
    now = datetime.now(UTC)
    window = args["window"] or "30d"
    pairs = await region_stats(
        state.history(), now, plan=args["plan"], region=args["region"], window=window
    )
    count = len(pairs)
    if args["cursor"] is not None:
        pairs = [pair for pair in pairs if (pair.plan, pair.region) > args["cursor"]]
    page, has_more = page_after(pairs, args["limit"])
    next_cursor = join_cursor(page[-1].plan, page[-1].region) if has_more else None
    return json_response(
        StockStatsPage(
            at=now,
            window=window,
            pairs=page,
            count=count,
            cursor=next_cursor,
            has_more=has_more,
        ),
        headers=next_link(request, "cursor", next_cursor) if next_cursor else None,
    )


_PLAN_ID = text(
    "plan_id", "Plan id", pattern=_ID, max_length=100, location="path", example="vc2-1c-1gb"
)
_WINDOWS = list(stats.WINDOWS)

ROUTES = [
    Route(
        "GET",
        "/api/v1/plans/{plan_id}",
        get_plan,
        operation_id="getPlan",
        summary="One plan: specs, price per region now, price and stock history, stock statistics",
        tag="catalog",
        params=(_PLAN_ID, choice("span", "How much history (default 90d)", _WINDOWS)),
        responses={
            200: Response("The plan", struct=PlanHistory),
            404: Response("No such plan in the current catalogue"),
        },
    ),
    Route(
        "GET",
        "/api/v1/plans/{plan_id}/history",
        get_plan_history,
        operation_id="getPlanHistory",
        summary="A plan's price and stock intervals overlapping [from, to)",
        tag="catalog",
        description=(
            "`from` defaults to 30 days before `to`, `to` to now (a `from` at or after `to` "
            "selects nothing). Intervals are read from the Redis window and the archive "
            "alike; `valid_to` / `end` null: still holds."
        ),
        params=(
            _PLAN_ID,
            timestamp("from", "Start of the range (inclusive)"),
            timestamp("to", "End of the range (exclusive)"),
        ),
        responses={
            200: Response("The intervals", struct=PlanRange),
            404: Response("Nothing known about this plan"),
        },
    ),
    Route(
        "GET",
        "/api/v1/stock/stats",
        get_stock_stats,
        operation_id="getStockStats",
        summary="Stock reliability per (plan, region): share in stock, streak, time until back",
        tag="catalog",
        description=(
            "Every pair with stock history when neither `plan` nor `region` is given, by plan "
            "then region, paged with `limit` and `cursor` like `/api/v1/availability`. "
            "Shares are over 24h, 7d, 30d and `window` (default 30d), counting only the part "
            "observed since the region's first stock check; the longest stretch out of stock "
            "and the median time until back are over `window`. Durations are seconds."
        ),
        params=(
            text("plan", "Plan id", pattern=_ID, max_length=100, example="vc2-1c-1gb"),
            text("region", "Region id", pattern=_ID, max_length=50, example="fra"),
            choice("window", "Window of the statistics", _WINDOWS),
            PAGE_LIMIT,
            PAIR_CURSOR,
        ),
        responses={
            200: Response(
                "A page of statistics per pair, by plan then region",
                struct=StockStatsPage,
                headers=LINK_HEADER,
            )
        },
    ),
]
