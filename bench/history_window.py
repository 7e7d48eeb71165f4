"""Benchmark: Redis memory, archive size, "as of" cost, export rate and move time as history
grows, at one catalogue scale per run.

Simulates ``--days`` of history (``bench.history_sim``, through the stores' and jobs' own write
paths) at ``--scale`` x today's catalogue into a private redis-server, running the history job
(``HistoryMover``) after every simulated day with a ``--window``-day window, and prints, in one
run, at the day the window fills and at each of ``--points`` (days):

* Redis ``used_memory`` and its ratio to the memory when the window filled (target <= 1.5);
* the archive's size on disk;
* ``plans --at`` for a time in the window and one in the archive, as ratios to a plain
  ``plans`` measured right before them (target: within 2x), cold (first read of the archive
  files, as a fresh CLI process sees them) and warm (median of 9 paired rounds, as the API
  sees them);
* the mean time to move one day out of the window since the previous point;

and at the end the export throughput (rows/s) of ``changes`` and ``prices`` over the last
``2 x window`` days (archive and window both).

The simulation is scaled so that a run takes minutes (docs/performance.md says how): stock
checks every ``--check-minutes`` instead of every 5 minutes, with ``--flip-share`` per check.
Every (plan, region) pair is seen in stock in the first hour (``all_pairs_seen``), as the real
check rate sees nearly all of them within a week, so "the window is full" is also "the
per-pair stock state is full" (``--slow-fill``: the old start, half the pairs never seen).

    PYTHONPATH=. python3 -m hatch run python bench/history_window.py --scale 1 --days 1095 \\
        --points 365,1095 --window 30 --check-minutes 360 --flip-share 0.003
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from loguru import logger
from redis.asyncio import Redis
from tests.redis_server import RedisServer

from bench.history_sim import SimulationSpec, simulate
from vultr_scraper_core.history.export import chunks, export_table
from vultr_scraper_core.history.files import Archive, open_archive
from vultr_scraper_core.history.mover import HistoryMover
from vultr_scraper_core.history.query import History
from vultr_scraper_core.store.queries import PlanFilter


async def _once(call: Callable[[], Awaitable[Any]]) -> float:
    began = time.perf_counter()
    await call()
    return time.perf_counter() - began


async def _point(
    label: str,
    redis: Redis,
    archive_dir: Path,
    now: datetime,
    start: datetime,
    full_memory: int | None,
    move_times: list[float],
) -> int:
    memory = int((await redis.info("memory"))["used_memory"])
    archive = open_archive(str(archive_dir))  # a fresh cache: the cold figures are real reads
    history = History(redis, "vs", archive)
    in_window = now - timedelta(hours=20)
    in_archive = start + (now - start) / 3 + timedelta(hours=7)
    plain_cold = await _once(lambda: history.plans(PlanFilter()))
    window_cold = await _once(lambda: history.plans(PlanFilter(), in_window))
    archive_cold = await _once(lambda: history.plans(PlanFilter(), in_archive))
    # Warm: rounds of (plain, window, archive), each ratio taken within its round (the
    # machine's load shifts between rounds), median over the rounds.
    window_ratios, archive_ratios, plains = [], [], []
    for _ in range(9):
        plain = await _once(lambda: history.plans(PlanFilter()))
        window_ratios.append(await _once(lambda: history.plans(PlanFilter(), in_window)) / plain)
        archive_ratios.append(await _once(lambda: history.plans(PlanFilter(), in_archive)) / plain)
        plains.append(plain)
    plain = statistics.median(plains)
    window = statistics.median(window_ratios) * plain
    archived = statistics.median(archive_ratios) * plain
    ratio = f", {memory / full_memory:.2f}x the window-full figure" if full_memory else ""
    moved = (
        f"; move one day: mean {statistics.mean(move_times) * 1000:.0f} ms over "
        f"{len(move_times)} days"
        if move_times
        else ""
    )
    print(f"[{label}] redis used_memory {memory / 2**20:.1f} MiB{ratio}")
    print(f"[{label}] largest keys (MEMORY USAGE): {await _largest_keys(redis)}")
    print(f"[{label}] archive on disk {_size(archive) / 2**20:.1f} MiB{moved}")
    print(
        f"[{label}] plans {plain * 1000:.1f} ms warm ({plain_cold * 1000:.1f} ms cold);"
        f" --at in window {window / plain:.2f}x warm, {window_cold / plain_cold:.2f}x cold;"
        f" --at in archive {archived / plain:.2f}x warm, {archive_cold / plain_cold:.2f}x cold"
    )
    sys.stdout.flush()
    return memory


async def _largest_keys(redis: Redis, count: int = 8) -> str:
    sizes: list[tuple[int, str]] = []
    async for key in redis.scan_iter(count=1000):
        used = await redis.memory_usage(key, samples=0)
        sizes.append((int(used or 0), key.decode()))
    sizes.sort(reverse=True)
    return ", ".join(f"{key} {used / 2**20:.2f}" for used, key in sizes[:count]) + " (MiB)"


def _size(archive: Archive) -> int:
    return archive.size()


async def main(arguments: argparse.Namespace) -> None:
    logger.remove()  # the mover logs every day it moves
    spec = SimulationSpec(
        days=arguments.days,
        scale=arguments.scale,
        check_minutes=arguments.check_minutes,
        flip_share=arguments.flip_share,
        checks_per_commit=max(1, 60 // arguments.check_minutes),
        all_pairs_seen=not arguments.slow_fill,
    )
    points = sorted({int(day) for day in arguments.points.split(",") if day} | {arguments.days})
    window_days = arguments.window
    with RedisServer() as server, tempfile.TemporaryDirectory() as folder:
        redis = Redis.from_url(server.url)
        archive_dir = Path(folder) / "archive"
        archive = open_archive(str(archive_dir))
        move_times: list[float] = []
        full_memory: int | None = None
        day_count = 0
        began = time.perf_counter()

        async def after_day(now: datetime) -> None:
            nonlocal day_count, full_memory
            day_count += 1
            clock_now = spec.start + timedelta(days=day_count, hours=2)
            mover = HistoryMover(
                redis, "vs", archive, window=timedelta(days=window_days), clock=lambda: clock_now
            )
            summary = await mover.run(max_days=2)
            move_times.extend(day.seconds for day in summary.moved)
            if day_count == window_days + 1:
                full_memory = await _point(
                    f"day {day_count}, window full", redis, archive_dir, now, spec.start,
                    None, [],
                )  # fmt: skip
            elif day_count in points:
                await _point(
                    f"day {day_count}", redis, archive_dir, now, spec.start, full_memory,
                    move_times,
                )  # fmt: skip
                move_times.clear()
                elapsed = time.perf_counter() - began
                print(f"[day {day_count}] simulated in {elapsed:.0f} s so far")
            elif arguments.memory_every and day_count % arguments.memory_every == 0:
                memory = int((await redis.info("memory"))["used_memory"])
                ratio = f" ({memory / full_memory:.2f}x)" if full_memory else ""
                print(
                    f"[day {day_count}] redis used_memory {memory / 2**20:.1f} MiB{ratio},"
                    f" {time.perf_counter() - began:.0f} s so far",
                    flush=True,
                )

        stats = await simulate(redis, "vs", spec, on_day=after_day)
        print(
            f"simulated {arguments.days} days at {arguments.scale}x: {stats.plans} plans,"
            f" {stats.regions} regions, {stats.pairs} pairs, {stats.checks} checks,"
            f" {stats.flips} flips, {stats.events} events"
        )
        history = History(redis, "vs", open_archive(str(archive_dir)))
        since = stats.end - timedelta(days=2 * window_days)
        for what in ("changes", "prices"):
            export_began = time.perf_counter()
            table = await export_table(history, what, since=since)
            size = sum(len(chunk) for chunk in chunks(table, "csv"))
            seconds = time.perf_counter() - export_began
            print(
                f"export {what} csv, last {2 * window_days} days: {table.num_rows} rows,"
                f" {table.num_rows / seconds:,.0f} rows/s ({size / 2**20:.1f} MiB)"
            )
        await redis.aclose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=120)
    parser.add_argument("--points", default="", help="days to measure at, e.g. 365,1095")
    parser.add_argument("--window", type=int, default=30)
    parser.add_argument(
        "--memory-every", type=int, default=0, help="also print used_memory every N days"
    )
    parser.add_argument("--scale", type=int, default=1)
    parser.add_argument("--check-minutes", type=int, default=360)
    parser.add_argument("--flip-share", type=float, default=0.003)
    parser.add_argument(
        "--slow-fill",
        action="store_true",
        help="start with half the pairs never seen in stock (the per-pair stock state then "
        "fills over months at a scaled-down check rate, instead of within days)",
    )
    asyncio.run(main(parser.parse_args()))
