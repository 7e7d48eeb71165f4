"""A real ``vultr-scraper run move-history`` process SIGKILLed in the middle of a move (inside a
day's file writes, between a day's files and its commit, between a month's manifest and its
commit) loses nothing and counts nothing twice, and the next run resumes: after every kill and
at the end, the history read through the store and the archive equals that of a store that
kept everything in Redis. The process pauses at each point through the mover's test hook
(``VULTR_SCRAPER_TEST_HISTORY_PAUSE``), so the kill lands exactly there."""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from bench.history_sim import SimulationSpec, simulate
from redis.asyncio import Redis

from tests.history.harness import history
from tests.redis_server import env_without_project_vars
from tests.worker.processes import ROOT, WAIT, cli
from vultr_scraper_core.history.files import open_archive
from vultr_scraper_core.history.mover import LOCK_TTL_MS, PAUSE_VARIABLE
from vultr_scraper_core.history.tables import PriceInterval
from vultr_scraper_core.history.window import Window, day_name
from vultr_scraper_core.store.queries import PlanFilter

pytestmark = pytest.mark.slow

# Long enough that the moved days always include a month's last day, whatever today is, so
# that a month is compacted too.
DAYS = 36
WINDOW_DAYS = 3
LOCK = "vs:history:lock"


def _env(redis_url: str, home: Path, **extra: str) -> dict[str, str]:
    env = env_without_project_vars()
    env.update(
        {
            "VULTR_SCRAPER__REDIS__URL": redis_url,
            "VULTR_SCRAPER__PATHS__STATE_DIR": str(home / "state"),
            "VULTR_SCRAPER__HTTP__LISTEN": "",
            "VULTR_SCRAPER__HISTORY__WINDOW_DAYS": str(WINDOW_DAYS),
            "VULTR_SCRAPER__HISTORY__MAX_DAYS_PER_RUN": "100",
            "VULTR_SCRAPER__HISTORY__ARCHIVE": str(home / "archive"),
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(extra)
    return env


async def _kill_at(env: dict[str, str], stage: str) -> str:
    """Start a mover that pauses at ``stage`` ("write:1", ...), SIGKILL it there; its stderr."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "vultr_scraper_worker",
        "run",
        "move-history",
        "-q",
        cwd=ROOT,
        env={**env, PAUSE_VARIABLE: stage},
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stderr is not None
    seen: list[str] = []
    try:
        async with asyncio.timeout(WAIT * 2):
            while True:
                line = (await process.stderr.readline()).decode()
                if not line:
                    raise AssertionError(f"the mover ended before pausing at {stage}: {seen}")
                seen.append(line)
                if line.startswith("history mover paused at"):
                    break
    finally:
        process.kill()  # SIGKILL: no finally block, no lock release, nothing flushed
        await process.wait()
    assert process.returncode == -9
    return "".join(seen)


def _files(archive_dir: Path) -> set[str]:
    return {str(path.relative_to(archive_dir)) for path in archive_dir.rglob("*") if path.is_file()}


async def _listed(window: Window) -> set[str]:
    days = {path for entry in await window.days() for path in entry.files.values()}
    return days | set((await window.months()).values())


async def _same_history_as_the_reference(redis: Redis, archive_dir: Path, start: datetime) -> None:
    moved = history(redis, "vs", open_archive(str(archive_dir)))  # a fresh cache
    plain = history(redis, "plain", None)
    changes = await moved.changes(limit=10**6)
    assert changes == await plain.changes(limit=10**6)
    assert len({event.id for event in changes}) == len(changes)
    assert await moved.stock_intervals() == await plain.stock_intervals()

    def key(row: PriceInterval) -> tuple[str, str, str, datetime]:
        return (row.plan, row.region, row.price_kind, row.valid_from)

    assert sorted(await moved.price_intervals(), key=key) == sorted(
        await plain.price_intervals(), key=key
    )
    for hours in (5, 24 * 9 + 13, 24 * (DAYS - 5) + 1, 24 * (DAYS - 1) + 2):
        moment = start + timedelta(hours=hours)
        assert await moved.plans(PlanFilter(), moment) == await plain.plans(PlanFilter(), moment)


async def _as_if_the_lock_expired(redis: Redis) -> None:
    """A killed mover leaves its lock; it expires within LOCK_TTL_MS (15 minutes), before the
    next hourly run. Until then another mover stays out; the test lets that time pass."""
    remaining = await redis.pttl(LOCK)
    assert 0 < remaining <= LOCK_TTL_MS
    await redis.delete(LOCK)


async def test_a_killed_mover_process_loses_nothing_and_the_next_run_resumes(
    redis: Redis, redis_url: str, tmp_path: Path
) -> None:
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    start = today - timedelta(days=DAYS)
    spec = SimulationSpec(days=DAYS, start=start, check_minutes=60, price_changes_per_day=3)
    await simulate(redis, "vs", spec)  # the store the CLI moves (the default key prefix)
    await simulate(redis, "plain", spec)  # the same history, never moved: the reference
    env = _env(redis_url, tmp_path)
    archive_dir = tmp_path / "archive"
    window = Window(redis, "vs", open_archive(str(archive_dir)))
    to_move = [day_name(start + timedelta(days=n)) for n in range(DAYS - WINDOW_DAYS)]

    # 1. Killed while writing the first day's files: one file written, nothing committed.
    await _kill_at(env, "write:1")
    assert await window.boundary() is None
    assert len(_files(archive_dir)) == 1 and await _listed(window) == set()
    await _same_history_as_the_reference(redis, archive_dir, start)

    # Until the killed mover's lock expires, another run stays out rather than race it.
    skipped = await cli(env, "run", "move-history", "-q")
    assert skipped.returncode == 0, skipped.stderr
    assert json.loads(skipped.stdout)["skipped"]
    await _as_if_the_lock_expired(redis)

    # 2. Killed after the first day's commit, with the second day's files written.
    await _kill_at(env, "commit:2")
    assert await window.boundary() == start + timedelta(days=1)
    assert [entry.day for entry in await window.days()] == to_move[:1]
    assert _files(archive_dir) - await _listed(window)  # the second day's orphans
    await _same_history_as_the_reference(redis, archive_dir, start)
    await _as_if_the_lock_expired(redis)

    # 3. Killed after every day moved, with a month's manifest written but not committed.
    await _kill_at(env, "compact:1")
    assert await window.boundary() == today - timedelta(days=WINDOW_DAYS)
    assert await window.months() == {}
    assert [entry.day for entry in await window.days()] == to_move
    assert any(path.startswith("manifests/") for path in _files(archive_dir))
    await _same_history_as_the_reference(redis, archive_dir, start)
    await _as_if_the_lock_expired(redis)

    # 4. The next run finishes the compaction; then nothing is left to do.
    result = await cli(env, "run", "move-history", "-q")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["days"] == []
    months = await window.months()
    assert months and all(month < day_name(today)[:7] for month in months)
    assert [entry.day for entry in await window.days()] == to_move  # each day once, in order
    assert _files(archive_dir) == await _listed(window)  # no orphan, no temporary file left
    await _same_history_as_the_reference(redis, archive_dir, start)
    again = await cli(env, "run", "move-history", "-q")
    assert json.loads(again.stdout)["days"] == [] and not await redis.exists(LOCK)
    assert _files(archive_dir) == await _listed(window)
