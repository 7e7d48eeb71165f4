"""Benchmark: Redis memory, archive size, "as of" cost and export rate as history grows.

Simulates ``--days`` of history (``bench.history_sim``) at ``--scale`` x today's catalogue into
a private redis-server, running the history job after every simulated day with a
``--window``-day window, and prints, in one run:

* Redis ``used_memory`` when the window has just filled and at the end (ratio; target <= 1.5);
* the archive's size on disk;
* ``plans --at`` in the window and in the archive against a plain ``plans`` (ratios; target
  within 2x), and the mean time to move one day;
* export throughput (rows/s) of ``changes``.

    PYTHONPATH=. python3 -m hatch run python bench/history_window.py --days 120 --window 30
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from redis.asyncio import Redis
from tests.redis_server import RedisServer

from bench.history_sim import SimulationSpec, simulate
from vultr_scraper_core.history.export import chunks, export_table
from vultr_scraper_core.history.files import open_archive
from vultr_scraper_core.history.mover import HistoryMover
from vultr_scraper_core.history.query import History
from vultr_scraper_core.store.queries import PlanFilter


async def _timed(call: object, runs: int = 5) -> float:
    samples = []
    for _ in range(runs):
        began = time.perf_counter()
        await call()  # type: ignore[operator]
        samples.append(time.perf_counter() - began)
    return statistics.median(samples)


async def main(days: int, window: int, scale: int) -> None:
    spec = SimulationSpec(days=days, scale=scale)
    with RedisServer() as server, tempfile.TemporaryDirectory() as folder:
        redis = Redis.from_url(server.url)
        archive = open_archive(str(Path(folder) / "archive"))
        memory: dict[str, int] = {}
        move_times: list[float] = []
        day_count = 0

        async def after_day(now: object) -> None:
            nonlocal day_count
            day_count += 1
            clock_now = spec.start + timedelta(days=day_count, hours=2)
            mover = HistoryMover(
                redis, "vs", archive, window=timedelta(days=window), clock=lambda: clock_now
            )
            summary = await mover.run()
            move_times.extend(day.seconds for day in summary.moved)
            if day_count == window + 1:
                memory["window full"] = int((await redis.info("memory"))["used_memory"])

        stats = await simulate(redis, "vs", spec, on_day=after_day)
        memory["end"] = int((await redis.info("memory"))["used_memory"])
        history = History(redis, "vs", archive)
        plain = await _timed(lambda: history.plans(PlanFilter()))
        in_window = await _timed(lambda: history.plans(PlanFilter(), stats.end - timedelta(days=1)))
        in_archive = await _timed(
            lambda: history.plans(PlanFilter(), spec.start + timedelta(days=days // 3, hours=7))
        )
        began = time.perf_counter()
        table = await export_table(history, "changes")
        size = sum(len(chunk) for chunk in chunks(table, "csv"))
        export_seconds = time.perf_counter() - began
        print(f"simulated {days} days at {scale}x: {stats.plans} plans, {stats.regions} regions,")
        print(f"  {stats.pairs} pairs, {stats.checks} checks, {stats.flips} flips,")
        print(f"  {stats.events} events")
        full = memory.get("window full", memory["end"])
        end = memory["end"]
        print(f"redis used_memory: window full {full / 2**20:.1f} MiB,")
        print(f"  end {end / 2**20:.1f} MiB, ratio {end / full:.2f}")
        print(f"archive on disk: {archive.size() / 2**20:.2f} MiB")
        print(
            f"plans (now) {plain * 1000:.1f} ms; --at in window {in_window / plain:.2f}x;"
            f" --at in archive {in_archive / plain:.2f}x"
        )
        mean_move = statistics.mean(move_times) * 1000
        print(f"move one day: mean {mean_move:.0f} ms over {len(move_times)} days")
        rate = table.num_rows / export_seconds
        print(f"export changes csv: {rate:,.0f} rows/s ({size / 2**20:.1f} MiB)")
        await redis.aclose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--window", type=int, default=14)
    parser.add_argument("--scale", type=int, default=1)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.days, arguments.window, arguments.scale))
