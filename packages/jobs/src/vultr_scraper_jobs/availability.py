"""The stock jobs: which plans are in stock in which region, kept as transitions and intervals.

``scrape_vultr_availability(ctx)`` asks ``/v2/regions/{id}/availability`` (no ``type`` filter)
for every region of the current catalogue (or of ``/v2/regions`` when there is none yet), with
bounded concurrency, passes every answer through the stock gate (``stock_gate.py``), then
commits in one MULTI/EXEC: a ``stock_changed`` event per (plan, region) that entered or left
stock, the new state of those pairs, their intervals, the check time of every region applied,
and the answers the gate held back.

``confirm_availability(ctx)`` is the follow-up a held mass change schedules ``confirm_after``
seconds later (job id ``confirm-availability:<due ms>``): it checks again the held regions that
are due, and the gate applies what it sees if it is the same. A regular check after that time
confirms just as well; the follow-up only makes sure one happens.

Decisions:

* A region's first successful check records the state silently (no events): "everything
  appeared" is not news. After that, a plan newly listed is ``False -> True``.
* A region whose request failed (after the HTTP client's retries) or whose answer is malformed
  is left untouched this run, listed in ``failed_regions`` / ``held_regions``, and its reason is
  kept until a good answer comes; when every region fails, the error propagates so the worker
  retries the job.
* A region that left the catalogue has its open intervals closed (nothing is sold there).
* Only ``available_plans`` counts as in stock; ``available_vpc_only_plans`` stays in the raw
  archive.
* A run that held back any answer with data ends ``quarantined`` (``run`` exits 3), like a held
  catalogue; the regions it could apply are applied all the same.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from loguru import logger
from redis.asyncio import Redis

from vultr_scraper_core.config import Config
from vultr_scraper_core.formats import format_instant
from vultr_scraper_core.models import (
    AVAILABILITY_SHAPE,
    Observation,
    availability_problem,
    field_census,
    observe_fields,
)
from vultr_scraper_core.store.archive import RawArchive
from vultr_scraper_core.store.catalog import CatalogueStore, PlanSummary
from vultr_scraper_core.store.changes import ChangeEvent, EventKind
from vultr_scraper_core.store.codec import to_ms, utcnow
from vultr_scraper_core.store.stock import (
    HeldStock,
    Interval,
    RegionCheck,
    StockState,
    StockStore,
    StockTx,
    StockView,
    pair_key,
    split_pair,
)
from vultr_scraper_core.vultr import AVAILABILITY, AvailabilityResult, VultrClient
from vultr_scraper_jobs.context import JobDeps, deps
from vultr_scraper_jobs.diff import schema_drift
from vultr_scraper_jobs.stock_gate import Finding, StockDecision, StockDelta, decide

MAX_TX_ATTEMPTS = 5
CONFIRM_JOB = "confirm-availability"


async def scrape_vultr_availability(ctx: Mapping[str, Any]) -> dict[str, Any]:
    """The ``scrape-availability`` job."""
    return await check_stock(deps(ctx))


async def confirm_availability(ctx: Mapping[str, Any]) -> dict[str, Any]:
    """The ``confirm-availability`` job: check again the held regions that are due."""
    job = deps(ctx)
    held = await StockStore(job.redis, job.config.redis.key_prefix).held()
    now = utcnow()
    due = sorted(
        region
        for region, answer in held.items()
        if answer.listed is not None and (answer.confirm_at is None or answer.confirm_at <= now)
    )
    if not due:
        return {"status": "success", "regions_checked": 0, "confirmed_regions": [], "events": 0}
    return await check_stock(job, only=due)


async def check_stock(job: JobDeps, only: Sequence[str] | None = None) -> dict[str, Any]:
    """Check every region (or ``only`` those), gate the answers and commit."""
    prefix = job.config.redis.key_prefix
    client = VultrClient(job.http, job.config.vultr)
    # Of the committed catalogue the job needs the regions, and the plans of its events
    # (read once the transitions are known): decoding it whole costs more than the rest.
    catalogue = CatalogueStore(job.redis, prefix)
    catalogue_regions = await catalogue.region_ids()
    regions = list(only) if only is not None else sorted(catalogue_regions)
    from_catalogue = only is None and bool(regions)
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
    answers, unusable = read_answers(results)
    store = StockStore(job.redis, prefix)
    known_shape = await store.shape(AVAILABILITY)
    for _ in range(MAX_TX_ATTEMPTS):
        async with store.transaction(answers) as tx:
            current = tx.current
            decision = decide(current, answers, unusable, at=at, config=job.config.stock.gate)
            # Only answers the gate let through count for drift (like a quarantined catalogue).
            applied = [result for result in answered if result.region in decision.apply]
            drift, shape, observed_shape = availability_drift(known_shape, applied, at)
            retired_regions = (
                {
                    region
                    for region in current.regions
                    if region not in catalogue_regions and region not in answers
                }
                if from_catalogue
                else set()
            )
            plan = await transitions(
                tx, decision.apply, retired_regions, at=at, known=decision.deltas
            )
            intervals = await tx.intervals(plan.states)
            summaries = await catalogue.plan_summaries(event_plans(current, plan.states))
            events = [
                *drift,
                *stock_events(current, plan.states, summaries, at=at, confirmed=decision.confirmed),
            ]
            tx.stage(
                states=plan.states,
                intervals=updated_intervals(current, plan.states, intervals, at=at),
                regions=plan.regions,
                events=events,
                shapes={AVAILABILITY: shape} if observed_shape else None,
                hold=decision.hold,
                release=decision.release,
            )
            if await tx.execute():
                outcome = _outcome(current, plan, decision, events, failed, at)
                await _schedule_confirmation(job, decision)
                logger.bind(
                    updated=len(plan.states),
                    failed=len(failed),
                    held=len(outcome["held_regions"]),
                ).info("availability scrape: {}", outcome["status"])
                return outcome
    raise RuntimeError(f"stock state changed concurrently {MAX_TX_ATTEMPTS} times; giving up")


def read_answers(
    results: Sequence[AvailabilityResult],
) -> tuple[dict[str, set[str]], dict[str, Finding]]:
    """Usable answers (region -> plans listed in stock) and the unusable ones, with why."""
    answers: dict[str, set[str]] = {}
    unusable: dict[str, Finding] = {}
    for result in results:
        if result.error is not None:
            unusable[result.region] = Finding(
                "failed", f"{result.region}: request failed: {result.error}"
            )
            continue
        problem = availability_problem(result.document)
        if problem is not None:
            unusable[result.region] = Finding(
                "malformed", f"{result.region}: malformed answer: {problem}"
            )
            continue
        # A usable answer's list holds plan ids only (``availability_problem``), so the set
        # of it is what ``parse_availability`` would list, without building that first.
        answers[result.region] = set(result.document["available_plans"])
    return answers, unusable


def availability_drift(
    known: Mapping[str, Sequence[str]] | None,
    answered: Sequence[AvailabilityResult],
    at: datetime,
) -> tuple[list[ChangeEvent], dict[str, list[str]], bool]:
    """Drift of the availability answers' shape: events, the merged shape, and whether any
    answer was an object to observe."""
    observation: Observation = {}
    for result in answered:  # the example of a drifting field is the region that sent it
        for field, kinds in observe_fields([result.document]).items():
            for kind in kinds:
                observation.setdefault(field, {}).setdefault(kind, result.region)
    census = field_census(result.document for result in answered)
    drift, shape = schema_drift(
        AVAILABILITY, known or AVAILABILITY_SHAPE, observation, at=at, census=census
    )
    return drift, shape, bool(observation)


def _outcome(
    current: StockView,
    plan: Transitions,
    decision: StockDecision,
    events: Sequence[ChangeEvent],
    failed: Mapping[str, str],
    at: datetime,
) -> dict[str, Any]:
    held = decision.held
    with_data = {region for region, answer in held.items() if answer.listed is not None}
    malformed = {region for region, answer in held.items() if "malformed" in answer.checks}
    opened = sum(1 for state in plan.states.values() if state.in_stock)
    closed = len(plan.states) - opened
    before = sum(len(plans) for plans in current.in_stock_by_region().values())
    return {
        "status": "quarantined" if with_data | malformed else "success",
        "updated": len(plan.states),
        "events": len(events),
        "opened": opened,
        "closed": closed,
        "regions_checked": len(plan.regions),
        "failed_regions": dict(failed),
        "held_regions": {
            region: answer.reason for region, answer in held.items() if region not in failed
        },
        "confirmed_regions": sorted(decision.confirmed),
        "in_stock": before + opened - closed,
        "checked_at": format_instant(at),
    }


async def _schedule_confirmation(job: JobDeps, decision: StockDecision) -> None:
    """Queue the follow-up check for answers held just now (one job per due time)."""
    due = sorted({held.confirm_at for held in decision.hold if held.confirm_at is not None})
    for when in due:
        delay = max(0.0, (when - utcnow()).total_seconds())
        job_id = f"{CONFIRM_JOB}:{to_ms(when)}"
        try:
            await job.enqueue(CONFIRM_JOB, job_id=job_id, defer_by=delay)
        except Exception as error:  # the next scheduled check confirms instead
            logger.bind(job_id=job_id).warning(
                "could not queue the confirmation check ({}); the next scheduled check "
                "confirms instead",
                error,
            )


class Transitions:
    """The pairs whose state changes, and the region check times to record."""

    def __init__(self) -> None:
        self.states: dict[str, StockState] = {}
        self.regions: dict[str, RegionCheck] = {}


async def transitions(
    tx: StockTx,
    observed: Mapping[str, Collection[str]],
    retired_regions: set[str],
    *,
    at: datetime,
    known: Mapping[str, StockDelta] | None = None,
) -> Transitions:
    """The transitions of ``observed`` and ``retired_regions``, reading the states of the
    pairs that change and only those (which pairs change comes from the in-stock index)."""
    changes = region_changes(tx.current, observed, retired_regions, at=at, known=known)
    await tx.read_states(
        pair_key(plan_id, change.region)
        for change in changes
        for plan_id in (*change.entering, *change.leaving)
    )
    return plan_transitions(tx.current, changes, at=at)


@dataclass(frozen=True)
class RegionChange:
    """One region's check to apply: the plans entering and leaving stock there."""

    region: str
    entering: set[str]
    leaving: set[str]
    checked: bool  # a check to record (False: a region that left the catalogue)


