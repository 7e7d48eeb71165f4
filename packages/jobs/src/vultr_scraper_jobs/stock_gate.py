"""The stock gate: which regions' availability answers may change the recorded stock now.

A region's answer is judged against the region's current state (the plans recorded in stock
there). It changes nothing for that region, and is kept as a *held* answer with its reasons
(``HeldStock``), when it is

* ``malformed``: not an object with an ``available_plans`` list of plan ids; or ``failed``: the
  request failed after its retries (nothing to apply; kept only so the reason is visible);
* a *mass change* that needs confirmation:

  - ``emptied``: the region had at least ``stock.gate.emptied_min`` (3) plans in stock and
    now reports none;
  - ``region_changes``: at least ``min_changes`` (5) of the region's plans, and more than
    ``max_region_changes`` (50 %) of them (in stock before or now), change state at once;
  - ``run_changes``: at least ``min_changes`` and more than ``max_run_changes`` (25 %) of all
    tracked pairs change state in one run, not counting the region with the most changes
    (its own checks judge it, and one bad region must not hold the others back); every region
    with a change is then held. An empty answer from every region trips it even where each
    region alone holds too few plans to be judged.

A mass change is applied only when a later check, at least ``confirm_after`` seconds after the
held one, sees the same thing: an answer that, judged against the held answer, is no mass
change (a sold-out region that stays sold out; a restock give or take a plan). The confirming
answer is then applied as an ordinary check at its own time, so history is never written into
the past. A later answer that is plausible against the current state clears the held one (it
was a blip); a different implausible one replaces it and starts the wait again. Other regions
are judged on their own and update as usual. A region's first check is never held (it records
its state silently anyway), unless its answer is unusable.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from vultr_scraper_core.config import StockGateConfig
from vultr_scraper_core.store.stock import HeldStock, StockView

MASS_CHECKS = ("emptied", "region_changes", "run_changes")


@dataclass(frozen=True)
class Finding:
    check: str
    reason: str


@dataclass(frozen=True)
class StockDelta:
    """One region's answer against the plans in stock there now."""

    entering: set[str]
    leaving: set[str]

    @staticmethod
    def of(before: set[str], listed: set[str]) -> StockDelta:
        return StockDelta(listed - before, before - listed)


@dataclass
class StockDecision:
    apply: dict[str, set[str]] = field(default_factory=dict)  # region -> plans listed in stock
    # region -> its answer against the current stock, for the regions checked before whose
    # answer is applied: the sets the transitions need, computed once (hundreds per region)
    deltas: dict[str, StockDelta] = field(default_factory=dict)
    hold: list[HeldStock] = field(default_factory=list)  # held answers to store
    release: set[str] = field(default_factory=set)  # regions whose held answer is dropped
    confirmed: dict[str, HeldStock] = field(default_factory=dict)  # the answers confirmed now
    waiting: dict[str, HeldStock] = field(default_factory=dict)  # held, still to be confirmed

    @property
    def held(self) -> dict[str, HeldStock]:
        """Every region whose answer this run did not apply, with why."""
        return {**self.waiting, **{held.region: held for held in self.hold}}


def in_stock_by_region(view: StockView) -> dict[str, set[str]]:
    return view.in_stock_by_region()


def out_and_in(before: set[str], listed: set[str]) -> tuple[int, int]:
    """How many plans leave stock and how many enter (one intersection, no new sets of
    plans: a region lists hundreds)."""
    common = len(before & listed)
    return len(before) - common, len(listed) - common


def judge_region(
    region: str, before: set[str], listed: set[str], config: StockGateConfig
) -> list[Finding]:
    """Whether ``listed`` is a mass change against ``before`` (the plans in stock now)."""
    return _judge(region, len(before), len(listed), *out_and_in(before, listed), config)


def _judge(
    region: str, before: int, listed: int, out: int, came: int, config: StockGateConfig
) -> list[Finding]:
    """``judge_region`` from the counts: ``before`` plans in stock, ``listed`` in the
    answer, ``out`` of them leaving and ``came`` entering."""
    if before >= config.emptied_min and not listed:
        return [
            Finding(
                "emptied",
                f"{region}: reports no plan in stock, down from {before} "
                f"(stock.gate.emptied_min = {config.emptied_min})",
            )
        ]
    changed, size = out + came, before + came
    if changed >= config.min_changes and changed > size * config.max_region_changes:
        return [
            Finding(
                "region_changes",
                f"{region}: {changed} of {size} plans changed stock state in one check "
                f"({out} out, {came} in: {changed / size:.0%}, more than "
                f"stock.gate.max_region_changes = {config.max_region_changes:.0%})",
            )
        ]
    return []


