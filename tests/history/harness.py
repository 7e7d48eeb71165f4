"""Shared pieces of the history tests: a controllable clock, a simulated store, comparisons."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.history_sim import SimulationSpec, SimulationStats, simulate
from redis.asyncio import Redis

from vultr_scraper_core.history.files import Archive, open_archive
from vultr_scraper_core.history.mover import HistoryMover, MoveSummary
from vultr_scraper_core.history.query import History

START = datetime(2025, 1, 30, tzinfo=UTC)  # the window rolls over a month's end
SMALL = SimulationSpec(days=8, scale=1, start=START, flip_share=0.003, price_changes_per_day=3)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def mover(redis: Redis, prefix: str, archive: Archive, clock: Clock, days: int = 3) -> HistoryMover:
    return HistoryMover(redis, prefix, archive, window=timedelta(days=days), clock=clock)


async def simulate_twins(
    redis: Redis, archive_dir: Path, spec: SimulationSpec = SMALL, window_days: int = 3
) -> tuple[SimulationStats, list[MoveSummary], Archive]:
    """The same simulated history twice: under ``moved`` with the history job run after every
    simulated day (window ``window_days``), and under ``plain``, never moved."""
    archive = open_archive(str(archive_dir))
    clock = Clock(spec.start)
    summaries: list[MoveSummary] = []

    async def after_day(now: datetime) -> None:
        clock.now = now + timedelta(hours=2)
        summaries.append(await mover(redis, "moved", archive, clock, window_days).run())

    stats = await simulate(redis, "moved", spec, on_day=after_day)
    await simulate(redis, "plain", spec)
    return stats, summaries, archive


def history(redis: Redis, prefix: str, archive: Archive | None) -> History:
    return History(redis, prefix, archive)
