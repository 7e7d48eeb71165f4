"""The stock job: which plans are in stock in which region, kept as transitions and intervals.

``scrape_vultr_availability(ctx)`` asks ``/v2/regions/{id}/availability`` (no ``type`` filter)
for every region of the current catalogue (or of ``/v2/regions`` when there is none yet), with
bounded concurrency, then commits in one MULTI/EXEC: a ``stock_changed`` event per (plan,
region) that entered or left stock, the new state of those pairs, their intervals, and the
check time of every region answered.

Decisions:

* A region's first successful check records the state silently (no events): "everything
  appeared" is not news. After that, a plan newly listed is ``False -> True``.
* A region whose request failed (after the HTTP client's retries) is left untouched this run
  and listed in ``failed_regions``; when every region fails, the error propagates so the worker
  retries the job.
* A region that left the catalogue has its open intervals closed (nothing is sold there).
* Only ``available_plans`` counts as in stock; ``available_vpc_only_plans`` stays in the raw
  archive.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from loguru import logger

from vultr_scraper_core.models import (
    AVAILABILITY_SHAPE,
    Catalogue,
    Observation,
    RegionAvailability,
    observe_fields,
    parse_availability,
)
from vultr_scraper_core.store.archive import RawArchive
from vultr_scraper_core.store.catalog import CatalogueStore
from vultr_scraper_core.store.changes import ChangeEvent, EventKind
from vultr_scraper_core.store.codec import utcnow
from vultr_scraper_core.store.stock import (
    Interval,
    RegionCheck,
    StockState,
    StockStore,
    StockView,
    pair_key,
    split_pair,
)
from vultr_scraper_core.vultr import AVAILABILITY, VultrClient
from vultr_scraper_jobs.context import deps
from vultr_scraper_jobs.diff import schema_drift

MAX_TX_ATTEMPTS = 5


async def scrape_vultr_availability(ctx: Mapping[str, Any]) -> dict[str, Any]:
    """The ``scrape-availability`` job."""
    job = deps(ctx)
    prefix = job.config.redis.key_prefix
    client = VultrClient(job.http, job.config.vultr)
    catalogue = (await CatalogueStore(job.redis, prefix).load()).catalogue
    regions = sorted(catalogue.regions)
    from_catalogue = bool(regions)
    if not regions:
        listing = await client.regions()
        regions = sorted(str(item["id"]) for item in listing.items if isinstance(item, dict))
    results = await client.availability_all(regions)
    failed = {result.region: str(result.error) for result in results if result.error}
    answered = [result for result in results if result.error is None]
    if not answered and results:
        first_error = next(result.error for result in results if result.error)
        assert first_error is not None
        raise first_error
    if job.config.catalog.archive_retention_days > 0:
        await RawArchive(job.redis, prefix).put(
            [result.response for result in answered if result.response is not None]
        )
    at = utcnow()
    observed = {
        result.region: parse_availability(result.region, result.document) for result in answered
    }
    observation: Observation = {}
    for result in answered:  # the example of a drifting field is the region that sent it
        for field, kinds in observe_fields([result.document]).items():
            for kind in kinds:
                observation.setdefault(field, {}).setdefault(kind, result.region)
    store = StockStore(job.redis, prefix)
    known_shape = await store.shape(AVAILABILITY) or AVAILABILITY_SHAPE
    drift, shape = schema_drift(AVAILABILITY, known_shape, observation, at=at)
    for _ in range(MAX_TX_ATTEMPTS):
        async with store.transaction() as tx:
            current = tx.current
            retired_regions = (
                {
                    region
                    for region in current.regions
                    if region not in catalogue.regions and region not in observed
                }
                if from_catalogue
                else set()
            )
            plan = plan_transitions(current, observed, retired_regions, at=at)
            intervals = await tx.intervals(plan.states)
            events = [
                *drift,
                *stock_events(current, plan.states, catalogue, at=at),
            ]
            tx.stage(
                states=plan.states,
                intervals=updated_intervals(current, plan.states, intervals, at=at),
                regions=plan.regions,
                events=events,
                shapes={AVAILABILITY: shape} if observation else None,
            )
            if await tx.execute():
                in_stock = sum(
                    1 for state in {**current.states, **plan.states}.values() if state.in_stock
                )
                outcome: dict[str, Any] = {
                    "status": "success",
                    "updated": len(plan.states),
                    "events": len(events),
                    "opened": sum(1 for state in plan.states.values() if state.in_stock),
                    "closed": sum(1 for state in plan.states.values() if not state.in_stock),
                    "regions_checked": len(plan.regions),
                    "failed_regions": failed,
                    "in_stock": in_stock,
                    "checked_at": at.isoformat(),
                }
                logger.bind(updated=len(plan.states), failed=len(failed)).info(
                    "availability scrape: success"
                )
                return outcome
    raise RuntimeError(f"stock state changed concurrently {MAX_TX_ATTEMPTS} times; giving up")


class Transitions:
    """The pairs whose state changes, and the region check times to record."""

    def __init__(self) -> None:
        self.states: dict[str, StockState] = {}
        self.regions: dict[str, RegionCheck] = {}


def plan_transitions(
    current: StockView,
    observed: Mapping[str, RegionAvailability],
    retired_regions: set[str],
    *,
    at: datetime,
) -> Transitions:
    plan = Transitions()
    by_region: dict[str, dict[str, StockState]] = {}
    for pair, state in current.states.items():
        plan_id, region = split_pair(pair)
        by_region.setdefault(region, {})[plan_id] = state
    for region in sorted({*observed, *retired_regions}):
        check = current.regions.get(region)
        if check is not None and check.last_checked >= at:
            continue  # a newer check already landed; ours is stale
        listed = set(observed[region].available_plans) if region in observed else set()
        states = by_region.get(region, {})
        in_stock = {plan_id for plan_id, state in states.items() if state.in_stock}
        for plan_id in sorted(listed - in_stock):
            old = states.get(plan_id)
            plan.states[pair_key(plan_id, region)] = StockState(
                in_stock=True,
                since=at,
                first_seen=old.first_seen if old else at,
                last_in_stock=old.last_in_stock if old else None,
            )
        for plan_id in sorted(in_stock - listed):
            old = states[plan_id]
            plan.states[pair_key(plan_id, region)] = StockState(
                in_stock=False,
                since=at,
                first_seen=old.first_seen,
                # The last check that still listed it.
                last_in_stock=check.last_checked if check else old.since,
            )
        if region in observed:
            plan.regions[region] = RegionCheck(
                first_checked=check.first_checked if check else at, last_checked=at
            )
    return plan


def stock_events(
    current: StockView, changes: Mapping[str, StockState], catalogue: Catalogue, *, at: datetime
) -> list[ChangeEvent]:
    events: list[ChangeEvent] = []
    for pair, state in sorted(changes.items()):
        plan_id, region = split_pair(pair)
        if region not in current.regions:
            continue  # the region's first check: record silently
        old = current.states.get(pair)
        detail: dict[str, Any] = {}
        record = catalogue.plan(plan_id)
        if record is not None:
            detail["collection"] = "plans" if plan_id in catalogue.plans else "metal"
            for key in ("type", "gpu_type", "gpu_brand"):
                value = getattr(record, key, None)
                if isinstance(value, str):
                    detail[key] = value
        if old is not None:
            detail["previous_since"] = old.since.isoformat()
        events.append(
            ChangeEvent(
                kind=EventKind.STOCK_CHANGED,
                at=at,
                subject=plan_id,
                region=region,
                field="in_stock",
                old=old.in_stock if old is not None else False,
                new=state.in_stock,
                detail=detail,
            )
        )
    return events


def updated_intervals(
    current: StockView,
    changes: Mapping[str, StockState],
    stored: Mapping[str, Sequence[Interval]],
    *,
    at: datetime,
) -> dict[str, list[Interval]]:
    result: dict[str, list[Interval]] = {}
    for pair, state in changes.items():
        intervals = list(stored.get(pair, []))
        if state.in_stock:
            intervals.append(Interval(start=at))
        elif intervals and intervals[-1].end is None:
            intervals[-1] = Interval(start=intervals[-1].start, end=at)
        else:  # no open interval recorded (should not happen): reconstruct it
            old = current.states.get(pair)
            intervals.append(Interval(start=old.since if old else at, end=at))
        result[pair] = intervals
    return result
