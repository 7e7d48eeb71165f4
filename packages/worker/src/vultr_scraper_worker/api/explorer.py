"""The catalogue explorer's pages: ``/plans/{id}``, ``/plans``, ``/regions/{id}``, ``/changes``.

Server-rendered (``templating``), no JavaScript: filters are GET forms, so every view has a URL
that can be shared. History is read through ``History`` (the Redis window and the archive).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from aiohttp import web
from jinja2.filters import do_urlencode
from markupsafe import Markup

from vultr_scraper_core.describe import describe_event
from vultr_scraper_core.formats import format_time
from vultr_scraper_core.history import stats
from vultr_scraper_core.history.plan_view import PlanHistory, PlanNotFound, plan_history
from vultr_scraper_core.history.query import History
from vultr_scraper_core.history.tables import PriceInterval, StockInterval
from vultr_scraper_core.history.window import Window
from vultr_scraper_core.store.changes import ChangeEvent, ChangeFeed, EventKind
from vultr_scraper_core.store.queries import PlanFilter, PlanRow
from vultr_scraper_core.store.stock import StockStore
from vultr_scraper_worker.api import charts, reads_catalog
from vultr_scraper_worker.api.errors import ApiError
from vultr_scraper_worker.api.params import (
    boolean,
    choice,
    cursor,
    decimal,
    integer,
    text,
    timestamp,
)
from vultr_scraper_worker.api.routing import Response, Route
from vultr_scraper_worker.api.state import ApiState, state_of
from vultr_scraper_worker.api.templating import HTML, money, page

_ID = r"^[A-Za-z0-9._-]+$"
SPANS = ("24h", "7d", "30d", "90d")
PAGE_SIZES = (25, 50, 100)
EVENTS_ON_PLAN = 15
HEAT_DAYS = 14
HEAT_ROWS = 40
SOLD_ROWS = 100  # rows of the region page's "Sold here" (the plans browser lists them all)


def history_of(state: ApiState) -> History:
    return state.history()


def _describe(event: ChangeEvent) -> str:
    return describe_event(event)


# -- the plan page ---------------------------------------------------------------------------


@dataclass
class PriceChart:
    kind: str
    svg: Markup
    headers: list[str]
    rows: list[list[str]]
    legend: list[tuple[int, str]]


def _price_chart(found: PlanHistory, kind: str, label: str) -> PriceChart | None:
    by_region: dict[str, list[PriceInterval]] = defaultdict(list)
    for row in found.prices:
        if row.price_kind == kind:
            by_region[row.region].append(row)
    if not by_region:
        return None
    # Regions with the same price history share one line: "base" when they all agree.
    groups: dict[tuple[tuple[datetime, str], ...], list[str]] = defaultdict(list)
    for region, rows in sorted(by_region.items()):
        groups[tuple((row.valid_from, row.price) for row in rows)].append(region)
    series: list[charts.Series] = []
    legend: list[tuple[int, str]] = []
    table: list[list[str]] = []
    for index, (points, regions) in enumerate(groups.items()):
        name = "every region" if len(groups) == 1 else _regions_label(regions)
        series.append(charts.Series(name, [(at, float(Decimal(p))) for at, p in points]))
        legend.append((index % charts.SERIES_CLASSES, name))
        for at, price in points:
            table.append([name, f"{max(at, found.since):%Y-%m-%d %H:%M}", f"${price}"])
    prices = sorted({Decimal(p) for points in groups for _, p in points})
    desc = (
        f"{label} of {found.plan} from {found.since:%Y-%m-%d} to {found.until:%Y-%m-%d}: "
        + (
            f"${prices[0]} throughout"
            if len(prices) == 1
            else f"between ${prices[0]} and ${prices[-1]}"
        )
        + f", {len(groups)} line(s)."
    )
    # The chart starts where the history does (at least a day back), not at an empty span.
    known = min((row.valid_from for rows in by_region.values() for row in rows), default=None)
    start = found.since if known is None else max(found.since, known)
    start = min(start, found.until - timedelta(days=1))
    svg = charts.step_chart(series, start, found.until, title=f"{label} history", desc=desc)
    return PriceChart(kind, svg, ["Regions", "From", "Price"], table, legend)


def _regions_label(regions: Sequence[str]) -> str:
    shown = ", ".join(regions[:4])
    return shown + (f" +{len(regions) - 4}" if len(regions) > 4 else "")


@dataclass
class StockStrip:
    region: str
    svg: Markup
    share: float | None


def _strips(found: PlanHistory, span: str) -> list[StockStrip]:
    until = found.until
    since = until - stats.WINDOWS[span]
    by_region: dict[str, list[StockInterval]] = defaultdict(list)
    for row in found.stock:
        by_region[row.region].append(row)
    strips = []
    for item in found.stats:
        region = item.region
        spans = [(s.start, s.end) for s in stats.merged(by_region.get(region, []), until)]
        share = stats.in_stock_share(by_region.get(region, []), since, until, item.observed_from)
        strips.append(
            StockStrip(
                region,
                charts.stock_strip(
                    spans,
                    since,
                    until,
                    title=f"{found.plan} in {region}, last {span}",
                    desc=f"in stock {_pct(share)} of the last {span}; "
                    + (f"{len(spans)} in-stock stretch(es)" if spans else "never in stock"),
                ),
                share,
            )
        )
    return strips


def _pct(share: float | None) -> str:
    return "unknown" if share is None else f"{share * 100:.1f} %"


def _self_url(path: str, args: dict[str, Any], **changes: Any) -> str:
    merged = {**{k: v for k, v in args.items() if v not in (None, "", [])}, **changes}
    query = urlencode(
        {k: ("true" if v is True else "false" if v is False else v) for k, v in merged.items()
         if v is not None},
        doseq=True,
    )  # fmt: skip
    return f"{path}?{query}" if query else path


async def plan_page(request: web.Request, args: dict[str, Any]) -> web.StreamResponse:
    state = state_of(request)
    now = datetime.now(UTC)
    span = args["span"] or "30d"
    try:
        found = await plan_history(history_of(state), args["id"], now)
    except PlanNotFound as error:
        raise ApiError(404, str(error)) from None
    events = await ChangeFeed(state.redis, state.prefix).latest(
        limit=EVENTS_ON_PLAN, subject=args["id"]
    )
    charts_ = [
        chart
        for chart in (
            _price_chart(found, "monthly_cost", "Monthly price"),
            _price_chart(found, "hourly_cost", "Hourly price"),
        )
        if chart is not None
    ]
    return page(
        request,
        "plan.html",
        now=now,
        plan=found,
        span=span,
        spans=[(name, _self_url(request.path, {}, span=name)) for name in SPANS],
        price_charts=charts_,
        strips=_strips(found, span),
        events=[(event, _describe(event)) for event in events],
    )


# -- the plans browser ---------------------------------------------------------------------


SORTS = {
    "price": lambda row: (row.monthly_cost is None, row.monthly_cost or Decimal(0)),
    "hourly": lambda row: (row.hourly_cost is None, row.hourly_cost or Decimal(0)),
    "vcpu": lambda row: (row.vcpu_count is None, -(row.vcpu_count or 0)),
    "ram": lambda row: (row.ram_mb is None, -(row.ram_mb or 0)),
    "gpu": lambda row: (row.gpu_vram_gb is None, -(row.gpu_vram_gb or 0)),
    "plan": lambda row: (row.plan, row.region or ""),
    "region": lambda row: (row.region or "", row.plan),
}
SORT_COLUMNS = {
    "Plan": "plan",
    "Region": "region",
    "$/month": "price",
    "$/hour": "hourly",
    "vCPU": "vcpu",
    "RAM": "ram",
    "GPU": "gpu",
}


def _is_gpu(row: PlanRow) -> bool:
    return bool(row.gpu_type or row.gpu_vram_gb)


async def plans_page(request: web.Request, args: dict[str, Any]) -> web.StreamResponse:
    state = state_of(request)
    gpu_view = args["view"] == "gpu"
    flt = PlanFilter(
        plan_type=args["type"],
        region=args["region"],
        min_vcpu=args["min_vcpu"],
        min_ram_mb=args["min_ram"] * 1024 if args["min_ram"] is not None else None,
        gpu_type=args["gpu"],
        min_gpu_vram_gb=args["min_gpu_vram"],
        max_monthly=args["max_monthly"],
        in_stock=args["in_stock"],
    )
    sort = args["sort"] or "price"
    current = await reads_catalog.catalogue_rows(state)
    # Rows come in price order; another order is sorted once per catalogue revision.
    if gpu_view:
        ordered: list[PlanRow] | None = current.ordered(f"gpu|{sort}", SORTS[sort], _is_gpu)
    else:
        ordered = None if sort == "price" else current.ordered(sort, SORTS[sort])
    if flt.in_stock is None:
        rows = current.select(flt, ordered)  # stock is read below for the rows shown only
    else:
        rows = await reads_catalog.plans(state, flt)  # every match's stock decides
        if gpu_view:
            rows = [row for row in rows if _is_gpu(row)]
        if ordered is not None:
            rows = sorted(rows, key=SORTS[sort])
    if args["order"] == "desc":
        rows.reverse()
    size = int(args["size"] or PAGE_SIZES[0])
    number = args["page"] or 1
    pages = max(1, -(-len(rows) // size))
    if number > pages:
        number = pages
    shown = rows[(number - 1) * size : number * size]
    if flt.in_stock is None:
        shown = await reads_catalog.rows_with_stock(state, shown)
    query = {k: v for k, v in args.items() if k not in ("page",)}
    sort_links = {
        header: _self_url(
            request.path,
            query,
            sort=key,
            order="desc" if sort == key and args["order"] != "desc" else None,
        )
        for header, key in SORT_COLUMNS.items()
    }
    types = current.plan_types
    return page(
        request,
        "plans.html",
        rows=shown,
        total=len(rows),
        args=args,
        gpu_view=gpu_view,
        types=types,
        sort=sort,
        sort_links=sort_links,
        page_number=number,
        pages=pages,
        next_url=_self_url(request.path, query, page=number + 1) if number < pages else None,
        prev_url=_self_url(request.path, query, page=number - 1) if number > 1 else None,
    )


# -- the region page -----------------------------------------------------------------------


async def region_page(request: web.Request, args: dict[str, Any]) -> web.StreamResponse:
    state = state_of(request)
    now = datetime.now(UTC)
    region = args["id"]
    rows = await reads_catalog.plans(state, PlanFilter(region=region))
    if not rows:
        raise ApiError(404, f"no plan is sold in region {region!r} in the current catalogue")
    city, country = rows[0].city, rows[0].country
    in_stock = [row for row in rows if row.in_stock]
    cheapest: dict[str, PlanRow] = {}
    for row in in_stock:  # cheapest first already
        cheapest.setdefault(row.plan_type or "-", row)
    # Availability heat-map: plans x the last HEAT_DAYS days, share of each day in stock.
    day0 = (now - timedelta(days=HEAT_DAYS - 1)).replace(hour=0, minute=0, second=0, microsecond=0)
    days = [day0 + timedelta(days=n) for n in range(HEAT_DAYS)]
    sold = {row.plan for row in rows}
    intervals = await history_of(state).stock_intervals(
        day0, now, region=region, pairs={(plan, region) for plan in sold}
    )
    by_plan: dict[str, list[StockInterval]] = defaultdict(list)
    for item in intervals:
        by_plan[item.plan].append(item)
    heat_rows: list[tuple[str, list[float | None]]] = []
    ordered = sorted(sold, key=lambda plan: (-len(by_plan.get(plan, [])), plan))
    check = (await StockStore(state.redis, state.prefix).region_checks()).get(region)
    observed = check.first_checked if check else now  # days before the first check: unknown
    for plan in ordered[:HEAT_ROWS]:
        heat_rows.append((plan, stats.day_shares(by_plan.get(plan, []), days, now, observed)))
    heat = charts.heatmap(
        heat_rows,
        [f"{day:%m-%d}" for day in days],
        title=f"Stock in {region} per plan and day",
        desc=f"{len(heat_rows)} plans over the last {HEAT_DAYS} days, darker = more of the day "
        f"in stock; {len(in_stock)} of {len(rows)} plans are in stock now.",
    )
    events = [
        event
        for event in await ChangeFeed(state.redis, state.prefix).latest(
            limit=200, kinds=[str(EventKind.STOCK_CHANGED)]
        )
        if event.region == region
    ][:20]
    return page(
        request,
        "region.html",
        now=now,
        region=region,
        city=city,
        country=country,
        rows=rows,
        sold_rows=SOLD_ROWS,
        sold_table=[_sold_row(row) for row in rows[:SOLD_ROWS]],
        in_stock=in_stock,
        cheapest=sorted(cheapest.items()),
        heat=heat,
        heat_table=[[plan, *[_pct(share) for share in shares]] for plan, shares in heat_rows],
        heat_headers=["Plan", *[f"{day:%m-%d}" for day in days]],
        events=[(event, _describe(event)) for event in events],
    )


def _sold_row(row: PlanRow) -> list[Any]:
    """The cells of a "Sold here" row (``templating.table_rows`` escapes the text)."""
    return [
        Markup('<a href="/plans/{}">{}</a>').format(do_urlencode(row.plan), row.plan),
        money(row.monthly_cost),
        row.vcpu_count if row.vcpu_count is not None else "-",
        f"{row.ram_mb / 1024:g} GB" if row.ram_mb is not None else "-",
        row.plan_type or "",
        "in stock" if row.in_stock else ("unknown" if row.in_stock is None else "out"),
    ]


# -- the change feed -----------------------------------------------------------------------


async def changes_page(request: web.Request, args: dict[str, Any]) -> web.StreamResponse:
    state = state_of(request)
    now = datetime.now(UTC)
    limit = int(args["size"] or 50)
    kinds = args["kind"] or None
    since, until = args["since"], args["until"]
    events = await ChangeFeed(state.redis, state.prefix).latest(
        limit=limit + 1,
        kinds=kinds,
        subject=args["subject"],
        before=args["before"],
        since=since,
        until=until,
    )
    more = len(events) > limit
    events = events[:limit]
    query = {
        k: format_time(v) if isinstance(v, datetime) else v
        for k, v in args.items()
        if k != "before"
    }
    # The page reads the Redis window; a range reaching past it says where the rest is.
    boundary = await Window(state.redis, state.prefix).boundary()
    archived = boundary is not None and (since is None or since < boundary) and not more
    return page(
        request,
        "changes.html",
        now=now,
        args=args,
        form_since=format_time(since) if since else "",
        form_until=format_time(until) if until else "",
        archive_boundary=boundary if archived else None,
        api_url=_self_url("/api/v1/changes", _api_query(args)),
        kinds=[str(kind) for kind in EventKind],
        events=[(event, _describe(event)) for event in events],
        next_url=_self_url(request.path, query, before=events[-1].id) if more else None,
        first_url=_self_url(request.path, query) if args["before"] else None,
    )


def _api_query(args: dict[str, Any]) -> dict[str, Any]:
    """The page's filters as ``/api/v1/changes`` takes them (oldest first, from the archive
    too)."""
    query: dict[str, Any] = {"kind": args["kind"], "subject": args["subject"]}
    for name in ("since", "until"):
        if args[name] is not None:
            query[name] = format_time(args[name])
    return query


# -- routes --------------------------------------------------------------------------------


def _html(description: str) -> Response:
    return Response(description, media_type=HTML, schema={"type": "string"})


_PAGE = {200: _html("HTML page"), 404: _html("No such plan or region")}
_PLAN_ID = text("id", "Plan id", pattern=_ID, max_length=100, location="path", example="vc2-1c-1gb")
_REGION_ID = text("id", "Region id", pattern=_ID, max_length=50, location="path", example="fra")

ROUTES = [
    Route(
        "GET",
        "/plans",
        plans_page,
        operation_id="getPlansPage",
        form_query=True,
        summary="The plans browser (HTML): filters, sorting, paging",
        tag="pages",
        html=True,
        params=(
            choice("view", "gpu: only GPU plans, with GPU columns", ["all", "gpu"]),
            text("type", "Plan type (vc2, vhf, vcg, vbm, ...)", max_length=20, example="vc2"),
            text("region", "Region id", pattern=_ID, max_length=50, example="fra"),
            integer("min_vcpu", "At least this many vCPUs", minimum=0, maximum=100_000),
            integer("min_ram", "At least this much RAM (GB)", minimum=0, maximum=100_000),
            text(
                "gpu",
                "GPU model contains",
                pattern=r"^[A-Za-z0-9 ._-]+$",
                max_length=50,
                example="a100",
            ),
            integer(
                "min_gpu_vram", "At least this much GPU memory (GB)", minimum=0, maximum=1_000_000
            ),
            decimal(
                "max_monthly", "At most this monthly price (USD)", minimum=0, maximum=10_000_000
            ),
            boolean("in_stock", "Only in stock (true) or out of stock (false)"),
            choice("sort", "Sort column", list(SORTS)),
            choice("order", "Sort order", ["asc", "desc"]),
            integer("page", "Page number", minimum=1, maximum=100_000),
            choice("size", "Rows per page", [str(n) for n in PAGE_SIZES]),
        ),
        responses={200: _html("HTML page")},
    ),
    Route(
        "GET",
        "/plans/{id}",
        plan_page,
        operation_id="getPlanPage",
        summary="One plan (HTML): prices per region, price history, stock timeline, reliability",
        tag="pages",
        html=True,
        params=(_PLAN_ID, choice("span", "Stock timeline span", SPANS)),
        responses=_PAGE,
    ),
    Route(
        "GET",
        "/regions/{id}",
        region_page,
        operation_id="getRegionPage",
        summary="One region (HTML): plans sold, in stock, cheapest per class, heat-map",
        tag="pages",
        html=True,
        params=(_REGION_ID,),
        responses=_PAGE,
    ),
    Route(
        "GET",
        "/changes",
        changes_page,
        operation_id="getChangesPage",
        form_query=True,
        summary="The change feed (HTML), newest first, with filters and cursor paging",
        tag="pages",
        html=True,
        params=(
            choice(
                "kind", "Only these kinds (repeatable)", [str(k) for k in EventKind], repeated=True
            ),
            text(
                "subject",
                "Only events about this plan, region or endpoint",
                pattern=r"^[^\x00-\x1f]+$",
                max_length=200,
                example="vc2-1c-1gb",
                invalid="%01",
            ),
            timestamp("since", "Only events recorded at or after this time (or 7d, 24h)"),
            timestamp("until", "Only events recorded before this time"),
            cursor("before", "Only events before this event id (the next page)"),
            choice("size", "Events per page", ["50", "100", "200"]),
        ),
        responses={200: _html("HTML page")},
    ),
]
