""" "As of" rows are kept by what they were read from: answers through them equal the rows
built afresh (the catalogue at T replayed, every row built with its stock, filtered and
sorted), after new writes at or before the time asked about (a backdated commit, a flip), and
after the day holding that time moved to the archive (the same answer, from the archive)."""

from __future__ import annotations

import random
from collections import OrderedDict
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import msgspec
import pytest
from bench.history_sim import synthetic_catalogue
from redis.asyncio import Redis

from tests.history.harness import SMALL, START, Clock, history, mover, simulate_twins
from vultr_scraper_core.history.files import Archive, open_archive
from vultr_scraper_core.history.query import History
from vultr_scraper_core.store import queries
from vultr_scraper_core.store.catalog import CatalogueStore
from vultr_scraper_core.store.queries import (
    PlanFilter,
    PlanRow,
    plan_matches,
    plan_rows,
    plan_sort_key,
)
from vultr_scraper_core.store.stock import Flip, flip_member, pair_key

FILTERS = [
    PlanFilter(),
    PlanFilter(in_stock=True),
    PlanFilter(in_stock=False, plan_type="vc2"),
    PlanFilter(region="r003", max_monthly=Decimal(40)),
    PlanFilter(min_vcpu=4, regions=["r001", "r010"]),
]


async def _built_anew(history: History, flt: PlanFilter, at: datetime) -> list[PlanRow]:
    """The listing as it was built before the memo: every row of the catalogue at ``at``
    with its stock, filtered, then sorted."""
    catalogue = await history.catalogue_at(at)
    lookup = await history.stock_at(at)
    rows = [row for row in plan_rows(catalogue, lookup) if plan_matches(flt, row)]
    if flt.region is not None or flt.regions:
        rows = [row for row in rows if row.region is not None]
    return sorted(rows, key=plan_sort_key)


async def _assert_same(redis: Redis, archive_dir: Path, kept: History, at: datetime) -> None:
    fresh = History(redis, "moved", open_archive(str(archive_dir)))  # an empty file cache
    for flt in FILTERS:
        through_kept = await kept.plans(flt, at)
        assert through_kept == await kept.plans(flt, at)  # a second time, from the kept rows
        assert through_kept == await fresh.plans(flt, at), flt
        assert through_kept == await _built_anew(fresh, flt, at), flt


async def test_as_of_through_kept_rows_equals_rows_built_afresh_across_writes_and_moves(
    redis: Redis, tmp_path: Path
) -> None:
    archive_dir = tmp_path / "archive"
    stats, _, archive = await simulate_twins(redis, archive_dir)
    kept = history(redis, "moved", archive)
    boundary = await kept.window.boundary()
    assert boundary is not None
    in_archive = START + timedelta(days=2, hours=5)
    in_window = stats.end - timedelta(hours=20)
    assert in_archive < boundary <= in_window
    for moment in (in_archive, in_window):
        await _assert_same(redis, archive_dir, kept, moment)
    assert queries._AS_OF_ROWS  # the rows were kept
    before = await kept.plans(PlanFilter(), in_window)

    # New writes at or before the time: a price backdated to an hour before it, and a flip.
    store = CatalogueStore(redis, "moved")
    async with store.transaction() as tx:
        catalogue = tx.current.catalogue
        plan = next(iter(catalogue.plans.values()))
        changed = msgspec.structs.replace(plan, monthly_cost=(plan.monthly_cost or 0) + 7)
        new = msgspec.structs.replace(catalogue, plans={**catalogue.plans, plan.id: changed})
        tx.commit(
            new, [], fetched_at=in_window - timedelta(hours=1),
            committed_at=stats.end, shapes={},
        )  # fmt: skip
        assert await tx.execute()
    row = next(row for row in before if row.region is not None and row.plan != plan.id)
    flip = Flip(
        at_ms=int((in_window - timedelta(minutes=30)).timestamp() * 1000),
        pair=pair_key(row.plan, row.region or ""),
        in_stock=not row.in_stock,
    )
    await redis.zadd("moved:stock:flips", {flip_member(flip): flip.at_ms})
    after = await kept.plans(PlanFilter(), in_window)
    assert after != before
    assert {r.monthly_cost for r in after if r.plan == plan.id and r.price_source == "base"} == {
        changed.monthly_cost
    }
    assert next(r for r in after if (r.plan, r.region) == (row.plan, row.region)).in_stock is (
        not row.in_stock
    )
    await _assert_same(redis, archive_dir, kept, in_window)

    # The day holding the time moves to the archive: the same answer, from the archive now.
    await _move_past(redis, archive, in_window)
    assert await kept.window.boundary() is not None
    assert (await kept.window.boundary() or in_window) > in_window
    assert await kept.plans(PlanFilter(), in_window) == after
    await _assert_same(redis, archive_dir, kept, in_window)


async def _move_past(redis: Redis, archive: Archive, moment: datetime) -> None:
    clock = Clock(moment + timedelta(days=SMALL.days))
    await mover(redis, "moved", archive, clock, days=1).run()


async def test_kept_rows_are_bounded_by_their_count(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(queries, "_AS_OF_ROWS", OrderedDict())
    catalogues = [synthetic_catalogue(1, random.Random(seed)) for seed in range(4)]
    sizes = [len(list(plan_rows(catalogue, _unknown))) for catalogue in catalogues]
    monkeypatch.setattr(queries, "AS_OF_ROWS_BUDGET", sizes[1] + sizes[2] + sizes[3] - 1)
    for seed, catalogue in enumerate(catalogues):
        kept = await queries.rows_for(("test", seed), lambda c=catalogue: c)  # type: ignore[misc]
        assert len(kept.rows) == sizes[seed]
    # The budget holds two of the last three; the oldest go first.
    assert list(queries._AS_OF_ROWS) == [("test", 2), ("test", 3)]
    monkeypatch.setattr(queries, "AS_OF_ROWS_BUDGET", 1)
    await queries.rows_for(("test", 0), lambda: catalogues[0])
    assert list(queries._AS_OF_ROWS) == [("test", 0)]  # the latest stays whatever its size


def _unknown(_plan: str, _region: str) -> tuple[bool | None, datetime | None]:
    return None, None
