"""Read-side queries shared by the CLI, the HTTP API, metrics and the alert engine.

``find_plans`` answers "which plan, where, for how much, in stock?" from the current snapshot,
or from history with ``at=`` (record versions replayed up to that time, stock intervals).
One row per (plan, region), priced for that region:

* ``location_cost[region]`` replaces the base price there (``price_source="location_cost"``);
* a ``-sc1`` twin is the SKU for its regions: its base plan gets no row for a region the twin
  is sold in, so no region is listed (or counted) twice;
* bare-metal plans have ``kind="metal"`` and ``plan_type="vbm"`` (their API ``type`` is a
  storage class, kept in ``storage``) and count hardware threads as vCPUs;
* a plan sold nowhere (``locations: []``) gets one row with ``region=None``, unless a region
  filter is given.
"""

from __future__ import annotations

import asyncio
import weakref
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol

import msgspec
from redis.asyncio import Redis

from vultr_scraper_core.models import Catalogue, CloudPlan, MetalPlan, Plan
from vultr_scraper_core.store.catalog import CatalogueStore, QuarantineInfo
from vultr_scraper_core.store.codec import as_utc, decode, from_ms, text, to_ms
from vultr_scraper_core.store.stock import (
    Interval,
    RegionCheck,
    StockCheckpoint,
    StockKeys,
    StockState,
    StockStore,
    StockView,
    apply_flips,
    interval_flips,
    pair_key,
    split_pair,
)

METAL_TYPE = "vbm"


class PlanFilter(msgspec.Struct, kw_only=True, omit_defaults=True):
    plan_type: str | None = None  # vc2, vhf, vhp, voc, vcg, vdm, vx1, vbm (bare metal)
    region: str | None = None
    min_vcpu: int | None = None
    min_ram_mb: int | None = None
    min_gpu_vram_gb: int | None = None
    gpu_type: str | None = None  # case-insensitive part of gpu_type or gpu_brand ("a100")
    max_monthly: Decimal | None = None
    in_stock: bool | None = None
    # Beyond the shared contract, for saved searches:
    plan: str | None = None
    regions: list[str] = []  # any of these (combined with ``region`` if both are set)
    max_hourly: Decimal | None = None


class PlanRow(msgspec.Struct, kw_only=True):
    plan: str  # the id to deploy (a -sc1 twin's own id)
    kind: str  # "cloud" or "metal"
    plan_type: str | None
    region: str | None
    monthly_cost: Decimal | None
    hourly_cost: Decimal | None
    monthly_cost_preemptible: Decimal | None = None
    hourly_cost_preemptible: Decimal | None = None
    price_source: str = "base"  # "base" or "location_cost"
    vcpu_count: int | None = None
    ram_mb: int | None = None
    disk_gb: int | None = None
    disk_count: int | None = None
    bandwidth_gb: int | None = None
    storage: str | None = None  # disk_type (cloud) or the metal storage class
    cpu_model: str | None = None
    gpu_type: str | None = None
    gpu_brand: str | None = None
    gpu_vram_gb: int | None = None
    gpu_count: str | None = None  # as published; may be a fraction such as "1/2"
    in_stock: bool | None = None  # None: the region's stock was never checked (by then)
    stock_since: datetime | None = None
    twin_of: str | None = None
    city: str | None = None
    country: str | None = None


class StockRow(msgspec.Struct, kw_only=True):
    plan: str
    region: str
    in_stock: bool
    since: datetime  # when the current state was first observed
    first_seen: datetime | None = None  # first check that listed it there; None: never listed
    last_in_stock: datetime | None = None  # now-ish (last check) when in stock; None: never
    checked_at: datetime | None = None  # the region's last successful check


