"""The quarantine gate's thresholds, at and around their edges."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from vultr_scraper_core.config import CatalogConfig
from vultr_scraper_core.models import Catalogue, CloudPlan, Region, parse_record
from vultr_scraper_jobs.gate import evaluate, price_moves

CONFIG = CatalogConfig()
CHECKED = ["plans", "metal", "regions", "os"]


def catalogue(count: int = 10, **prices: Any) -> Catalogue:
    plans = {
        f"p{n}": parse_record(CloudPlan, {"id": f"p{n}", "monthly_cost": 10, "hourly_cost": 1})
        for n in range(count)
    }
    if prices:
        plans["p0"] = parse_record(CloudPlan, {"id": "p0", **prices})
    return Catalogue(plans=plans, regions={"ewr": parse_record(Region, {"id": "ewr"})})


def reasons(
    current: Catalogue, candidate: Catalogue, problems: list[str] | None = None
) -> list[str]:
    verdict = evaluate(current, candidate, problems=problems or [], checked=CHECKED, config=CONFIG)
    assert verdict.accepted is (not verdict.reasons)
    return verdict.reasons


def test_an_identical_snapshot_passes() -> None:
    assert reasons(catalogue(), catalogue()) == []


def test_the_first_snapshot_passes_if_not_empty() -> None:
    assert reasons(Catalogue(), catalogue()) == []
    assert reasons(Catalogue(), Catalogue()) == ["no plans returned", "no regions returned"]


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
        "plans: 1 item, down from 5 (more than 20% fewer)"
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
    def plan(fra: int, base: int = 10) -> Catalogue:
        record = parse_record(
            CloudPlan,
            {"id": "p", "monthly_cost": base, "location_cost": {"fra": {"monthly_cost": fra}}},
        )
        return Catalogue(plans={"p": record})

    (move,) = price_moves(plan(10), plan(30), CONFIG)
    assert (move.region, move.old, move.new) == ("fra", Decimal(10), Decimal(30))
    assert move.describe() == "p monthly_cost in fra 10 -> 30 (x3.00)"
    assert list(price_moves(plan(10, base=0), plan(10, base=5), CONFIG)) == []  # free plan
    assert list(price_moves(plan(10), plan(10, base=0), CONFIG))  # to zero: held


def test_many_moves_are_summarised() -> None:
    current = catalogue(10)
    candidate = Catalogue(
        plans={
            key: parse_record(CloudPlan, {"id": key, "monthly_cost": 100, "hourly_cost": 1})
            for key in current.plans
        },
        regions=current.regions,
    )
    (reason,) = reasons(current, candidate)
    assert reason.startswith("10 prices moved beyond x1.5 or x0.5: p0 monthly_cost 10 -> 100")
    assert reason.endswith("and 7 more")
