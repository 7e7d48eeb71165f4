"""The stock gate's decisions, region by region, at and around their thresholds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from vultr_scraper_core.config import StockGateConfig
from vultr_scraper_core.store.stock import (
    HeldStock,
    RegionCheck,
    StockState,
    StockView,
    pair_key,
)
from vultr_scraper_jobs.stock_gate import Finding, StockDelta, decide, judge_region

T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
CONFIG = StockGateConfig()


def view(stock: dict[str, list[str]], held: dict[str, HeldStock] | None = None) -> StockView:
    """Regions checked before, with the plans in stock there."""
    states = {
        pair_key(plan, region): StockState(in_stock=True, since=T0, first_seen=T0)
        for region, plans in stock.items()
        for plan in plans
    }
    regions = {region: RegionCheck(first_checked=T0, last_checked=T0) for region in stock}
    return StockView(states=states, regions=regions, held=held or {})


def plans(count: int, prefix: str = "p") -> list[str]:
    return [f"{prefix}{n}" for n in range(count)]


def test_small_changes_are_applied_region_by_region() -> None:
    current = view({"ewr": plans(10), "fra": plans(10)})
    answers = {"ewr": set(plans(9)), "fra": {*plans(10), "new"}}
    decision = decide(current, answers, {}, at=T0, config=CONFIG)
    assert decision.apply == answers
    assert decision.hold == [] and decision.held == {}


def test_a_region_reporting_none_of_many_is_held_and_the_others_update() -> None:
    current = view({"ewr": plans(12), "fra": plans(10)})
    answers = {"ewr": set(), "fra": set(plans(9))}
    decision = decide(current, answers, {}, at=T0, config=CONFIG)
    assert decision.apply == {"fra": set(plans(9))}
    (held,) = decision.hold
    assert (held.region, held.checks, held.listed, held.in_stock_before) == (
        "ewr",
        ["emptied"],
        [],
        12,
    )
    assert held.reasons == [
        "ewr: reports no plan in stock, down from 12 (stock.gate.emptied_min = 3)"
    ]
    assert held.confirm_at == T0 + timedelta(seconds=300)


@pytest.mark.parametrize(("before", "held"), [(2, False), (3, True)])
def test_emptied_needs_emptied_min_plans(before: int, held: bool) -> None:
    decision = decide(view({"ewr": plans(before)}), {"ewr": set()}, {}, at=T0, config=CONFIG)
    assert bool(decision.hold) is held


@pytest.mark.parametrize(
    ("leaving", "held"),
    [(4, False), (5, False), (6, True)],
    ids=["below-min", "half", "more-than-half"],
)
def test_region_changes_edges(leaving: int, held: bool) -> None:
    # 10 plans in stock, ``leaving`` of them leave: at least 5 and more than half trips it.
    # (A quiet region keeps the run's share low: this is about the region alone.)
    before = plans(10)
    current = view({"ewr": before, "quiet": plans(40)})
    answers = {"ewr": set(before[leaving:]), "quiet": set(plans(40))}
    decision = decide(current, answers, {}, at=T0, config=CONFIG)
    assert bool(decision.hold) is held, decision.hold
    if held:
        assert decision.hold[0].checks == ["region_changes"]
        assert decision.hold[0].reasons == [
            "ewr: 6 of 10 plans changed stock state in one check (6 out, 0 in: 60%, more than "
            "stock.gate.max_region_changes = 50%)"
        ]


def test_ids_in_a_new_format_are_a_mass_change() -> None:
    current = view({"ewr": plans(20)})
    renamed = {f"plan_{name}" for name in plans(20)}
    decision = decide(current, {"ewr": renamed}, {}, at=T0, config=CONFIG)
    assert [held.checks for held in decision.hold] == [["region_changes"]]


@pytest.mark.parametrize(("leaving", "held"), [(3, False), (4, True)])
def test_many_small_changes_across_a_run_hold_every_changed_region(
    leaving: int, held: bool
) -> None:
    # 4 regions of 10 plans lose ``leaving`` each (under the region share) and one stays put.
    # Leaving out the first (ams), 9 of 40 pairs is under 25%, 12 of 40 is over.
    regions = ["ams", "ewr", "fra", "sao"]
    current = view({region: plans(10) for region in [*regions, "quiet"]})
    answers = {region: set(plans(10)[leaving:]) for region in regions}
    answers["quiet"] = set(plans(10))
    decision = decide(current, answers, {}, at=T0, config=CONFIG)
    if not held:
        assert decision.hold == [] and decision.apply == answers
        return
    assert sorted(held.region for held in decision.hold) == regions
    assert {tuple(held.checks) for held in decision.hold} == {("run_changes",)}
    assert decision.hold[0].reasons == [
        "12 of 40 (plan, region) pairs changed stock state in one run, not counting ams (30%, "
        "more than stock.gate.max_run_changes = 25%); 4 of them in ams"
    ]
    assert decision.apply == {"quiet": set(plans(10))}


def test_one_bad_region_does_not_hold_the_others_back() -> None:
    # One region empties (held on its own); the others change a little: they still update.
    current = view({"ewr": plans(30), "fra": plans(10), "ams": plans(10)})
    answers = {"ewr": set(), "fra": set(plans(9)), "ams": set(plans(9))}
    decision = decide(current, answers, {}, at=T0, config=CONFIG)
    assert [held.region for held in decision.hold] == ["ewr"]
    assert decision.apply == {"fra": set(plans(9)), "ams": set(plans(9))}


def test_every_region_empty_at_once_holds_even_the_small_ones() -> None:
    current = view({"ewr": plans(4), "fra": plans(3), "ams": plans(2), "sao": plans(1)})
    answers: dict[str, set[str]] = {region: set() for region in current.regions}
    decision = decide(current, answers, {}, at=T0, config=CONFIG)
    assert decision.apply == {}
    checks = {held.region: held.checks for held in decision.hold}
    assert checks == {
        "ewr": ["emptied"],
        "fra": ["emptied"],
        "ams": ["run_changes"],
        "sao": ["run_changes"],
    }


def test_the_first_check_of_a_region_is_never_held() -> None:
    current = view({"ewr": plans(10)})
    decision = decide(current, {"new": set(plans(50))}, {}, at=T0, config=CONFIG)
    assert decision.apply == {"new": set(plans(50))} and decision.hold == []


def test_applied_answers_come_with_their_changes_against_the_current_stock() -> None:
    """What the transitions are computed from: each applied answer of a region checked
    before, against the plans in stock there; none for a held answer or a first check."""
    current = view({"ewr": plans(10), "fra": plans(10), "sgp": plans(12), "ams": plans(3)})
    answers = {
        "ewr": set(plans(9)),
        "fra": {*plans(10), "new"},
        "sgp": set(),  # emptied: held
        "ams": set(plans(3)),  # unchanged
        "lhr": {"a", "b"},  # the first check
    }
    decision = decide(current, answers, {}, at=T0, config=CONFIG)
    assert set(decision.apply) == {"ewr", "fra", "ams", "lhr"}
    assert decision.deltas == {
        "ewr": StockDelta(entering=set(), leaving={"p9"}),
        "fra": StockDelta(entering={"new"}, leaving=set()),
        "ams": StockDelta(entering=set(), leaving=set()),
    }


def held_emptied(at: datetime = T0, listed: list[str] | None = None) -> HeldStock:
    return HeldStock(
        region="ewr",
        observed_at=at,
        checks=["emptied"],
        reasons=["ewr: ..."],
        listed=[] if listed is None else listed,
        in_stock_before=12,
        confirm_at=at + timedelta(seconds=300),
    )


def test_the_same_answer_before_the_interval_keeps_waiting() -> None:
    current = view({"ewr": plans(12)}, held={"ewr": held_emptied()})
    decision = decide(current, {"ewr": set()}, {}, at=T0 + timedelta(seconds=299), config=CONFIG)
    assert decision.apply == {} and decision.hold == [] and decision.release == set()
    assert decision.waiting == {"ewr": held_emptied()}


def test_the_same_answer_after_the_interval_confirms_it() -> None:
    current = view({"ewr": plans(12)}, held={"ewr": held_emptied()})
    later = T0 + timedelta(seconds=300)
    decision = decide(current, {"ewr": set()}, {}, at=later, config=CONFIG)
    assert decision.apply == {"ewr": set()}
    assert decision.release == {"ewr"} and decision.confirmed == {"ewr": held_emptied()}
    assert decision.deltas == {"ewr": StockDelta(entering=set(), leaving=set(plans(12)))}


def test_nearly_the_same_answer_confirms_too() -> None:
    # A restock of 10 new plans held; the second check sees 9 of them: the same, give or take.
    restock = sorted(plans(10, "new"))
    held = held_emptied(listed=restock)
    current = view({"ewr": []}, held={"ewr": held})
    current.regions["ewr"] = RegionCheck(first_checked=T0, last_checked=T0)
    later = T0 + timedelta(minutes=6)
    decision = decide(current, {"ewr": set(restock[:9])}, {}, at=later, config=CONFIG)
    assert decision.confirmed == {"ewr": held} and decision.apply == {"ewr": set(restock[:9])}


def test_a_different_implausible_answer_replaces_the_held_one_and_restarts_the_wait() -> None:
    current = view({"ewr": plans(12)}, held={"ewr": held_emptied()})
    junk = {f"x{n}" for n in range(30)}
    later = T0 + timedelta(minutes=10)
    decision = decide(current, {"ewr": junk}, {}, at=later, config=CONFIG)
    (held,) = decision.hold
    assert held.listed == sorted(junk) and held.observed_at == later
    assert held.confirm_at == later + timedelta(seconds=300)
    assert decision.apply == {} and decision.confirmed == {}


def test_a_plausible_answer_clears_the_held_one() -> None:
    current = view({"ewr": plans(12)}, held={"ewr": held_emptied()})
    decision = decide(current, {"ewr": set(plans(12))}, {}, at=T0, config=CONFIG)
    assert decision.apply == {"ewr": set(plans(12))} and decision.release == {"ewr"}


def test_unusable_answers_are_held_without_data_but_never_reset_a_wait() -> None:
    current = view({"ewr": plans(12), "fra": plans(3)}, held={"ewr": held_emptied()})
    unusable = {
        "ewr": Finding("failed", "ewr: request failed: HTTP 504"),
        "fra": Finding(
            "malformed", "fra: malformed answer: the answer has no available_plans list"
        ),
    }
    decision = decide(current, {}, unusable, at=T0, config=CONFIG)
    assert decision.waiting == {"ewr": held_emptied()}
    (held,) = decision.hold
    assert (held.region, held.checks, held.listed) == ("fra", ["malformed"], None)
    assert decision.apply == {}


def test_judge_region_is_symmetric_about_what_counts() -> None:
    assert judge_region("ewr", set(), set(), CONFIG) == []
    assert judge_region("ewr", set(plans(2)), set(), CONFIG) == []
    assert [f.check for f in judge_region("ewr", set(), set(plans(6)), CONFIG)] == [
        "region_changes"
    ]
