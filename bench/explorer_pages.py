"""Server time of the explorer's pages and API routes as a ratio to ``/healthz``.

Simulated history (``bench.history_sim``, through the project's own write paths, ending now)
at ``--scale`` x today's catalogue goes into a private redis-server; the API runs in this
process over loopback. Each route is requested ``--rounds`` times after one warm-up; the
median time is printed in ms and as a ratio to the median of ``/healthz`` measured in the
same run, with the time of the warm-up ("first": caches per catalogue revision, archive files
read from disk). ``--window DAYS`` runs the history job after each simulated day, so that the
pages read the archive too; ``--store`` saves (or loads) the store and its archive;
``--save DIR`` keeps each page's body, to compare two versions of the code.

    PYTHONPATH=. python3 -m hatch run python bench/explorer_pages.py --days 7 --scale 1
    PYTHONPATH=. python3 -m hatch run python bench/explorer_pages.py --days 365 --scale 10 \
        --window 30 --store /tmp/explorer-10x-year
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import pstats
import shutil
import statistics
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
from loguru import logger
from tests.redis_server import RedisServer
from tests.worker.api_harness import running_api

from bench.history_sim import SimulationSpec, simulate
from vultr_scraper_core.config.schema import HistoryConfig
from vultr_scraper_core.history.files import open_archive
from vultr_scraper_core.history.mover import HistoryMover
from vultr_scraper_core.history.window import Window
from vultr_scraper_core.store.changes import ChangeFeed

SCAN = False  # --scan
FIRST: dict[str, float] = {}


async def _median(
    session: aiohttp.ClientSession, url: str, rounds: int, save: Path | None = None
) -> float:
    """The median of ``rounds`` requests after one warm-up (kept in ``FIRST[url]``: caches
    per catalogue revision and archive files read from disk are in it)."""
    times: list[float] = []
    for index in range(rounds + 1):
        started = time.perf_counter()
        async with session.get(url) as response:
            body = await response.read()
            assert response.status == 200, (url, response.status)
        if index:  # the first is a warm-up
            times.append(time.perf_counter() - started)
        else:
            FIRST[url] = time.perf_counter() - started
    if save is not None:  # the last body, to compare the pages of two versions of the code
        _write(save, url, body)
    return statistics.median(times)


def _write(save: Path, url: str, body: bytes) -> None:
    save.mkdir(parents=True, exist_ok=True)
    name = url.partition("//")[2].partition("/")[2].replace("/", "_").replace("?", "_")
    (save / f"{name or 'index'}.out").write_bytes(body)


def _keep(dump: Path, store: Path, about: str) -> None:
    store.mkdir(parents=True, exist_ok=True)
    shutil.copy(dump, store / "dump.rdb")
    (store / "about.json").write_text(json.dumps(about))


async def _fill(server: RedisServer, options: argparse.Namespace, archive_dir: Path) -> None:
    """Simulate into ``server``, or load the store saved by an earlier run (``--store``: the
    simulation at 10x takes minutes; a saved store ages by the time since it was written).
    With ``--window``, the history job moves every day older than the window into the
    archive in ``archive_dir`` after each simulated day, and checks are scaled down as in
    ``bench/history_window.py`` (``--check-minutes``; every pair seen in stock at first)."""
    from redis.asyncio import Redis

    store: Path | None = options.store
    days, scale, window = options.days, options.scale, options.window
    redis = Redis.from_url(server.url)
    try:
        if store is not None and (store / "dump.rdb").exists():
            print(f"loaded {json.loads((store / 'about.json').read_text())}")
            await _index(redis)
            return
        start = datetime.now(UTC) - timedelta(days=days)
        if window:
            spec = SimulationSpec(
                days=days,
                scale=scale,
                start=start,
                check_minutes=options.check_minutes,
                flip_share=options.flip_share,
                checks_per_commit=max(1, 60 // options.check_minutes),
                all_pairs_seen=True,
            )
        else:
            spec = SimulationSpec(days=days, scale=scale, start=start)
        archive = open_archive(str(archive_dir))
        day_count = 0

        async def after_day(now: datetime) -> None:
            nonlocal day_count
            day_count += 1
            clock_now = start + timedelta(days=day_count, hours=2)
            mover = HistoryMover(
                redis, "vs", archive, window=timedelta(days=window), clock=lambda: clock_now
            )
            await mover.run(max_days=2)
            if day_count % 30 == 0:
                print(f"[day {day_count}] {time.perf_counter() - started:.0f} s", flush=True)

        started = time.perf_counter()
        sim = await simulate(redis, "vs", spec, on_day=after_day if window else None)
        boundary = await Window(redis, "vs").boundary()
        about = (
            f"simulated {days} days at {scale}x: {sim.plans} plans, {sim.regions} regions, "
            f"{sim.pairs} pairs, {sim.flips} flips, {sim.events} events, ending {sim.end:%F %T}"
            + (
                f"; checks every {options.check_minutes} min, {window}-day window, "
                f"archived up to {boundary:%F}"
                if window and boundary
                else ""
            )
        )
        print(f"{about} in {time.perf_counter() - started:.0f} s")
        if store is not None:
            await redis.save()
            _keep(server.directory / "dump.rdb", store, about)
    finally:
        await redis.aclose()


async def _index(redis: Any) -> None:
    """Index the change feed by subject if the store was saved before the index existed, as
    the history job does on its first run (``--scan`` skips it: the feed is scanned)."""
    if SCAN:
        return
    started = time.perf_counter()
    built = await ChangeFeed(redis, "vs").index.build()
    if built is not None:
        print(f"indexed {built} events by subject in {time.perf_counter() - started:.1f} s")


async def main(options: argparse.Namespace) -> None:
    rounds, store, profile, save = options.rounds, options.store, options.profile, options.save
    logger.remove()
    server = RedisServer()
    archive_dir = (store if store is not None else server.directory) / "archive"
    if store is not None and (store / "dump.rdb").exists():
        shutil.copy(store / "dump.rdb", server.directory / "dump.rdb")
    _start(server)
    try:
        from redis.asyncio import Redis

        await _fill(server, options, archive_dir)
        redis = Redis.from_url(server.url)
        # The worst cases, the same on every run over a store: the plan stocked in the most
        # regions and the region with the most plans stocked (ties by name).
        plans: Counter[str] = Counter()
        regions: Counter[str] = Counter()
        for pair in await redis.hkeys("vs:stock:intervals"):
            plan, _, region = pair.decode().rpartition("@")
            plans[plan] += 1
            regions[region] += 1
        plan = max(plans, key=lambda name: (plans[name], name))
        region = max(regions, key=lambda name: (regions[name], name))
        failed_job, scheduled_job = await _job_records(redis)
        await redis.aclose()
        routes = [
            "/",
            "/plans",
            "/plans?view=gpu",
            f"/plans/{plan}",
            f"/regions/{region}",
            "/changes",
            f"/api/v1/plans/{plan}",
            f"/api/v1/plans/{plan}/history",
            f"/api/v1/stock/stats?plan={plan}",
            f"/jobs/{failed_job}",
            f"/jobs/{scheduled_job}",
        ]
        # A generous Redis deadline: a slow route is measured, not turned into a 503.
        async with (
            running_api(
                server.url, history=HistoryConfig(archive=str(archive_dir)), redis_timeout=60.0
            ) as api,
            aiohttp.ClientSession() as session,
        ):
            health = await _median_any(session, api.url + "/healthz", rounds)
            print(f"{'route':40} {'ms':>8} {'x healthz':>10} {'first, ms':>10}")
            print(f"{'/healthz':40} {health * 1000:8.1f} {1.0:10.1f}")
            for route in routes:
                took = await _median(session, api.url + route, rounds, save)
                first = FIRST[api.url + route] * 1000
                print(f"{route[:40]:40} {took * 1000:8.1f} {took / health:10.1f} {first:10.1f}")
            for route in routes if profile else []:
                profiler = cProfile.Profile()
                profiler.enable()
                await _median(session, api.url + route, rounds)
                profiler.disable()
                print(f"-- {route}: {rounds + 1} requests")
                pstats.Stats(profiler).sort_stats("cumulative").print_stats(profile)
    finally:
        server.cleanup()


async def _job_records(redis: Any) -> tuple[str, str]:
    """A full run history (the most kept per job, for each scheduled job) and a job that failed
    after three tries: the ids of that failed job and of a scheduled run, for the job page."""
    from vultr_scraper_worker.records.failed import FailedJob, FailedJobs
    from vultr_scraper_worker.records.runs import RUNS_PER_JOB, JobHistory, RunRecord

    history = JobHistory(redis, "vs")
    now = time.time()
    functions = ["scrape-catalog", "scrape-availability", "check-health", "dispatch-alerts"]
    runs = [
        RunRecord(
            function=function,
            job_id=f"{function}:{int((now - n * 300) * 1000)}",
            job_try=1,
            start=now - n * 300 - 2.0,
            end=now - n * 300,
            duration=2.0,
            outcome="success",
        )
        for function in functions
        for n in reversed(range(RUNS_PER_JOB))
    ]
    await history.record_many(runs)
    failed_id = f"scrape-catalog:{int((now - 30) * 1000)}"
    tries = [
        RunRecord(
            function="scrape-catalog",
            job_id=failed_id,
            job_try=attempt,
            start=now - 40 + attempt * 3,
            end=now - 39 + attempt * 3,
            duration=1.0,
            outcome="failed" if attempt == 3 else "retry",
            error="HTTP 503 from the API",
        )
        for attempt in (1, 2, 3)
    ]
    await history.record_many(tries)
    await FailedJobs(redis, "vs").add(
        FailedJob(
            id=failed_id,
            function="scrape-catalog",
            error="HTTP 503 from the API",
            error_type="TransientHttpError",
            tries=3,
            failed_at=now - 30,
        )
    )
    return failed_id, runs[len(runs) // 2].job_id


def _start(server: RedisServer) -> None:
    """Start ``server``, waiting as long as loading a saved 10x store takes (the tests'
    harness gives up after 10 s)."""
    try:
        server.start()
    except RuntimeError:
        deadline = time.monotonic() + 600
        while not server.ping():
            if server.process is None or server.process.poll() is not None:
                raise
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


async def _median_any(session: aiohttp.ClientSession, url: str, rounds: int) -> float:
    """Like ``_median`` but any status (``/healthz`` says 503 when no scrape job has run)."""
    times: list[float] = []
    for index in range(rounds + 1):
        started = time.perf_counter()
        async with session.get(url) as response:
            await response.read()
        if index:
            times.append(time.perf_counter() - started)
    return statistics.median(times)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--scale", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--store", type=Path, help="directory to save the simulated store in, or load it from"
    )
    parser.add_argument(
        "--profile",
        type=int,
        default=0,
        metavar="N",
        help="then profile each route (cProfile, whole process) and print its top N functions",
    )
    parser.add_argument(
        "--window",
        type=int,
        default=0,
        metavar="DAYS",
        help="run the history job after each simulated day with this window (0: never)",
    )
    parser.add_argument("--check-minutes", type=int, default=360)
    parser.add_argument("--flip-share", type=float, default=0.003)
    parser.add_argument(
        "--save", type=Path, help="write each route's last response body into this directory"
    )
    parser.add_argument(
        "--scan",
        action="store_true",
        help="leave a saved store's change feed unindexed (as before the index by subject)",
    )
    options = parser.parse_args()
    SCAN = options.scan
    asyncio.run(main(options))