def decide(
    current: StockView,
    answers: Mapping[str, set[str]],
    unusable: Mapping[str, Finding],
    *,
    at: datetime,
    config: StockGateConfig,
) -> StockDecision:
    """What to do with each region's answer (``answers``: the usable ones; ``unusable``:
    malformed or failed, with why)."""
    decision = StockDecision()
    for region, finding in sorted(unusable.items()):
        held = current.held.get(region)
        if held is not None and held.listed is not None:
            decision.waiting[region] = held  # a trouble in between does not reset the wait
            continue
        checks, reasons = [finding.check], [finding.reason]
        held_now = HeldStock(region=region, observed_at=at, checks=checks, reasons=reasons)
        decision.hold.append(held_now)
    before = in_stock_by_region(current)
    judged: dict[str, tuple[list[Finding], int, int]] = {}  # region -> findings, changed, size
    deltas: dict[str, StockDelta] = {}
    for region, listed in sorted(answers.items()):
        if region not in current.regions:
            decision.apply[region] = listed  # the first check: recorded silently anyway
            continue
        old = before.get(region, set())
        delta = deltas[region] = StockDelta.of(old, listed)
        out, came = len(delta.leaving), len(delta.entering)
        found = _judge(region, len(old), len(listed), out, came, config)
        judged[region] = (found, out + came, len(old) + came)
    run = _run_finding(judged, config)
    mass: dict[str, list[Finding]] = {}
    for region, (found, changed, _) in judged.items():
        if found:
            mass[region] = found
        elif run is not None and changed:
            mass[region] = [Finding(run.check, f"{run.reason}; {changed} of them in {region}")]
        else:
            decision.apply[region] = answers[region]
            decision.deltas[region] = deltas[region]
            if region in current.held:
                decision.release.add(region)  # the held answer was a blip
    for region, found in sorted(mass.items()):
        _hold_or_confirm(
            decision, current, region, answers[region], deltas[region], found, at, config, before
        )
    return decision


def _run_finding(
    judged: Mapping[str, tuple[list[Finding], int, int]], config: StockGateConfig
) -> Finding | None:
    """Many changes across the run. The region with the most changes is left out of the
    count (its own checks judge it), so that one bad region cannot hold the others back."""
    ranked = sorted(judged.items(), key=lambda item: (-item[1][1], item[0]))
    if len(ranked) < 2:
        return None
    top = ranked[0][0]
    changed = sum(count for _, (_, count, _) in ranked[1:])
    size = sum(count for _, (_, _, count) in ranked[1:])
    if changed < config.min_changes or changed <= size * config.max_run_changes:
        return None
    return Finding(
        "run_changes",
        f"{changed} of {size} (plan, region) pairs changed stock state in one run, not "
        f"counting {top} ({changed / size:.0%}, more than stock.gate.max_run_changes = "
        f"{config.max_run_changes:.0%})",
    )


def _hold_or_confirm(
    decision: StockDecision,
    current: StockView,
    region: str,
    listed: set[str],
    delta: StockDelta,
    found: list[Finding],
    at: datetime,
    config: StockGateConfig,
    before: Mapping[str, set[str]],
) -> None:
    held = current.held.get(region)
    same = (
        held is not None
        and held.listed is not None
        and not judge_region(region, set(held.listed), listed, config)
    )
    if held is not None and same:
        if held.confirm_at is None or at >= held.confirm_at:
            decision.apply[region] = listed
            decision.deltas[region] = delta
            decision.release.add(region)
            decision.confirmed[region] = held
        else:
            decision.waiting[region] = held
        return
    decision.hold.append(
        HeldStock(
            region=region,
            observed_at=at,
            checks=[finding.check for finding in found],
            reasons=[finding.reason for finding in found],
            listed=sorted(listed),
            in_stock_before=len(before.get(region, set())),
            confirm_at=at + timedelta(seconds=config.confirm_after),
        )
    )