class CatalogueSummary(msgspec.Struct, kw_only=True):
    plans: int
    metal: int
    regions: int
    os: int
    version: int
    fetched_at: datetime | None
    last_success_at: datetime | None
    last_attempt_at: datetime | None
    last_status: str | None
    last_reason: str | None
    stock_checked_at: datetime | None
    quarantine: QuarantineInfo | None
    # The rest of the catalogue: apps, k8s_versions, storage_clusters, isos, databases.
    others: dict[str, int] = {}


StockLookup = Callable[[str, str], tuple[bool | None, datetime | None]]


def plan_matches(flt: PlanFilter, row: PlanRow) -> bool:
    """Whether ``row`` satisfies every condition set in ``flt``."""
    if flt.plan_type is not None and (row.plan_type or "").lower() != flt.plan_type.lower():
        return False
    if flt.plan is not None and row.plan != flt.plan:
        return False
    if flt.region is not None and row.region != flt.region:
        return False
    if flt.regions and row.region not in flt.regions:
        return False
    if not _at_least(row.vcpu_count, flt.min_vcpu):
        return False
    if not _at_least(row.ram_mb, flt.min_ram_mb):
        return False
    if not _at_least(row.gpu_vram_gb, flt.min_gpu_vram_gb):
        return False
    if flt.gpu_type is not None:
        wanted = flt.gpu_type.lower()
        names = [(row.gpu_type or "").lower(), (row.gpu_brand or "").lower()]
        if not any(wanted in name for name in names if name):
            return False
    if flt.max_monthly is not None and (
        row.monthly_cost is None or row.monthly_cost > flt.max_monthly
    ):
        return False
    if flt.max_hourly is not None and (row.hourly_cost is None or row.hourly_cost > flt.max_hourly):
        return False
    return flt.in_stock is None or row.in_stock is flt.in_stock


def _at_least(value: int | None, minimum: int | None) -> bool:
    return minimum is None or (value is not None and value >= minimum)


def plan_rows(catalogue: Catalogue, stock: StockLookup) -> Iterator[PlanRow]:
    """Every (plan, region) row of ``catalogue`` (no filtering)."""
    every: list[Plan] = [*catalogue.plans.values(), *catalogue.metal.values()]
    twins: dict[str, set[str]] = {}
    for plan in every:
        base = plan.twin_of
        if base is not None and catalogue.plan(base) is not None:
            twins.setdefault(base, set()).update(plan.locations or [])
    for plan in every:
        sold = [region for region in plan.locations or [] if region not in twins.get(plan.id, ())]
        if not plan.locations:
            yield _row(plan, None, catalogue, stock)
        for region in sold:
            yield _row(plan, region, catalogue, stock)


def _row(plan: Plan, region: str | None, catalogue: Catalogue, stock: StockLookup) -> PlanRow:
    prices = plan.prices(region)
    in_stock, since = stock(plan.id, region) if region is not None else (None, None)
    place = catalogue.regions.get(region or "")
    row = PlanRow(
        plan=plan.id,
        kind="metal" if isinstance(plan, MetalPlan) else "cloud",
        plan_type=METAL_TYPE if isinstance(plan, MetalPlan) else plan.type,
        region=region,
        monthly_cost=prices["monthly_cost"],
        hourly_cost=prices["hourly_cost"],
        monthly_cost_preemptible=prices["monthly_cost_preemptible"],
        hourly_cost_preemptible=prices["hourly_cost_preemptible"],
        price_source="location_cost" if region in (plan.location_cost or {}) else "base",
        vcpu_count=plan.vcpus,
        ram_mb=plan.ram,
        disk_gb=plan.disk,
        disk_count=plan.disk_count,
        bandwidth_gb=plan.bandwidth,
        gpu_type=plan.gpu_type,
        gpu_vram_gb=plan.gpu_vram_gb,
        gpu_count=str(plan.gpu_count) if plan.gpu_count is not None else None,
        in_stock=in_stock,
        stock_since=since,
        twin_of=plan.twin_of if plan.twin_of and catalogue.plan(plan.twin_of) else None,
        city=place.city if place else None,
        country=place.country if place else None,
    )
    if isinstance(plan, CloudPlan):
        row.storage = plan.disk_type
        row.gpu_brand = plan.gpu_brand
    else:
        row.storage = plan.type
        row.cpu_model = plan.cpu_model
    return row


