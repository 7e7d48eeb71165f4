"""A reusable generator of simulated history, written through the project's own write paths.

It builds a synthetic catalogue (``scale`` x today's size: about 240 plans in 33 regions at
1x, each sold in about a third of them), then walks simulated time check by check:

* every ``check_minutes`` (5) a stock check flips ``flip_share`` (0.3 %) of the (plan, region)
  pairs, with the availability job's own functions (``stock_events``, ``updated_intervals``)
  and committed through ``StockStore``'s transaction (``StockTx.stage`` / ``execute``), a
  commit per ``checks_per_commit`` checks;
* every day ``price_changes_per_day`` plans change a price (and about one in ten of those
  days a plan is added or retired), diffed by the catalogue job's ``diff_catalogues`` and
  committed through ``CatalogueTx.commit``;
* change events get ids at the simulated time (``id_clock``), so the window and the history
  job see the ages they would in production;
* after each simulated day, ``on_day(now)`` runs (e.g. the history job with a clock set to
  ``now``).

API (also for the explorer pages' measurements)::

    spec = SimulationSpec(days=365, scale=10)
    stats = await simulate(redis, "vs", spec, on_day=hook)

The catalogue at any simulated moment is what ``find_plans``/``History.plans`` answer for it.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import msgspec
from redis.asyncio import Redis

from vultr_scraper_core.models import COLLECTIONS, Catalogue, parse_records
from vultr_scraper_core.store.catalog import CatalogueStore, plan_summaries_of
from vultr_scraper_core.store.codec import to_ms
from vultr_scraper_core.store.stock import (
    RegionCheck,
    StockState,
    StockStore,
    StockTx,
    StockView,
    pair_key,
)
from vultr_scraper_jobs.availability import event_plans, stock_events, updated_intervals
from vultr_scraper_jobs.diff import diff_catalogues

PLANS_AT_1X = 240
REGIONS_AT_1X = 33
FAMILIES = ("vc2", "vhf", "vhp", "voc", "vcg", "vdm", "vx1")


@dataclass(frozen=True)
class SimulationSpec:
    days: int = 30
    scale: int = 1
    start: datetime = datetime(2025, 1, 1, tzinfo=UTC)
    check_minutes: int = 5
    flip_share: float = 0.003  # share of (plan, region) pairs that flip per check
    price_changes_per_day: float = 2.0  # per 1x of catalogue
    checks_per_commit: int = 12
    seed: int = 20
    # Every pair in stock at the first check, about half sold out at the next: the per-pair
    # stock state (one entry per pair ever seen in stock) starts full, as it is within days at
    # the real check rate, instead of filling over months at a scaled-down one.
    all_pairs_seen: bool = False


@dataclass
class SimulationStats:
    checks: int = 0
    flips: int = 0
    catalogue_commits: int = 0
    events: int = 0
    pairs: int = 0
    plans: int = 0
    regions: int = 0
    end: datetime = field(default_factory=lambda: datetime(1970, 1, 1, tzinfo=UTC))


def synthetic_catalogue(scale: int, rng: random.Random) -> Catalogue:
    regions = [f"r{index:03d}" for index in range(REGIONS_AT_1X * scale)]
    plans: list[dict[str, Any]] = []
    for index in range(PLANS_AT_1X * scale):
        family = FAMILIES[index % len(FAMILIES)]
        vcpus = 1 << (index % 6)
        sold = sorted(rng.sample(regions, max(1, len(regions) // 3)))
        monthly = Decimal(5 * vcpus) + Decimal(index % 7)
        plan: dict[str, Any] = {
            "id": f"{family}-{vcpus}c-{index:05d}",
            "vcpu_count": vcpus,
            "ram": 1024 * vcpus,
            "disk": 25 * vcpus,
            "disk_count": 1,
            "bandwidth": 1024,
            "monthly_cost": monthly,
            "hourly_cost": (monthly / 730).quantize(Decimal("0.0001")),
            "type": family,
            "locations": sold,
        }
        if family == "vcg":
            plan.update(gpu_type="NVIDIA_A100", gpu_vram_gb=40, gpu_count=1)
        if index % 5 == 0:
            plan["location_cost"] = {
                sold[0]: {"monthly_cost": monthly + 1, "hourly_cost": plan["hourly_cost"]}
            }
        plans.append(plan)
    raw: dict[str, list[dict[str, Any]]] = {
        "plans": plans,
        "regions": [{"id": region, "city": region.upper(), "country": "US"} for region in regions],
    }
    parsed: dict[str, Any] = {
        name: parse_records(COLLECTIONS[name], items)[0] for name, items in raw.items()
    }
    return Catalogue(**parsed)


class Simulation:
    def __init__(
        self,
        redis: Redis,
        prefix: str,
        spec: SimulationSpec,
        on_day: Callable[[datetime], Awaitable[None]] | None = None,
    ) -> None:
        self.redis = redis
        self.prefix = prefix
        self.spec = spec
        self.on_day = on_day
        self.rng = random.Random(spec.seed)
        self.now = spec.start
        self._last_id_ms = 0
        self.catalogue_store = CatalogueStore(redis, prefix, id_clock=self._id_ms)
        self.stock_store = StockStore(redis, prefix, id_clock=self._id_ms)
        self.catalogue = synthetic_catalogue(spec.scale, self.rng)
        self.view = StockView(states={}, regions={})
        self.pairs = [
            pair_key(plan.id, region)
            for plan in self.catalogue.plans.values()
            for region in plan.locations or []
        ]
        self.stats = SimulationStats(
            pairs=len(self.pairs),
            plans=len(self.catalogue.plans),
            regions=len(self.catalogue.regions),
        )

    def _id_ms(self) -> int:
        # Stream ids must grow even when two commits share a simulated millisecond.
        self._last_id_ms = max(self._last_id_ms, to_ms(self.now))
        return self._last_id_ms

    async def run(self) -> SimulationStats:
        await self._commit_catalogue(self.catalogue)
        step = timedelta(minutes=self.spec.check_minutes)
        per_day = int(timedelta(days=1) / step)
        for _day in range(self.spec.days):
            day_began = self.now
            for first in range(0, per_day, self.spec.checks_per_commit):
                batch = min(self.spec.checks_per_commit, per_day - first)
                await self._stock_checks(batch, step)
            await self._catalogue_changes(day_began)
            if self.on_day is not None:
                await self.on_day(self.now)
        self.stats.end = self.now
        return self.stats

    async def _commit_catalogue(self, new: Catalogue) -> None:
        async with self.catalogue_store.transaction() as tx:
            events = diff_catalogues(tx.current.catalogue, new, at=self.now)
            tx.commit(new, events, fetched_at=self.now, committed_at=self.now, shapes={})
            assert await tx.execute()
        self.catalogue = new
        self.stats.catalogue_commits += 1
        self.stats.events += len(events)

    async def _catalogue_changes(self, day_began: datetime) -> None:
        wanted = self.spec.price_changes_per_day * self.spec.scale
        count = int(wanted) + (1 if self.rng.random() < wanted - int(wanted) else 0)
        if not count:
            return
        plans = dict(self.catalogue.plans)
        for plan_id in self.rng.sample(sorted(plans), count):
            plan = plans[plan_id]
            bumped = (plan.monthly_cost or Decimal(5)) + Decimal(1)
            plans[plan_id] = msgspec.structs.replace(plan, monthly_cost=bumped)
        saved_now = self.now
        self.now = day_began + (saved_now - day_began) / 2  # a change in the middle of the day
        await self._commit_catalogue(msgspec.structs.replace(self.catalogue, plans=plans))
        self.now = saved_now

    async def _stock_checks(self, checks: int, step: timedelta) -> None:
        """``checks`` checks, committed together through the stock store's transaction."""
        changes: dict[str, StockState] = {}
        intervals: dict[str, list[Any]] = {}
        events: list[Any] = []
        regions: dict[str, RegionCheck] = {}
        flips_per_check = max(1, round(len(self.pairs) * self.spec.flip_share))
        async with self.redis.pipeline(transaction=True) as pipe:
            await pipe.watch(self.stock_store.keys.intervals)  # reads run at once from here
            tx = StockTx(self.stock_store, pipe, self.view)
            for _ in range(checks):
                self.now += step
                at = self.now
                first_check = not self.view.regions
                settling = self.spec.all_pairs_seen and self.stats.checks == 1
                picked = (
                    self.pairs  # the first check finds what is in stock (about half)
                    if first_check or settling
                    else self.rng.sample(self.pairs, flips_per_check)
                )
                step_states: dict[str, StockState] = {}
                for pair in picked:
                    old = self.view.states.get(pair)
                    if (first_check and not self.spec.all_pairs_seen) or settling:
                        if self.rng.random() < 0.5:
                            continue
                    in_stock = not (old.in_stock if old else False)
                    step_states[pair] = StockState(
                        in_stock=in_stock,
                        since=at,
                        first_seen=old.first_seen if old else at,
                        last_in_stock=at if not in_stock else (old.last_in_stock if old else None),
                    )
                missing = [pair for pair in step_states if pair not in intervals]
                intervals.update(await tx.intervals(missing))
                labels = plan_summaries_of(self.catalogue, event_plans(self.view, step_states))
                events.extend(stock_events(self.view, step_states, labels, at=at))
                intervals.update(updated_intervals(self.view, step_states, intervals, at=at))
                for pair, state in step_states.items():
                    self.view.states[pair] = state
                changes.update(step_states)
                for region in self.catalogue.regions:
                    check = self.view.regions.get(region)
                    self.view.regions[region] = RegionCheck(
                        first_checked=check.first_checked if check else at, last_checked=at
                    )
                self.stats.checks += 1
                self.stats.flips += 0 if first_check or settling else len(step_states)
            regions = dict(self.view.regions)
            tx.stage(states=changes, intervals=intervals, regions=regions, events=events)
            assert await tx.execute()
        self.stats.events += len(events)


async def simulate(
    redis: Redis,
    prefix: str,
    spec: SimulationSpec,
    on_day: Callable[[datetime], Awaitable[None]] | None = None,
) -> SimulationStats:
    """Write ``spec.days`` of simulated history into the store under ``prefix``."""
    return await Simulation(redis, prefix, spec, on_day).run()
