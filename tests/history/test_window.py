"""The Redis window rolls over into the archive: nothing lost, nothing counted twice, and every
query across the boundary answers what a store that kept everything in Redis answers."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest
from redis.asyncio import Redis

from tests.history.harness import SMALL, START, Clock, history, mover, simulate_twins
from vultr_scraper_core.history.files import ArchiveError, open_archive
from vultr_scraper_core.history.mover import HistoryMover
from vultr_scraper_core.history.tables import PriceInterval
from vultr_scraper_core.history.window import Window
from vultr_scraper_core.store.changes import ChangeFeed
from vultr_scraper_core.store.codec import text
from vultr_scraper_core.store.queries import PlanFilter


async def _index_equals_feed(redis: Redis, prefix: str) -> bool:
    """Every subject's index lists the ids of exactly the feed's events about it."""
    feed = ChangeFeed(redis, prefix)
    by_subject: dict[str, list[str]] = {}
    for entry_id, fields in await redis.xrange(feed.key):
        by_subject.setdefault(text(fields[b"subject"]), []).append(text(entry_id))
    indexed = {
        text(subject): [
            text(entry_id) for entry_id, _ in await redis.xrange(feed.index.key(text(subject)))
        ]
        for subject in await redis.smembers(feed.index.subjects)  # type: ignore[misc]
    }
    return bool(by_subject) and indexed == by_subject


async def test_days_move_out_and_queries_across_the_boundary_equal_redis_only(
    redis: Redis, tmp_path: Path
) -> None:
    stats, summaries, archive = await simulate_twins(redis, tmp_path / "archive")
    moved_days = [day.day for summary in summaries for day in summary.moved]
    assert moved_days == sorted(set(moved_days))  # each day once, in order
    assert len(moved_days) == SMALL.days - 3  # the 3-day window stays in Redis
    boundary = await Window(redis, "moved").boundary()
    assert boundary is not None and boundary == START + timedelta(days=len(moved_days))

    # January's days are all archived: Redis keeps its manifest's path, not a list of its days.
    months = await Window(redis, "moved", archive).months()
    assert list(months) == ["2025-01"] and months["2025-01"].startswith("manifests/month=2025-01/")
    listed = sorted(name.decode() for name in await redis.hkeys("moved:history:days"))  # type: ignore[misc]
    assert listed and all(name.startswith("2025-02-") for name in listed)
    assert [entry.day for entry in await Window(redis, "moved", archive).days()] == moved_days

    moved = history(redis, "moved", archive)
    plain = history(redis, "plain", None)
    # The feed: every event exactly once, same ids, same content.
    everything = await moved.changes(limit=10**6)
    reference = await plain.changes(limit=10**6)
    assert len(everything) == len(reference) == stats.events
    assert everything == reference
    assert len({event.id for event in everything}) == len(everything)
    # Redis keeps only the window.
    assert int(await redis.xlen("moved:changes")) < int(await redis.xlen("plain:changes"))
    first_kept = (await redis.xrange("moved:changes", count=1))[0][0].decode()
    assert int(first_kept.partition("-")[0]) >= int(boundary.timestamp() * 1000)

    # The index by subject was trimmed with the feed: it lists exactly the window's events.
    assert await _index_equals_feed(redis, "moved")
    # A store whose feed predates the index: the next run of the mover indexes it.
    index = ChangeFeed(redis, "moved").index
    await redis.delete(index.marker)
    await mover(redis, "moved", archive, Clock(START + timedelta(days=SMALL.days))).run()
    assert await index.built() and await _index_equals_feed(redis, "moved")
    # The plan's events about one subject across the boundary, as the unmoved store has them.
    subject = everything[0].subject
    assert await moved.changes(subject=subject, limit=10**6) == await plain.changes(
        subject=subject, limit=10**6
    )

    # A range that straddles the boundary, and paging by id across it.
    since, until = boundary - timedelta(hours=30), boundary + timedelta(hours=5)
    assert await moved.changes(since=since, until=until, limit=10**6) == await plain.changes(
        since=since, until=until, limit=10**6
    )
    page = await moved.changes(after=everything[10].id, limit=50)
    assert page == everything[11:61]

    # "As of": in the archive, at the boundary, in the window.
    for hours in (1, 25, 49, 61, 24 * 5 - 1, 24 * 5, 24 * 5 + 1, 24 * 7 + 3):
        moment = START + timedelta(hours=hours)
        expected = await plain.plans(PlanFilter(), moment)
        assert await moved.plans(PlanFilter(), moment) == expected, hours
    assert await moved.plans(PlanFilter(), START - timedelta(days=1)) == []

    # Intervals: stock and prices.
    assert await moved.stock_intervals() == await plain.stock_intervals()

    def key(row: PriceInterval) -> tuple[str, str, str, datetime]:
        return (row.plan, row.region, row.price_kind, row.valid_from)

    moved_prices = sorted(await moved.price_intervals(), key=key)
    assert moved_prices == sorted(await plain.price_intervals(), key=key)
    assert any(row.valid_to is not None for row in moved_prices)  # changes happened
    window = (boundary - timedelta(days=2), boundary + timedelta(days=1))
    assert await moved.stock_intervals(*window) == await plain.stock_intervals(*window)
    some = (await plain.stock_intervals())[0]
    assert await moved.stock_share(some.plan, some.region, *window) == await plain.stock_share(
        some.plan, some.region, *window
    )


async def test_a_killed_move_leaves_redis_unchanged_and_the_next_run_resumes(
    redis: Redis, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bench.history_sim import SimulationSpec, simulate

    spec = SimulationSpec(days=5, start=START, price_changes_per_day=3)
    await simulate(redis, "moved", spec)
    await simulate(redis, "plain", spec)
    archive = open_archive(str(tmp_path / "archive"))
    clock = Clock(START + timedelta(days=5, hours=2))

    async def killed(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt  # as if the process died between the files and the commit

    with monkeypatch.context() as patch:
        patch.setattr(HistoryMover, "_commit", killed)
        with pytest.raises(KeyboardInterrupt):
            await mover(redis, "moved", archive, clock, days=2).run()
    assert await Window(redis, "moved").boundary() is None
    orphans = archive.list_dir("changes/month=2025-01")
    assert len(orphans) == 1  # written, never committed, read by nobody
    assert await history(redis, "moved", archive).changes(limit=10**6) == await history(
        redis, "plain", None
    ).changes(limit=10**6)
    assert not await redis.exists("moved:history:lock")  # released on the way out

    summary = await mover(redis, "moved", archive, clock, days=2).run()
    assert [day.day for day in summary.moved] == ["2025-01-30", "2025-01-31", "2025-02-01"]
    assert summary.orphans_deleted >= 1
    assert orphans[0] not in archive.list_dir("changes/month=2025-01")
    moved, plain = history(redis, "moved", archive), history(redis, "plain", None)
    assert await moved.changes(limit=10**6) == await plain.changes(limit=10**6)
    assert await moved.stock_intervals() == await plain.stock_intervals()
    moment = START + timedelta(days=1, hours=7)
    assert await moved.plans(PlanFilter(), moment) == await plain.plans(PlanFilter(), moment)
    # A second run has nothing left to move.
    assert (await mover(redis, "moved", archive, clock, days=2).run()).moved == []


async def test_one_mover_at_a_time(redis: Redis, tmp_path: Path) -> None:
    from bench.history_sim import SimulationSpec, simulate

    await simulate(redis, "vs", SimulationSpec(days=3, start=START))
    archive = open_archive(str(tmp_path))
    clock = Clock(START + timedelta(days=3, hours=2))
    await redis.set("vs:history:lock", "someone else", px=60_000)
    summary = await mover(redis, "vs", archive, clock, days=1).run()
    assert summary.moved == [] and summary.skipped
    assert await redis.get("vs:history:lock") == b"someone else"


async def test_a_corrupt_or_missing_archive_file_is_named_in_the_error(
    redis: Redis, tmp_path: Path
) -> None:
    from bench.history_sim import SimulationSpec, simulate

    await simulate(redis, "vs", SimulationSpec(days=4, start=START))
    archive = open_archive(str(tmp_path))
    clock = Clock(START + timedelta(days=4, hours=2))
    await mover(redis, "vs", archive, clock, days=2).run()
    files = await Window(redis, "vs", archive).day(START)
    assert files is not None
    broken = tmp_path / files.files["stock_checkpoints"]
    broken.write_bytes(b"not parquet at all")
    reader = history(redis, "vs", open_archive(str(tmp_path)))  # a fresh cache
    with pytest.raises(ArchiveError, match=r"stock_checkpoints/.*unreadable"):
        await reader.plans(PlanFilter(), START + timedelta(hours=3))
    broken.unlink()
    reader = history(redis, "vs", open_archive(str(tmp_path)))
    with pytest.raises(ArchiveError, match=r"stock_checkpoints/.* is missing"):
        await reader.plans(PlanFilter(), START + timedelta(hours=3))
    # The window still answers, and the next move goes on.
    assert await reader.plans(PlanFilter(), START + timedelta(days=3, hours=1))
    clock.now += timedelta(days=1)
    assert [day.day for day in (await mover(redis, "vs", archive, clock, days=2).run()).moved] == [
        "2025-02-01"
    ]
