"""One plan's present and past: its prices in every region, its price history, its stock
intervals and stock statistics per region, read through ``History`` (window and archive).

Shared by the plan page, ``GET /api/v1/plans/{id}`` and ``vultr-scraper plan ID``, so the three
say the same thing.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import msgspec

from vultr_scraper_core.history import stats
from vultr_scraper_core.history.query import History
from vultr_scraper_core.history.tables import PriceInterval, StockInterval
from vultr_scraper_core.models import TWIN_SUFFIX
from vultr_scraper_core.store.codec import as_utc
from vultr_scraper_core.store.queries import PlanFilter, PlanRow
from vultr_scraper_core.store.stock import StockStore

SPEC_FIELDS = (
    "vcpu_count",
    "ram_mb",
    "disk_gb",
    "disk_count",
    "bandwidth_gb",
    "storage",
    "cpu_model",
    "gpu_type",
    "gpu_brand",
    "gpu_vram_gb",
    "gpu_count",
)


class PlanSpecs(msgspec.Struct, kw_only=True, omit_defaults=True):
    vcpu_count: int | None = None
    ram_mb: int | None = None
    disk_gb: int | None = None
    disk_count: int | None = None
    bandwidth_gb: int | None = None
    storage: str | None = None
    cpu_model: str | None = None
    gpu_type: str | None = None
    gpu_brand: str | None = None
    gpu_vram_gb: int | None = None
    gpu_count: str | None = None


class RegionStats(msgspec.Struct, kw_only=True):
    plan: str
    region: str
    observed_from: datetime | None  # the region's first stock check; None: never checked
    stats: stats.StockStats


class PlanHistory(msgspec.Struct, kw_only=True):
    plan: str
    kind: str  # "cloud" or "metal"
    plan_type: str | None
    specs: PlanSpecs
    twin: str | None  # the ``-sc1`` twin sold at a regional price, when one exists
    twin_of: str | None
    since: datetime  # the history below covers [since, until)
    until: datetime
    regions: list[PlanRow]  # the price and stock in every region it is sold in now
    prices: list[PriceInterval]  # price intervals overlapping [since, until)
    stock: list[StockInterval]  # in-stock intervals overlapping [since, until)
    stats: list[RegionStats]


class PlanNotFound(LookupError):
    pass


async def region_stats(
    history: History,
    at: datetime,
    *,
    plan: str | None = None,
    region: str | None = None,
    window: str = "30d",
    intervals: list[StockInterval] | None = None,
) -> list[RegionStats]:
    """Statistics of every (plan, region) pair with stock history or a checked region that
    sells it, narrowed to ``plan`` and/or ``region``; ``intervals`` if already read."""
    moment = as_utc(at)
    if intervals is None:
        since = moment - max(stats.WINDOWS[window], stats.WINDOWS["30d"])
        intervals = await history.stock_intervals(since, moment, plan, region)
    checks = await StockStore(history.redis, history.prefix).region_checks()
    by_pair: dict[tuple[str, str], list[StockInterval]] = {}
    for row in intervals:
        by_pair.setdefault((row.plan, row.region), []).append(row)
    return [
        RegionStats(
            plan=pair_plan,
            region=pair_region,
            observed_from=checks[pair_region].first_checked if pair_region in checks else None,
            stats=stats.stock_stats(
                listed,
                moment,
                observed_from=checks[pair_region].first_checked if pair_region in checks else None,
                window=window,
            ),
        )
        for (pair_plan, pair_region), listed in sorted(by_pair.items())
    ]


async def plan_history(
    history: History,
    plan: str,
    at: datetime,
    span: timedelta = timedelta(days=90),
) -> PlanHistory:
    """Everything about ``plan`` now and over ``[at - span, at)``. Raises ``PlanNotFound``
    when the current catalogue has no such plan."""
    moment = as_utc(at)
    rows = await history.plans(PlanFilter(plan=plan))
    if not rows:
        raise PlanNotFound(f"no plan {plan!r} in the current catalogue")
    twin_rows = (
        await history.plans(PlanFilter(plan=plan + TWIN_SUFFIX))
        if not plan.endswith(TWIN_SUFFIX)
        else []
    )
    first = rows[0]
    since = moment - span
    prices = await history.price_intervals(since, moment, plan)
    window = max(span, stats.WINDOWS["30d"])
    stock = await history.stock_intervals(moment - window, moment, plan)
    sold = [row.region for row in rows if row.region is not None]
    found = {
        item.region: item
        for item in await region_stats(history, moment, plan=plan, intervals=stock)
    }
    checks = await StockStore(history.redis, history.prefix).region_checks()
    # Regions that sell it but never had it in stock still get (all-zero) statistics.
    for region in sold:
        if region not in found and region in checks:
            found[region] = RegionStats(
                plan=plan,
                region=region,
                observed_from=checks[region].first_checked,
                stats=stats.stock_stats([], moment, observed_from=checks[region].first_checked),
            )
    order = {region: index for index, region in enumerate(sorted(sold))}
    return PlanHistory(
        plan=plan,
        kind=first.kind,
        plan_type=first.plan_type,
        specs=PlanSpecs(**{name: getattr(first, name) for name in SPEC_FIELDS}),
        twin=twin_rows[0].plan if twin_rows else None,
        twin_of=first.twin_of,
        since=since,
        until=moment,
        regions=sorted(rows, key=lambda row: row.region or ""),
        prices=sorted(prices, key=lambda row: (row.region, row.price_kind, row.valid_from)),
        stock=[row for row in stock if row.end is None or row.end > since],
        stats=sorted(
            found.values(), key=lambda item: (order.get(item.region, 1 << 30), item.region)
        ),
    )


class PlanRange(msgspec.Struct, kw_only=True):
    """A plan's price and stock intervals overlapping ``[from, to)``."""

    plan: str
    from_: datetime = msgspec.field(name="from")
    to: datetime
    prices: list[PriceInterval]
    stock: list[StockInterval]


async def plan_range(history: History, plan: str, since: datetime, until: datetime) -> PlanRange:
    """Raises ``PlanNotFound`` when nothing at all is known about ``plan`` in the range and
    the current catalogue has no such plan."""
    low, high = as_utc(since), as_utc(until)
    prices: list[PriceInterval] = []
    stock: list[StockInterval] = []
    if low < high:  # an empty range overlaps nothing
        prices = await history.price_intervals(low, high, plan)
        stock = await history.stock_intervals(low, high, plan)
    if not prices and not stock and not await history.plans(PlanFilter(plan=plan)):
        raise PlanNotFound(f"no plan {plan!r} in the current catalogue or in [from, to)")
    return PlanRange(
        plan=plan,
        from_=low,
        to=high,
        prices=sorted(prices, key=lambda row: (row.region, row.price_kind, row.valid_from)),
        stock=stock,
    )