def region_changes(
    current: StockView,
    observed: Mapping[str, Collection[str]],
    retired_regions: set[str],
    *,
    at: datetime,
    known: Mapping[str, StockDelta] | None = None,
) -> list[RegionChange]:
    """``observed``: region -> the plans its (applied) answer lists in stock; a region in
    ``retired_regions`` lists none; ``known``: the answers of ``observed`` already compared
    with ``current`` (by the stock gate). Regions in order; a stale check is left out."""
    in_stock_now = current.in_stock_by_region()
    changes: list[RegionChange] = []
    for region in sorted({*observed, *retired_regions}):
        check = current.regions.get(region)
        if check is not None and check.last_checked >= at:
            continue  # a newer check already landed; ours is stale
        delta = known.get(region) if known is not None and region in observed else None
        if delta is not None:
            changes.append(RegionChange(region, delta.entering, delta.leaving, True))
            continue
        found = observed.get(region, ())
        listed: set[str] = found if isinstance(found, set) else set(found)
        in_stock = in_stock_now.get(region, set())
        changes.append(
            RegionChange(region, listed - in_stock, in_stock - listed, region in observed)
        )
    return changes


def plan_transitions(
    current: StockView, changes: Sequence[RegionChange], *, at: datetime
) -> Transitions:
    """The new states and region checks of ``changes``; ``current`` holds the state of every
    pair that changes (see ``transitions``)."""
    plan = Transitions()
    for change in changes:
        region = change.region
        check = current.regions.get(region)
        for plan_id in sorted(change.entering):
            pair = pair_key(plan_id, region)
            old = current.states.get(pair)
            plan.states[pair] = StockState(
                in_stock=True,
                since=at,
                first_seen=old.first_seen if old else at,
                last_in_stock=old.last_in_stock if old else None,
            )
        for plan_id in sorted(change.leaving):
            pair = pair_key(plan_id, region)
            old = current.states[pair]
            plan.states[pair] = StockState(
                in_stock=False,
                since=at,
                first_seen=old.first_seen,
                # The last check that still listed it.
                last_in_stock=check.last_checked if check else old.since,
            )
        if change.checked:
            plan.regions[region] = RegionCheck(
                first_checked=check.first_checked if check else at, last_checked=at
            )
    return plan


