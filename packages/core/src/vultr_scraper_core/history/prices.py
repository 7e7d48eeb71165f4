"""Prices per (plan, region, price kind) as intervals, from record versions.

A plan's price in a region is what ``Plan.prices(region)`` gives there (``location_cost``
replacing the base price) for every region in its ``locations``; each of the four published
kinds is its own series. A version that changes a price closes the old interval at its time
and opens a new one; retiring the plan, or dropping a region or a kind, closes it.
"""

from __future__ import annotations

from collections.abc import Iterable

from vultr_scraper_core.history.tables import PriceInterval
from vultr_scraper_core.history.window import PriceSince, PriceState
from vultr_scraper_core.models import COLLECTIONS, CloudPlan, MetalPlan
from vultr_scraper_core.store.catalog import RecordVersion, latest_versions
from vultr_scraper_core.store.codec import decode, from_ms, to_ms

PLAN_COLLECTIONS = ("plans", "metal")


def price_points(version: RecordVersion) -> dict[str, str]:
    """``"region|kind"`` -> exact price text, for a plan version (empty when retired)."""
    if version.collection not in PLAN_COLLECTIONS or version.retired:
        return {}
    plan = decode(version.record, COLLECTIONS[version.collection])
    assert isinstance(plan, CloudPlan | MetalPlan)
    points: dict[str, str] = {}
    for region in plan.locations or []:
        for kind, price in plan.prices(region).items():
            if price is not None:
                points[f"{region}|{kind}"] = str(price)
    return points


def advance(state: PriceState, versions: Iterable[RecordVersion]) -> list[PriceInterval]:
    """Apply ``versions`` (in time order) to ``state``; returns the intervals they closed."""
    closed: list[PriceInterval] = []
    ordered = sorted(
        (entry for entry in versions if entry.collection in PLAN_COLLECTIONS),
        key=lambda entry: (entry.at, entry.commit),
    )
    for entry in ordered:
        at_ms = to_ms(entry.at)
        before = state.get(entry.id, {})
        after = price_points(entry)
        current: dict[str, PriceSince] = {}
        for key, held in before.items():
            if after.get(key) == held.price:
                current[key] = held
            else:
                closed.append(_interval(entry.id, key, held, at_ms))
        for key, price in after.items():
            if key not in current:
                current[key] = PriceSince(price=price, since_ms=at_ms)
        if current:
            state[entry.id] = current
        else:
            state.pop(entry.id, None)
    return closed


def open_intervals(state: PriceState) -> list[PriceInterval]:
    return [
        _interval(plan, key, held, None)
        for plan, points in state.items()
        for key, held in points.items()
    ]


def state_of(versions: Iterable[RecordVersion]) -> PriceState:
    """The price state of the latest versions (since = each version's time; for a base whose
    earlier history is unknown)."""
    state: PriceState = {}
    advance(state, latest_versions(versions).values())
    return state


def _interval(plan: str, key: str, held: PriceSince, end_ms: int | None) -> PriceInterval:
    region, _, kind = key.partition("|")
    return PriceInterval(
        plan=plan,
        region=region,
        price_kind=kind,
        price=held.price,
        valid_from=from_ms(held.since_ms),
        valid_to=from_ms(end_ms) if end_ms is not None else None,
    )


class PriceIndex:
    """The window's price history per plan: the price state at the boundary and the plan
    versions since, grouped by plan id. Built from one read of the window (record bodies stay
    undecoded until a plan's intervals are asked for), so one plan's intervals cost that
    plan's versions only; ``History`` keeps one per catalogue revision and boundary."""

    def __init__(self, state: PriceState, versions: Iterable[RecordVersion]) -> None:
        self.state = state
        self.versions: dict[str, list[RecordVersion]] = {}
        for entry in versions:
            if entry.collection in PLAN_COLLECTIONS:
                self.versions.setdefault(entry.id, []).append(entry)
        self._intervals: dict[str, list[PriceInterval]] = {}

    def plans(self) -> set[str]:
        return {*self.state, *self.versions}

    def intervals(self, plan: str) -> list[PriceInterval]:
        """``plan``'s intervals in the window, closed ones first, then the open ones (kept:
        do not change the list)."""
        if plan not in self._intervals:
            state: PriceState = {plan: self.state[plan]} if plan in self.state else {}
            closed = advance(state, self.versions.get(plan, []))
            self._intervals[plan] = [*closed, *open_intervals(state)]
        return self._intervals[plan]

    def all_intervals(self) -> list[PriceInterval]:
        return [row for plan in sorted(self.plans()) for row in self.intervals(plan)]
