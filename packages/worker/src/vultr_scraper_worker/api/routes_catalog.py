"""``/api/v1/plans``, ``/api/v1/availability``, ``/api/v1/changes`` and ``/api/v1/catalog``.

The plan filters are the ``plans`` command's (``store.queries.PlanFilter``); ``at`` answers
from history ("what did it cost, and was it in stock, on that date").
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from aiohttp import web

from vultr_scraper_core.store.changes import EventKind
from vultr_scraper_core.store.queries import PlanFilter, PlanRow, plan_sort_key
from vultr_scraper_worker.api import reads_catalog
from vultr_scraper_worker.api.paging import (
    AMOUNT,
    LINK_HEADER,
    PAGE_LIMIT,
    PAIR_CURSOR,
    PART,
    amount_text,
    join_cursor,
    key_cursor,
    next_link,
    page_after,
)
from vultr_scraper_worker.api.params import (
    boolean,
    choice,
    cursor,
    decimal,
    integer,
    text,
    timestamp,
)
from vultr_scraper_worker.api.routing import Response, Route, json_response
from vultr_scraper_worker.api.state import state_of
from vultr_scraper_worker.documents.catalog import (
    AvailabilityPage,
    CatalogReport,
    ChangesPage,
    PlansPage,
)

_ID = r"^[A-Za-z0-9._-]+$"
_GPU = r"^[A-Za-z0-9 ._-]+$"


async def list_plans(request: web.Request, args: dict[str, Any]) -> web.StreamResponse:
    state = state_of(request)
    flt = PlanFilter(
        plan_type=args["type"],
        plan=args["plan"],
        region=args["region"],
        min_vcpu=args["min_vcpu"],
        min_ram_mb=args["min_ram"],
        min_gpu_vram_gb=args["min_gpu_vram"],
        gpu_type=args["gpu"],
        max_monthly=args["max_monthly"],
        max_hourly=args["max_hourly"],
        in_stock=args["in_stock"],
    )
    rows = await reads_catalog.plans(state, flt, args["at"])
    count = len(rows)
    if args["cursor"] is not None:
        rows = [row for row in rows if plan_sort_key(row) > args["cursor"]]
    page, has_more = page_after(rows, args["limit"])
    next_cursor = _plan_cursor(page[-1]) if has_more else None
    return json_response(
        PlansPage(
            plans=page,
            count=count,
            truncated=has_more,
            at=args["at"],
            cursor=next_cursor,
            has_more=has_more,
        ),
        headers=next_link(request, "cursor", next_cursor) if next_cursor else None,
    )


def _plan_cursor(row: PlanRow) -> str:
    """``plan_sort_key(row)`` as text: monthly~hourly~plan~region (prices exact)."""
    monthly, hourly = amount_text(row.monthly_cost), amount_text(row.hourly_cost)
    return join_cursor(monthly, hourly, row.plan, row.region or "-")


def _read_plan_cursor(parts: list[str]) -> tuple[bool, Decimal, bool, Decimal, str, str]:
    monthly, hourly, plan, region = parts
    return (
        not monthly,
        Decimal(monthly or 0),
        not hourly,
        Decimal(hourly or 0),
        plan,
        "" if region == "-" else region,
    )


_PLAN_CURSOR = key_cursor(
    "Start after this row: the `cursor` of the previous page (monthly~hourly~plan~region)",
    f"^({AMOUNT})?~({AMOUNT})?~{PART}~{PART}$",
    "5.00~0.007~vc2-1c-1gb~fra",
    _read_plan_cursor,
)


async def availability(request: web.Request, args: dict[str, Any]) -> web.StreamResponse:
    rows = await reads_catalog.stock_rows(state_of(request), args["plan"], args["region"])
    if args["in_stock"] is not None:
        rows = [row for row in rows if row.in_stock is args["in_stock"]]
    count = len(rows)
    if args["cursor"] is not None:
        rows = [row for row in rows if (row.plan, row.region) > args["cursor"]]
    page, has_more = page_after(rows, args["limit"])
    next_cursor = join_cursor(page[-1].plan, page[-1].region) if has_more else None
    return json_response(
        AvailabilityPage(availability=page, count=count, cursor=next_cursor, has_more=has_more),
        headers=next_link(request, "cursor", next_cursor) if next_cursor else None,
    )


async def changes(request: web.Request, args: dict[str, Any]) -> web.StreamResponse:
    state = state_of(request)
    limit = args["limit"]
    # One more than asked tells whether another page exists.
    events = await reads_catalog.read_changes(
        state,
        after=args["after"],
        since=args["since"],
        until=args["until"],
        kinds=args["kind"],
        subject=args["subject"],
        limit=limit + 1,
    )
    has_more = len(events) > limit
    events = events[:limit]
    cursor_value = events[-1].id if events else args["after"]
    headers = {}
    if has_more and cursor_value:
        query = request.rel_url.query.copy()
        query["after"] = cursor_value
        headers["Link"] = f'<{request.rel_url.with_query(query)}>; rel="next"'
    return json_response(
        ChangesPage(events=events, cursor=cursor_value, has_more=has_more),
        headers=headers,
    )


async def catalog(request: web.Request, args: dict[str, Any]) -> web.StreamResponse:
    state = state_of(request)
    found = await reads_catalog.summary(state, with_stock=True)
    fresh, reason = reads_catalog.freshness(state, found)
    return json_response(
        CatalogReport(
            counts=found.counts,
            version=found.version,
            fetched_at=found.fetched_at,
            last_success_at=found.last_success,
            last_attempt_at=found.last_attempt,
            last_status=found.last_status,
            last_reason=found.last_reason,
            stock_checked_at=found.stock_checked_at,
            fresh=fresh,
            freshness=reason,
            quarantine=found.quarantine,
            stock=found.stock,
            held_stock=found.held_stock,
            errors=found.collection_errors,
        )
    )


_REGION = text("region", "Region id, e.g. fra", pattern=_ID, max_length=50, example="fra")
_PLAN = text("plan", "Plan id, e.g. vc2-1c-1gb", pattern=_ID, max_length=100, example="vc2-1c-1gb")


ROUTES = [
    Route(
        "GET",
        "/api/v1/plans",
        list_plans,
        operation_id="listPlans",
        summary="Plans per region with their price and stock, cheapest first; `at` for history",
        tag="catalog",
        description=(
            "One row per (plan, region), priced for that region. Filters combine with AND and "
            "are those of `vultr-scraper plans` (`--min-ram` is `min_ram`, in MB). Prices are "
            "exact decimal strings (USD)."
        ),
        params=(
            text(
                "type",
                "Plan type: vc2, vhf, vhp, voc, vcg, vdm, vx1, or vbm (bare metal)",
                pattern=_ID,
                max_length=20,
                example="vc2",
            ),
            _PLAN,
            _REGION,
            integer("min_vcpu", "At least this many vCPUs", minimum=0, maximum=100_000),
            integer("min_ram", "At least this much RAM (MB)", minimum=0, maximum=100_000_000),
            integer(
                "min_gpu_vram",
                "At least this much GPU memory (GB)",
                minimum=0,
                maximum=1_000_000,
            ),
            text(
                "gpu",
                "GPU model or brand contains this (case-insensitive), e.g. a100",
                pattern=_GPU,
                max_length=50,
                example="a100",
            ),
            decimal(
                "max_monthly", "At most this monthly price (USD)", minimum=0, maximum=10_000_000
            ),
            decimal("max_hourly", "At most this hourly price (USD)", minimum=0, maximum=100_000),
            boolean("in_stock", "Only rows in stock (true) or out of stock (false)"),
            timestamp("at", "Answer as of this time (RFC 3339, or a date = 00:00 UTC)"),
            PAGE_LIMIT,
            _PLAN_CURSOR,
        ),
        responses={200: Response("A page of matching rows", struct=PlansPage, headers=LINK_HEADER)},
    ),
    Route(
        "GET",
        "/api/v1/availability",
        availability,
        operation_id="listAvailability",
        summary="Current stock per (plan, region), with since when",
        tag="catalog",
        params=(
            _PLAN,
            _REGION,
            boolean("in_stock", "Only pairs in (true) or out of stock"),
            PAGE_LIMIT,
            PAIR_CURSOR,
        ),
        responses={
            200: Response("A page of stock rows", struct=AvailabilityPage, headers=LINK_HEADER)
        },
    ),
    Route(
        "GET",
        "/api/v1/changes",
        changes,
        operation_id="listChanges",
        summary="The change feed, oldest first, with cursor pagination",
        tag="changes",
        description=(
            "Pass the returned `cursor` as `after` to get the next page, or to poll for events "
            "newer than the last one seen. A `Link: rel=next` header is set when `has_more`."
        ),
        params=(
            cursor("after", "Only events after this event id (exclusive)"),
            timestamp("since", "Only events recorded at or after this time"),
            timestamp("until", "Only events recorded before this time"),
            choice(
                "kind",
                "Only events of these kinds (repeatable)",
                [str(kind) for kind in EventKind],
                repeated=True,
            ),
            text(
                "subject",
                "Only events about this plan, region or endpoint",
                pattern=r"^[^\x00-\x1f]+$",
                max_length=200,
                example="vc2-1c-1gb",
                invalid="%01",
            ),
            integer("limit", "Page size", minimum=1, maximum=1000, default=100),
        ),
        responses={
            200: Response(
                "A page of events",
                struct=ChangesPage,
                headers={"Link": "The next page, when there is one"},
            )
        },
    ),
    Route(
        "GET",
        "/api/v1/catalog",
        catalog,
        operation_id="getCatalogSummary",
        summary="Catalogue size, freshness and quarantine state",
        tag="catalog",
        responses={200: Response("Summary", struct=CatalogReport)},
    ),
]