def event_plans(current: StockView, changes: Mapping[str, StockState]) -> set[str]:
    """The plans ``stock_events`` writes events about (a region's first check writes none)."""
    return {plan_id for plan_id, region in map(split_pair, changes) if region in current.regions}


def stock_events(
    current: StockView,
    changes: Mapping[str, StockState],
    plans: Mapping[str, PlanSummary],
    *,
    at: datetime,
    confirmed: Mapping[str, HeldStock] | None = None,
    accepted: Collection[str] = (),
) -> list[ChangeEvent]:
    """``plans``: plan id -> its summary in the committed catalogue (see ``event_plans``);
    ``confirmed``: regions whose mass change a second check confirmed (their events say
    since when it was held); ``accepted``: regions an operator accepted."""
    events: list[ChangeEvent] = []
    for pair, state in sorted(changes.items()):
        plan_id, region = split_pair(pair)
        if region not in current.regions:
            continue  # the region's first check: record silently
        old = current.states.get(pair)
        detail: dict[str, Any] = {}
        summary = plans.get(plan_id)
        if summary is not None:
            detail["collection"] = summary.collection
            for key in ("type", "gpu_type", "gpu_brand"):
                value = getattr(summary.labels, key)
                if isinstance(value, str):
                    detail[key] = value
        if old is not None:
            detail["previous_since"] = format_instant(old.since)
        held = (confirmed or {}).get(region)
        if held is not None:
            detail["confirmed"] = True
            detail["held_since"] = format_instant(held.observed_at)
        if region in accepted:
            detail["accepted"] = True
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


