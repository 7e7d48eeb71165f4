"""The quarantine gate's thresholds, at and around their edges."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from vultr_scraper_core.config import CatalogGateConfig
from vultr_scraper_core.models import Catalogue, CloudPlan, Region, parse_record
from vultr_scraper_jobs.gate import evaluate, lost_prices, price_moves

CONFIG = CatalogGateConfig()
CHECKED = ["plans", "metal", "regions", "os"]


def plan(plan_id: str, **fields: Any) -> CloudPlan:
    return parse_record(
        CloudPlan,
        {"id": plan_id, "monthly_cost": 10, "hourly_cost": 1, "locations": ["ewr"], **fields},
    )


def catalogue(count: int = 10, ids: str = "p{}", **prices: Any) -> Catalogue:
    plans = {ids.format(n): plan(ids.format(n)) for n in range(count)}
    if prices:
        plans["p0"] = parse_record(CloudPlan, {"id": "p0", "locations": ["ewr"], **prices})
    return Catalogue(plans=plans, regions={"ewr": parse_record(Region, {"id": "ewr"})})


def verdict_of(
    current: Catalogue,
    candidate: Catalogue,
    problems: list[str] | None = None,
    config: CatalogGateConfig = CONFIG,
) -> list[tuple[str, str]]:
    verdict = evaluate(current, candidate, problems=problems or [], checked=CHECKED, config=config)
    assert verdict.accepted is (not verdict.reasons)
    return [(finding.check, finding.reason) for finding in verdict.findings]


def reasons(
    current: Catalogue, candidate: Catalogue, problems: list[str] | None = None
) -> list[str]:
    return [reason for _, reason in verdict_of(current, candidate, problems)]


def checks(current: Catalogue, candidate: Catalogue, **config: Any) -> list[str]:
    chosen = CatalogGateConfig(**config) if config else CONFIG
    return [check for check, _ in verdict_of(current, candidate, config=chosen)]


def test_an_identical_snapshot_passes() -> None:
    assert reasons(catalogue(), catalogue()) == []


def test_the_first_snapshot_passes_if_not_empty() -> None:
    assert reasons(Catalogue(), catalogue()) == []
    assert reasons(Catalogue(), Catalogue()) == ["no plans returned", "no regions returned"]
    # Thousands of plans on the first run are not "growth": there is nothing to compare with.
    assert reasons(Catalogue(), catalogue(5000)) == []


def test_fetch_problems_always_quarantine() -> None:
    assert reasons(catalogue(), catalogue(), ["page 2 failed"]) == ["page 2 failed"]


@pytest.mark.parametrize(
    ("before", "after", "held"),
    [(10, 8, False), (10, 7, True), (4, 3, False), (4, 2, True), (1, 0, True)],
)
def test_count_drop_beyond_the_share(before: int, after: int, held: bool) -> None:
    found = reasons(catalogue(before), catalogue(after))
    assert bool(found) is held, found  # (1 -> 0 is held as "no plans returned")


def test_reasons_pluralise() -> None:
    assert reasons(catalogue(5), catalogue(1)) == [
        "plans: 1 item, down from 5 (more than 20% fewer, catalog.gate.max_count_drop)"
    ]
    assert reasons(catalogue(5), catalogue(2))[0].startswith("plans: 2 items, down from 5")
    one_move = catalogue(monthly_cost=Decimal(100), hourly_cost=1)
    assert reasons(catalogue(), one_move)[0].startswith("1 price moved beyond")


@pytest.mark.parametrize(
    ("new_price", "held"),
    [("15", False), ("15.01", True), ("5", False), ("4.99", True), ("10", False)],
)
def test_price_ratio_edges(new_price: str, held: bool) -> None:
    candidate = catalogue(monthly_cost=Decimal(new_price), hourly_cost=1)
    assert bool(reasons(catalogue(), candidate)) is held


def test_regional_prices_are_checked_and_zero_prices_skipped() -> None:
    def regional(fra: int, base: int = 10) -> Catalogue:
        record = parse_record(
            CloudPlan,
            {"id": "p", "monthly_cost": base, "location_cost": {"fra": {"monthly_cost": fra}}},
        )
        return Catalogue(plans={"p": record})

    (move,) = price_moves(regional(10), regional(30), CONFIG)
    assert (move.region, move.old, move.new) == ("fra", Decimal(10), Decimal(30))
    assert move.describe() == "p monthly_cost in fra 10 -> 30 (x3.00)"
    assert list(price_moves(regional(10, base=0), regional(10, base=5), CONFIG)) == []  # free
    assert list(price_moves(regional(10), regional(10, base=0), CONFIG))  # to zero: held


def test_many_moves_are_summarised() -> None:
    current = catalogue(10)
    candidate = Catalogue(
        plans={key: plan(key, monthly_cost=100) for key in current.plans},
        regions=current.regions,
    )
    (reason,) = reasons(current, candidate)
    assert reason.startswith(
        "10 prices moved beyond x1.5 or x0.5 (catalog.gate.max_price_ratio / min_price_ratio): "
        "p0 monthly_cost 10 -> 100"
    )
    assert reason.endswith("and 7 more")


@pytest.mark.parametrize(
    ("before", "after", "held"),
    [(10, 15, False), (10, 16, True), (2, 3, False), (2, 4, True), (239, 51_200, True)],
)
def test_count_growth_beyond_the_share(before: int, after: int, held: bool) -> None:
    found = checks(catalogue(before), catalogue(after))
    assert ("count_growth" in found) is held, found


def test_growth_reason_names_its_setting() -> None:
    (reason,) = reasons(catalogue(10), catalogue(20))
    assert (
        reason == "plans: 20 items, up from 10 (more than 50% more, catalog.gate.max_count_growth)"
    )


def test_renaming_every_id_is_turnover_although_the_count_is_unchanged() -> None:
    found = verdict_of(catalogue(240), catalogue(240, ids="plan_{}"))
    assert [check for check, _ in found] == ["turnover"]
    assert found[0][1] == (
        "plans: 240 ids retired and 240 added in one run (100% of 240 replaced, more than 25%, "
        "catalog.gate.max_turnover), e.g. retired p0, retired p1, added plan_0, added plan_1"
    )


@pytest.mark.parametrize(("replaced", "held"), [(1, False), (2, False), (3, True)])
def test_turnover_edges(replaced: int, held: bool) -> None:
    # 10 plans, ``replaced`` of them swapped for new ids: more than 25% of 10 trips it.
    candidate = catalogue(10)
    for n in range(replaced):
        del candidate.plans[f"p{n}"]
        candidate.plans[f"new{n}"] = plan(f"new{n}")
    assert ("turnover" in checks(catalogue(10), candidate)) is held


def test_one_id_replaced_in_a_tiny_collection_passes() -> None:
    assert checks(catalogue(1), catalogue(1, ids="q{}")) == []


def test_an_unreadable_price_is_a_lost_price() -> None:
    candidate = catalogue(10, monthly_cost="N/A", hourly_cost=1)
    found = verdict_of(catalogue(10), candidate)
    assert found == [
        (
            "lost_prices",
            "1 published price vanished or became unreadable (more than "
            "catalog.gate.max_lost_prices = 0): p0 monthly_cost 10 -> unreadable 'N/A'",
        )
    ]


def test_a_vanished_price_is_a_lost_price_and_a_tolerance_lets_it_through() -> None:
    candidate = catalogue(10, hourly_cost=1)  # p0 without monthly_cost
    assert checks(catalogue(10), candidate) == ["lost_prices"]
    assert checks(catalogue(10), candidate, max_lost_prices=1) == []
    (lost,) = lost_prices(catalogue(10), candidate)
    assert lost.describe() == "p0 monthly_cost 10 -> missing"


def test_regional_prices_can_be_lost_too() -> None:
    def regional(cost: Any) -> Catalogue:
        return Catalogue(plans={"p": plan("p", location_cost=cost)})

    fra = {"fra": {"monthly_cost": 11, "hourly_cost": 2}}
    assert [item.describe() for item in lost_prices(regional(fra), regional({}))] == [
        "p hourly_cost in fra 2 -> missing",
        "p monthly_cost in fra 11 -> missing",
    ]
    garbled = {"fra": {"monthly_cost": "N/A"}}
    unreadable = list(lost_prices(regional(fra), regional(garbled)))
    assert [(item.region, item.kind) for item in unreadable] == [
        ("fra", "hourly_cost"),
        ("fra", "monthly_cost"),
    ]
    assert "unreadable {" in unreadable[0].describe()


def test_a_new_plan_with_an_unreadable_price_is_held() -> None:
    candidate = catalogue(10)
    candidate.plans["fresh"] = plan("fresh", monthly_cost="call us")
    assert checks(catalogue(10), candidate) == ["lost_prices"]


def test_required_fields_of_new_and_known_plans() -> None:
    candidate = catalogue(10)
    candidate.plans["p1"] = parse_record(
        CloudPlan, {"id": "p1", "monthly_cost": 10, "hourly_cost": 1}
    )
    candidate.plans["fresh"] = parse_record(CloudPlan, {"id": "fresh", "locations": []})
    found = verdict_of(catalogue(10), candidate)
    assert found == [
        (
            "required_fields",
            "2 plans lack required fields (catalog.gate.required_plan_fields): "
            "fresh price, p1 locations",
        )
    ]
    # ``locations: []`` (sold nowhere) is present; a plan that never had a field keeps passing.
    assert checks(candidate, candidate) == []
    assert checks(catalogue(10), candidate, required_plan_fields=["price"]) == ["required_fields"]
    assert checks(catalogue(10), candidate, required_plan_fields=[]) == []


def test_the_first_snapshot_must_carry_the_required_fields() -> None:
    bare = Catalogue(
        plans={"p": parse_record(CloudPlan, {"id": "p"})},
        regions={"ewr": parse_record(Region, {"id": "ewr"})},
    )
    assert checks(Catalogue(), bare) == ["required_fields"]


def test_every_finding_names_its_check() -> None:
    junk = catalogue(5000, ids="junk-{}")
    found = checks(catalogue(239), junk, max_lost_prices=0)
    assert found == ["count_growth", "turnover"]