def plan_sort_key(row: PlanRow) -> tuple[bool, Decimal, bool, Decimal, str, str]:
    return (
        row.monthly_cost is None,
        row.monthly_cost or Decimal(0),
        row.hourly_cost is None,
        row.hourly_cost or Decimal(0),
        row.plan,
        row.region or "",
    )


def _current_stock(view: StockView) -> StockLookup:
    def lookup(plan: str, region: str) -> tuple[bool | None, datetime | None]:
        state = view.states.get(pair_key(plan, region))
        if state is not None:
            return state.in_stock, state.since
        check = view.regions.get(region)
        return (False, check.first_checked) if check is not None else (None, None)

    return lookup


def points_lookup(
    points: StockCheckpoint, checks: dict[str, RegionCheck], at: datetime
) -> StockLookup:
    """Stock at ``at`` from every pair's state then: in stock since the interval began; out of
    stock since it ended (or since the region's first check); unknown before that check."""

    def lookup(plan: str, region: str) -> tuple[bool | None, datetime | None]:
        check = checks.get(region)
        if check is None or check.first_checked > at:
            return None, None
        point = points.get(pair_key(plan, region))
        if point is None:
            return False, check.first_checked
        since = from_ms(point.since_ms)
        if point.in_stock:
            return True, since
        return False, max(check.first_checked, since)

    return lookup


def intervals_lookup(
    intervals: dict[str, list[Interval]], checks: dict[str, RegionCheck], at: datetime
) -> StockLookup:
    """The same answer from whole interval lists (before the history job indexed them)."""
    points: StockCheckpoint = {}
    for pair, listed in intervals.items():
        apply_flips(points, sorted(f for f in interval_flips(pair, listed) if f.at_ms <= to_ms(at)))
    return points_lookup(points, checks, at)


class PastSource(Protocol):
    """Where "as of" answers come from: the Redis window alone (``RedisPast``), or the window
    and the archive (``vultr_scraper_core.history.query.History``)."""

    async def catalogue_at(self, at: datetime) -> Catalogue: ...

    async def catalogue_rows_at(self, at: datetime) -> CatalogueRows: ...

    async def stock_at(self, at: datetime) -> StockLookup: ...


class RedisPast:
    """ "As of" from Redis alone: right for any time inside the window."""

    def __init__(self, redis: Redis, prefix: str) -> None:
        self.catalogue = CatalogueStore(redis, prefix)
        self.stock = StockStore(redis, prefix)

    async def catalogue_at(self, at: datetime) -> Catalogue:
        return await self.catalogue.catalogue_at(at)

    async def catalogue_rows_at(self, at: datetime) -> CatalogueRows:
        past = await self.catalogue.past_at(at)
        return await rows_for(("redis", past.digest()), past.replay)

    async def stock_at(self, at: datetime) -> StockLookup:
        checks = await self.stock.region_checks()
        points = await self.stock.points_at(to_ms(at))
        if points is None:  # no checkpoint yet: read the intervals themselves
            return intervals_lookup(await self.stock.intervals(), checks, at)
        return points_lookup(points, checks, at)


