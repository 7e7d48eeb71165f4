"""Shared queries: one priced row per (plan, region), filters, stock, history, summary."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from redis.asyncio import Redis

from tests.fakes.vultr_api import default_catalogue, make_plan
from vultr_scraper_core.models import COLLECTIONS, Catalogue, parse_records
from vultr_scraper_core.store.catalog import CatalogueStore
from vultr_scraper_core.store.queries import (
    PlanFilter,
    PlanRow,
    RedisPast,
    catalogue_summary,
    find_plans,
    plan_matches,
    plan_rows,
    plan_sort_key,
    stock,
)
from vultr_scraper_core.store.stock import Interval, RegionCheck, StockState, StockStore

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def build(**overrides: list[dict[str, Any]]) -> Catalogue:
    fake = default_catalogue()
    raw = {"plans": fake.plans, "metal": fake.metal, "regions": fake.regions, "os": fake.images}
    raw.update(overrides)
    parsed: dict[str, Any] = {
        name: parse_records(COLLECTIONS[name], items)[0] for name, items in raw.items()
    }
    return Catalogue(**parsed)


async def save(redis: Redis, catalogue: Catalogue, at: datetime = T0) -> None:
    store = CatalogueStore(redis, "vs")
    async with store.transaction() as tx:
        tx.commit(catalogue, [], fetched_at=at, committed_at=at, shapes={})
        assert await tx.execute()


async def save_stock(
    redis: Redis,
    states: dict[str, StockState],
    regions: dict[str, RegionCheck],
    intervals: dict[str, list[Interval]] | None = None,
) -> None:
    async with StockStore(redis, "vs").transaction() as tx:
        tx.stage(states=states, intervals=intervals or {}, regions=regions, events=[])
        assert await tx.execute()


def rows_by_key(rows: list[PlanRow]) -> dict[tuple[str, str | None], PlanRow]:
    return {(row.plan, row.region): row for row in rows}


async def test_rows_are_priced_per_region_and_sorted_by_price(redis: Redis) -> None:
    await save(redis, build())
    rows = await find_plans(redis, "vs", PlanFilter())
    prices = [row.monthly_cost for row in rows]
    assert prices == sorted(prices, key=lambda price: price or Decimal("Infinity"))
    by_key = rows_by_key(rows)
    # location_cost replaces the base price in that region only.
    assert by_key[("vhp-2c-4gb-amd", "fra")].monthly_cost == Decimal("26.4")
    assert by_key[("vhp-2c-4gb-amd", "fra")].price_source == "location_cost"
    assert by_key[("vhp-2c-4gb-amd", "ewr")].monthly_cost == Decimal("24")
    assert by_key[("vhp-2c-4gb-amd", "ewr")].price_source == "base"
    twin = by_key[("vc2-1c-1gb-sc1", "sao")]
    assert twin.twin_of == "vc2-1c-1gb" and twin.monthly_cost == Decimal("7.5")
    metal = by_key[("vbm-4c-32gb", "ewr")]
    assert (metal.kind, metal.plan_type, metal.storage, metal.vcpu_count) == (
        "metal",
        "vbm",
        "SSD",
        8,
    )
    assert by_key[("vcg-l40s-16c-180g-48vram", "fra")].gpu_count == "1"
    assert by_key[("vc2-1c-1gb", "ams")].city == "Amsterdam"
    assert all(row.in_stock is None for row in rows)  # stock never checked


async def test_a_region_is_never_listed_twice_for_a_plan_and_its_twin(redis: Redis) -> None:
    fake = default_catalogue()
    base = fake.plan("vc2-1c-1gb")
    base["locations"] = ["ewr", "sao"]  # the base also claims sao: the twin is the SKU there
    await save(redis, build(plans=fake.plans))
    rows = await find_plans(redis, "vs", PlanFilter(region="sao"))
    assert [(row.plan, row.monthly_cost) for row in rows] == [("vc2-1c-1gb-sc1", Decimal("7.5"))]


async def test_filters(redis: Redis) -> None:
    await save(redis, build())

    async def plans(**conditions: Any) -> set[tuple[str, str | None]]:
        return set(rows_by_key(await find_plans(redis, "vs", PlanFilter(**conditions))))

    assert {plan for plan, _ in await plans(plan_type="vcg")} == {
        "vcg-a100-1c-6g-4vram",
        "vcg-l40s-16c-180g-48vram",
    }
    assert {plan for plan, _ in await plans(plan_type="VBM")} == {"vbm-4c-32gb"}
    assert {plan for plan, _ in await plans(min_gpu_vram_gb=40)} == {"vcg-l40s-16c-180g-48vram"}
    assert {plan for plan, _ in await plans(gpu_type="a100")} == {"vcg-a100-1c-6g-4vram"}
    assert await plans(min_vcpu=16, region="ams") == {("vcg-l40s-16c-180g-48vram", "ams")}
    assert {plan for plan, _ in await plans(min_ram_mb=100_000)} == {"vcg-l40s-16c-180g-48vram"}
    cheap = await plans(max_monthly=Decimal("5"))
    assert cheap == {("vc2-1c-1gb", region) for region in ("ewr", "fra", "ams")}
    assert await plans(max_monthly=Decimal("25"), region="fra", plan_type="vhp") == set()
    assert await plans(plan="vhp-2c-4gb-amd", regions=["fra", "sao"]) == {("vhp-2c-4gb-amd", "fra")}
    assert await plans(max_hourly=Decimal("0.007")) == cheap


async def test_in_stock_now(redis: Redis) -> None:
    await save(redis, build())
    checked = {"ewr": RegionCheck(first_checked=T0, last_checked=T0 + timedelta(hours=1))}
    state = StockState(in_stock=True, since=T0, first_seen=T0)
    await save_stock(redis, {"vc2-1c-1gb@ewr": state}, checked)
    in_stock = await find_plans(redis, "vs", PlanFilter(in_stock=True))
    assert [(row.plan, row.region, row.stock_since) for row in in_stock] == [
        ("vc2-1c-1gb", "ewr", T0)
    ]
    out = rows_by_key(await find_plans(redis, "vs", PlanFilter(in_stock=False)))
    assert ("vc2-2c-4gb", "ewr") in out  # checked region, not listed: out of stock
    assert all(region == "ewr" for _, region in out)  # other regions: unknown, not "out"


async def test_history_answers_with_the_price_and_stock_of_then(redis: Redis) -> None:
    await save(redis, build(), T0)
    fake = default_catalogue()
    fake.plan("vc2-1c-1gb")["monthly_cost"] = 6
    await save(redis, build(plans=fake.plans), T0 + timedelta(days=10))
    checked = {"ewr": RegionCheck(first_checked=T0, last_checked=T0 + timedelta(days=20))}
    interval = Interval(start=T0 + timedelta(days=1), end=T0 + timedelta(days=2))
    gone = StockState(
        in_stock=False, since=interval.end or T0, first_seen=interval.start, last_in_stock=T0
    )
    await save_stock(redis, {"vc2-1c-1gb@ewr": gone}, checked, {"vc2-1c-1gb@ewr": [interval]})
    flt = PlanFilter(plan="vc2-1c-1gb", region="ewr")

    async def at(moment: datetime) -> PlanRow:
        (row,) = await find_plans(redis, "vs", flt, at=moment)
        return row

    then = await at(T0 + timedelta(days=1, hours=12))
    assert (then.monthly_cost, then.in_stock, then.stock_since) == (
        Decimal(5),
        True,
        interval.start,
    )
    later = await at(T0 + timedelta(days=11))
    assert (later.monthly_cost, later.in_stock, later.stock_since) == (
        Decimal(6),
        False,
        interval.end,
    )
    assert (await find_plans(redis, "vs", flt))[0].monthly_cost == Decimal(6)
    assert await find_plans(redis, "vs", flt, at=T0 - timedelta(days=1)) == []
    naive = datetime(2026, 1, 2, 12)  # taken as UTC
    assert (await at(naive)).in_stock is True


async def test_a_plan_sold_nowhere_has_one_regionless_row(redis: Redis) -> None:
    await save(redis, build(plans=[make_plan("vdm-x", locations=[], monthly_cost=None)]))
    rows = await find_plans(redis, "vs", PlanFilter(plan_type="vc2"))
    assert [(row.plan, row.region, row.monthly_cost) for row in rows] == [("vdm-x", None, None)]
    assert await find_plans(redis, "vs", PlanFilter(region="ewr", plan_type="vc2")) == []


async def test_stock_rows(redis: Redis) -> None:
    last = T0 + timedelta(hours=3)
    checks = {region: RegionCheck(first_checked=T0, last_checked=last) for region in ("ewr", "fra")}
    states = {
        "a@ewr": StockState(in_stock=True, since=T0, first_seen=T0),
        "a@fra": StockState(
            in_stock=False, since=T0 + timedelta(hours=2), first_seen=T0, last_in_stock=T0
        ),
        "b@ewr": StockState(in_stock=True, since=T0, first_seen=T0),
    }
    await save_stock(redis, states, checks)
    rows = await stock(redis, "vs", plan="a")
    assert [(row.region, row.in_stock, row.last_in_stock) for row in rows] == [
        ("ewr", True, last),
        ("fra", False, T0),
    ]
    assert [row.plan for row in await stock(redis, "vs", region="ewr")] == ["a", "b"]
    assert len(await stock(redis, "vs")) == 3


@pytest.mark.parametrize(
    ("flt", "expected"),
    [
        (PlanFilter(), True),
        (PlanFilter(plan_type="VC2", region="ewr"), True),
        (PlanFilter(min_vcpu=2), False),
        (PlanFilter(max_monthly=Decimal("4.99")), False),
        (PlanFilter(in_stock=True), True),
        (PlanFilter(in_stock=False), False),
        (PlanFilter(gpu_type="nvidia"), False),
        (PlanFilter(regions=["fra"]), False),
    ],
)
def test_plan_matches(flt: PlanFilter, expected: bool) -> None:
    row = PlanRow(
        plan="vc2-1c-1gb",
        kind="cloud",
        plan_type="vc2",
        region="ewr",
        monthly_cost=Decimal(5),
        hourly_cost=Decimal("0.007"),
        vcpu_count=1,
        in_stock=True,
    )
    assert plan_matches(flt, row) is expected


async def test_catalogue_summary(redis: Redis) -> None:
    empty = await catalogue_summary(redis, "vs")
    assert (empty.plans, empty.last_success_at, empty.quarantine) == (0, None, None)
    await save(redis, build())
    await save_stock(redis, {}, {"ewr": RegionCheck(first_checked=T0, last_checked=T0)})
    summary = await catalogue_summary(redis, "vs")
    assert (summary.plans, summary.metal, summary.regions, summary.os) == (6, 1, 4, 3)
    assert summary.last_success_at == T0 and summary.version == 1
    assert summary.stock_checked_at == T0


async def test_stock_lists_pairs_sold_but_never_in_stock(redis: Redis) -> None:
    await save(redis, build())
    last = T0 + timedelta(hours=1)
    checks = {"fra": RegionCheck(first_checked=T0, last_checked=last)}
    states = {"vc2-1c-1gb@fra": StockState(in_stock=True, since=T0, first_seen=T0)}
    await save_stock(redis, states, checks)
    rows = {(row.plan, row.region): row for row in await stock(redis, "vs")}
    never = rows[("vcg-l40s-16c-180g-48vram", "fra")]
    assert (never.in_stock, never.since, never.first_seen, never.last_in_stock) == (
        False,
        T0,
        None,
        None,
    )
    assert rows[("vc2-1c-1gb", "fra")].in_stock is True
    # Only checked regions: ewr was never checked, so its stock is unknown, not "out".
    assert all(region == "fra" for _, region in rows)
    # The same pairs find_plans reports for fra, with the same stock state.
    planned = await find_plans(redis, "vs", PlanFilter(region="fra"))
    assert {(row.plan, row.region, row.in_stock) for row in planned} == {
        (row.plan, row.region, row.in_stock) for row in rows.values()
    }
    assert [row.plan for row in await stock(redis, "vs", plan="vcg-l40s-16c-180g-48vram")] == [
        "vcg-l40s-16c-180g-48vram"
    ]


async def test_the_cached_catalogue_follows_every_commit_and_stock_is_read_live(
    redis: Redis,
) -> None:
    """The decoded rows are kept per catalogue revision on one client: a new commit, even one
    with the same version number and times after the store was emptied, is seen at once;
    stock is never cached."""
    plan = make_plan("vc2-1c-1gb", monthly_cost=5, locations=["ewr", "fra"])
    await save(redis, build(plans=[plan]))
    first = await find_plans(redis, "vs", PlanFilter(plan="vc2-1c-1gb"))
    assert [(row.region, row.monthly_cost, row.in_stock) for row in first] == [
        ("ewr", Decimal(5), None),
        ("fra", Decimal(5), None),
    ]
    checked = RegionCheck(first_checked=T0, last_checked=T0)
    in_stock = StockState(in_stock=True, since=T0, first_seen=T0)
    await save_stock(redis, {"vc2-1c-1gb@fra": in_stock}, {"ewr": checked, "fra": checked})
    rows = rows_by_key(await find_plans(redis, "vs", PlanFilter(in_stock=True)))
    assert list(rows) == [("vc2-1c-1gb", "fra")]
    # Emptied and filled again: version 1 at the same time, but another price.
    await redis.flushdb()
    await save(redis, build(plans=[make_plan("vc2-1c-1gb", monthly_cost=7, locations=["ewr"])]))
    again = await find_plans(redis, "vs", PlanFilter())
    assert [(row.plan, row.region, row.monthly_cost, row.in_stock) for row in again if
            row.plan == "vc2-1c-1gb"] == [("vc2-1c-1gb", "ewr", Decimal(7), None)]  # fmt: skip


AS_OF_FILTERS = [
    PlanFilter(),
    PlanFilter(region="ewr"),
    PlanFilter(regions=["fra", "ams"], in_stock=True),
    PlanFilter(plan_type="vcg", in_stock=False),
    PlanFilter(max_monthly=Decimal("6"), min_vcpu=1),
    PlanFilter(plan="vc2-1c-1gb"),
]


async def test_as_of_rows_kept_between_queries_equal_rows_built_afresh(redis: Redis) -> None:
    """``find_plans(at=...)`` keeps a past catalogue's rows by what it was read from; its
    answers equal rows built from ``catalogue_at`` and ``stock_at`` on every query, also after
    later commits, a price change of the same size, and with the store emptied and written
    again (a different catalogue under the same key names and times)."""
    past = RedisPast(redis, "vs")

    async def fresh(flt: PlanFilter, moment: datetime) -> list[PlanRow]:
        catalogue, lookup = await past.catalogue_at(moment), await past.stock_at(moment)
        rows = [row for row in plan_rows(catalogue, lookup) if plan_matches(flt, row)]
        if flt.region is not None or flt.regions:
            rows = [row for row in rows if row.region is not None]
        return sorted(rows, key=plan_sort_key)

    async def same_answers(moments: list[datetime]) -> None:
        for moment in moments:
            for flt in AS_OF_FILTERS:
                for _ in range(2):  # the second from the rows kept
                    assert await find_plans(redis, "vs", flt, at=moment) == await fresh(
                        flt, moment
                    ), (flt, moment)

    checked = {"ewr": RegionCheck(first_checked=T0, last_checked=T0 + timedelta(days=20))}
    state = StockState(in_stock=True, since=T0, first_seen=T0)
    await save_stock(redis, {"vc2-1c-1gb@ewr": state, "vcg-a100-1c-6g-4vram@ewr": state}, checked)
    await save(redis, build(), T0)
    moments = [T0 + timedelta(hours=1), T0 + timedelta(days=5), T0 + timedelta(days=12)]
    await same_answers(moments)
    fake = default_catalogue()
    fake.plan("vc2-1c-1gb")["monthly_cost"] = 6
    await save(redis, build(plans=fake.plans), T0 + timedelta(days=10))
    await same_answers(moments)
    assert (await find_plans(redis, "vs", AS_OF_FILTERS[5], at=moments[2]))[0].monthly_cost == 6
    await redis.flushdb()
    fake.plan("vc2-1c-1gb")["monthly_cost"] = 7
    await save(redis, build(plans=fake.plans), T0)
    await save_stock(redis, {"vc2-1c-1gb@ewr": state}, checked)
    await same_answers(moments)
    assert (await find_plans(redis, "vs", AS_OF_FILTERS[5], at=moments[0]))[0].monthly_cost == 7