# -- the operator's decisions ---------------------------------------------------------------


async def accept_held_stock(
    redis: Redis, config: Config, regions: Collection[str] | None = None
) -> dict[str, Any]:
    """Apply the held answers of ``regions`` (all when None) now, as if they had passed the
    gate; a held entry with nothing to apply (malformed, failed) is dropped."""
    prefix = config.redis.key_prefix
    store = StockStore(redis, prefix)
    catalogue = CatalogueStore(redis, prefix)
    for _ in range(MAX_TX_ATTEMPTS):
        async with store.transaction() as tx:
            current = tx.current
            chosen = sorted(current.held if regions is None else set(regions) & set(current.held))
            if not chosen:
                return {"status": "failed", "reason": "no stock answer is held", "updated": 0}
            at = utcnow()
            usable = {
                region: set(listed)
                for region in chosen
                if (listed := current.held[region].listed) is not None
            }
            plan = await transitions(tx, usable, set(), at=at)
            intervals = await tx.intervals(plan.states)
            summaries = await catalogue.plan_summaries(event_plans(current, plan.states))
            events = stock_events(current, plan.states, summaries, at=at, accepted=usable)
            tx.stage(
                states=plan.states,
                intervals=updated_intervals(current, plan.states, intervals, at=at),
                regions=plan.regions,
                events=events,
                release=chosen,
            )
            if await tx.execute():
                return {
                    "status": "success",
                    "accepted": sorted(usable),
                    "dropped": sorted(set(chosen) - usable.keys()),
                    "updated": len(plan.states),
                    "events": len(events),
                }
    raise RuntimeError(f"stock state changed concurrently {MAX_TX_ATTEMPTS} times; giving up")