class CatalogueRows:
    """Every (plan, region) row of one catalogue, without stock (``in_stock`` None), sorted by
    ``plan_sort_key`` and indexed by plan and by region. Built once per catalogue revision
    (``current_rows``) and shared: never change a row, copy it (``with_stock`` does)."""

    def __init__(self, catalogue: Catalogue) -> None:
        self.catalogue = catalogue
        self.rows = sorted(plan_rows(catalogue, _no_stock), key=plan_sort_key)
        self.by_plan: dict[str, list[PlanRow]] = {}
        self.by_region: dict[str, list[PlanRow]] = {}
        for row in self.rows:
            self.by_plan.setdefault(row.plan, []).append(row)
            if row.region is not None:
                self.by_region.setdefault(row.region, []).append(row)
        self.plan_types = sorted({row.plan_type for row in self.rows if row.plan_type})
        # Per region, the rows with a monthly price, cheapest first (``cheapest_in_stock``).
        self.priced_by_region = {
            region: [row for row in listed if row.monthly_cost is not None]
            for region, listed in self.by_region.items()
        }
        self._orders: dict[str, list[PlanRow]] = {}

    def ordered(
        self,
        name: str,
        key: Callable[[PlanRow], Any],
        keep: Callable[[PlanRow], bool] | None = None,
    ) -> list[PlanRow]:
        """The rows ``keep`` keeps (default: all) sorted by ``key`` (stable, so ties keep the
        price order), kept under ``name`` for the next request of the same view."""
        if name not in self._orders:
            rows = self.rows if keep is None else [row for row in self.rows if keep(row)]
            self._orders[name] = sorted(rows, key=key)
        return self._orders[name]

    def select(self, flt: PlanFilter, rows: Sequence[PlanRow] | None = None) -> list[PlanRow]:
        """The rows of ``rows`` (default: every row, in price order) matching every condition
        of ``flt`` except ``in_stock`` (stock is not part of the catalogue)."""
        if rows is None and flt.plan is not None:
            base: Sequence[PlanRow] = self.by_plan.get(flt.plan, [])
        elif rows is None and flt.region is not None:
            base = self.by_region.get(flt.region, [])
        else:
            base = self.rows if rows is None else rows
        # Conditions on the plan itself hold for all of its rows: test one row per plan.
        per_plan = PlanFilter(
            plan_type=flt.plan_type,
            min_vcpu=flt.min_vcpu,
            min_ram_mb=flt.min_ram_mb,
            min_gpu_vram_gb=flt.min_gpu_vram_gb,
            gpu_type=flt.gpu_type,
        )
        if per_plan != _NO_FILTER:
            allowed = {
                plan for plan, listed in self.by_plan.items() if plan_matches(per_plan, listed[0])
            }
            base = [row for row in base if row.plan in allowed]
        per_row = PlanFilter(
            plan=flt.plan,
            region=flt.region,
            regions=flt.regions,
            max_monthly=flt.max_monthly,
            max_hourly=flt.max_hourly,
        )
        if per_row != _NO_FILTER:
            base = [row for row in base if plan_matches(per_row, row)]
        if flt.region is not None or flt.regions:
            base = [row for row in base if row.region is not None]
        return list(base)


_NO_FILTER = PlanFilter()
# The rows of catalogues as of past times, by what identifies them (the stored bytes they were
# decoded from, or immutable archive files): "as of" queries come in runs about the same few
# times (a page of results after another, the same day asked again), and a past catalogue
# never changes.
# Fewer when they are large: a catalogue's rows at ten times today's size (264,000 rows) take
# about 70 MiB, and eight of them would add over half a GiB to the API process.
_AS_OF_ROWS: OrderedDict[Hashable, CatalogueRows] = OrderedDict()
AS_OF_ROWS_KEPT = 8
AS_OF_ROWS_BUDGET = 600_000  # rows in all; the latest catalogue is kept whatever its size


async def rows_for(key: Hashable, build: Callable[[], Catalogue]) -> CatalogueRows:
    """The rows of the catalogue ``key`` names, built from ``build()`` when not kept."""
    found = _AS_OF_ROWS.get(key)
    if found is not None:
        _AS_OF_ROWS.move_to_end(key)
        return found
    # Thousands of rows on a full catalogue: decode, build and sort them off the event loop.
    built = await asyncio.to_thread(lambda: CatalogueRows(build()))
    _AS_OF_ROWS[key] = built
    while len(_AS_OF_ROWS) > AS_OF_ROWS_KEPT:
        _AS_OF_ROWS.popitem(last=False)
    while len(_AS_OF_ROWS) > 1 and sum(len(kept.rows) for kept in _AS_OF_ROWS.values()) > (
        AS_OF_ROWS_BUDGET
    ):
        _AS_OF_ROWS.popitem(last=False)
    return built


# One decoded catalogue per Redis client and key prefix, for its revision (the API serves
# many requests from one client; a CLI process reads once).
_CURRENT: weakref.WeakKeyDictionary[Redis, dict[str, tuple[str, CatalogueRows]]] = (
    weakref.WeakKeyDictionary()
)


async def current_rows(redis: Redis, prefix: str) -> CatalogueRows:
    """The current catalogue's rows. Decoded once per catalogue revision (``meta.revision``,
    new with every commit); a snapshot without a revision (written before revisions existed)
    is decoded on every call until the next commit."""
    store = CatalogueStore(redis, prefix)
    revision = await redis.hget(store.keys.meta, "revision")  # type: ignore[misc]
    known = _CURRENT.get(redis, {}).get(prefix)
    if revision is not None and known is not None and known[0] == text(revision):
        return known[1]
    committed = await store.load()
    # Thousands of rows on a full catalogue: build and sort them off the event loop.
    built = await asyncio.to_thread(CatalogueRows, committed.catalogue)
    if committed.meta.revision:
        _CURRENT.setdefault(redis, {})[prefix] = (committed.meta.revision, built)
    return built


async def with_stock(redis: Redis, prefix: str, rows: Sequence[PlanRow]) -> list[PlanRow]:
    """Copies of ``rows`` with their current stock, reading the state of those pairs only
    (one HMGET) and the region checks, in one MULTI."""
    keys = StockKeys(prefix)
    pairs = [pair_key(row.plan, row.region) for row in rows if row.region is not None]
    async with redis.pipeline(transaction=True) as pipe:
        if pairs:
            pipe.hmget(keys.state, pairs)
        pipe.hgetall(keys.regions)
        results = await pipe.execute()
    raw_states: list[Any] = results[0] if pairs else []
    regions = {text(key): decode(value, RegionCheck) for key, value in results[-1].items()}
    view = StockView(
        states={
            pair: decode(value, StockState)
            for pair, value in zip(pairs, raw_states, strict=True)
            if value is not None
        },
        regions=regions,
    )
    return with_lookup(rows, _current_stock(view))


async def cheapest_in_stock(redis: Redis, prefix: str) -> dict[str, PlanRow]:
    """Region -> the in-stock row with the lowest monthly price there (as the first row per
    region of ``find_plans(PlanFilter(in_stock=True))``), reading stock in price order a few
    rows per region at a time instead of every pair."""
    current = await current_rows(redis, prefix)
    found: dict[str, PlanRow] = {}
    offset, step = 0, 8
    pending = current.priced_by_region
    while pending:
        batch = [row for listed in pending.values() for row in listed[offset : offset + step]]
        for row in await with_stock(redis, prefix, batch):
            if row.in_stock and row.region is not None and row.region not in found:
                found[row.region] = row
        pending = {
            region: listed
            for region, listed in pending.items()
            if region not in found and len(listed) > offset + step
        }
        offset, step = offset + step, step * 4
    return found


async def find_plans(
    redis: Redis,
    prefix: str,
    flt: PlanFilter,
    at: datetime | None = None,
    past: PastSource | None = None,
) -> list[PlanRow]:
    """Matching rows sorted by monthly price (then hourly price, plan, region). ``past``
    answers for ``at`` (default: the Redis window alone)."""
    if at is None:
        current = await current_rows(redis, prefix)
        rows = await with_stock(redis, prefix, current.select(flt))
        if flt.in_stock is not None:
            rows = [row for row in rows if row.in_stock is flt.in_stock]
        return rows
    moment = as_utc(at)
    source = past if past is not None else RedisPast(redis, prefix)
    catalogue = await source.catalogue_rows_at(moment)
    rows = with_lookup(catalogue.select(flt), await source.stock_at(moment))
    if flt.in_stock is not None:
        rows = [row for row in rows if row.in_stock is flt.in_stock]
    return rows


def with_lookup(rows: Sequence[PlanRow], lookup: StockLookup) -> list[PlanRow]:
    """Copies of ``rows`` (shared rows are never changed) with the stock ``lookup`` gives."""
    out: list[PlanRow] = []
    for row in rows:
        copy = msgspec.structs.replace(row)
        if row.region is not None:
            copy.in_stock, copy.stock_since = lookup(row.plan, row.region)
        out.append(copy)
    return out


async def stock(
    redis: Redis, prefix: str, plan: str | None = None, region: str | None = None
) -> list[StockRow]:
    """Current stock state of every (plan, region) pair, optionally narrowed.

    The pairs are those with a stored state (seen in stock at least once) plus every region
    the current catalogue sells a plan in (as ``find_plans`` lists them) whose stock has been
    checked: a pair never listed there is out of stock since the region's first check, with
    ``first_seen`` and ``last_in_stock`` None. Regions never checked are left out (unknown).
    """
    view = await StockStore(redis, prefix).load()
    catalogue = (await CatalogueStore(redis, prefix).load()).catalogue
    return await asyncio.to_thread(_stock_rows, view, catalogue, plan, region)


def _no_stock(_plan: str, _region: str) -> tuple[bool | None, datetime | None]:
    return None, None


def _stock_rows(
    view: StockView, catalogue: Catalogue, plan: str | None, region: str | None
) -> list[StockRow]:
    pairs = set(map(split_pair, view.states))
    pairs.update(
        (row.plan, row.region)
        for row in plan_rows(catalogue, _no_stock)
        if row.region is not None and row.region in view.regions
    )
    rows: list[StockRow] = []
    for pair_plan, pair_region in pairs:
        if (plan is not None and pair_plan != plan) or (
            region is not None and pair_region != region
        ):
            continue
        check = view.regions.get(pair_region)
        checked_at = check.last_checked if check else None
        state = view.states.get(pair_key(pair_plan, pair_region))
        if state is None:
            assert check is not None  # only pairs in checked regions come without a state
            rows.append(
                StockRow(
                    plan=pair_plan,
                    region=pair_region,
                    in_stock=False,
                    since=check.first_checked,
                    first_seen=None,
                    last_in_stock=None,
                    checked_at=checked_at,
                )
            )
            continue
        rows.append(
            StockRow(
                plan=pair_plan,
                region=pair_region,
                in_stock=state.in_stock,
                since=state.since,
                first_seen=state.first_seen,
                last_in_stock=checked_at if state.in_stock else state.last_in_stock,
                checked_at=checked_at,
            )
        )
    return sorted(rows, key=lambda row: (row.plan, row.region))


async def catalogue_summary(redis: Redis, prefix: str) -> CatalogueSummary:
    store = CatalogueStore(redis, prefix)
    counts = await store.counts()
    meta = await store.meta()
    quarantine = await store.quarantine_info()
    regions = await StockStore(redis, prefix).region_checks()
    return CatalogueSummary(
        plans=counts["plans"],
        metal=counts["metal"],
        regions=counts["regions"],
        os=counts["os"],
        others={
            name: count
            for name, count in counts.items()
            if name not in ("plans", "metal", "regions", "os")
        },
        version=meta.version,
        fetched_at=meta.fetched_at,
        last_success_at=meta.last_success_at,
        last_attempt_at=meta.last_attempt_at,
        last_status=meta.last_status,
        last_reason=meta.last_reason,
        stock_checked_at=max((check.last_checked for check in regions.values()), default=None),
        quarantine=quarantine,
    )
