"""Benchmark: one check-health run over many endpoints on loopback.

A target server in its own process answers every path after a fixed delay (default 50 ms).
The benchmark measures, in the same run:

* ``ideal``: ceil(endpoints / concurrency) x delay, what perfect scheduling would take;
* ``raw``: the same requests from a bare aiohttp client with the same concurrency and fresh
  connections, recording nothing (what the machine and aiohttp can do);
* ``job``: ``check_endpoint_health`` itself: due computation, probes, condition checks, and one
  WATCH/MULTI per endpoint into Redis (an embedded redis-server on a unix socket, as in
  production), each run starting with no health data so that every endpoint is due.

It prints each figure (median of ``--repeat`` runs) and the ratios job/ideal (target <= 1.5)
and job/raw. Run from the repository root:

    python3 -m hatch run python bench/health_checks.py [--endpoints 1000] [--concurrency 20]
"""

from __future__ import annotations

import argparse
import asyncio
import math
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from aiohttp import web
from redis.asyncio import Redis

from vultr_scraper_core.config import (
    ClientConfig,
    Config,
    EndpointConfig,
    HealthConfig,
    ScheduleConfig,
    SchedulesConfig,
    Secrets,
)
from vultr_scraper_core.embedded_redis import EmbeddedRedis
from vultr_scraper_core.http import HttpClient, create_session
from vultr_scraper_jobs.context import make_context
from vultr_scraper_jobs.health import check_endpoint_health, probe_session

TARGET = 1.5


def serve(delay: float) -> None:
    """The target: every path answers 200 "ok" after ``delay`` seconds. Prints its port."""

    async def handle(request: web.Request) -> web.Response:
        await asyncio.sleep(delay)
        return web.Response(text="ok")

    async def main() -> None:
        app = web.Application()
        app.router.add_get("/{tail:.*}", handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, backlog=4096)
        await site.start()
        sockets = getattr(site._server, "sockets", None)
        assert sockets
        print(sockets[0].getsockname()[1], flush=True)
        await asyncio.Event().wait()

    asyncio.run(main())


def config_for(port: int, endpoints: int, concurrency: int) -> Config:
    return Config(
        client=ClientConfig(rate_limit=0),
        health=HealthConfig(
            check_vultr_api=False,
            concurrency=concurrency,
            endpoints=[
                EndpointConfig(
                    name=f"e{i:04d}",
                    url=f"http://127.0.0.1:{port}/e{i}",
                    body_contains="ok",
                    max_latency_ms=5000,
                )
                for i in range(endpoints)
            ],
        ),
        schedules=SchedulesConfig(check_health=ScheduleConfig(timeout=600.0)),
    )


async def raw_run(config: Config) -> tuple[float, float]:
    """The same requests from a bare client: (wall seconds, CPU seconds of this process)."""
    urls = [endpoint.url for endpoint in config.health.endpoints]
    cpu = time.process_time()
    started = time.perf_counter()
    async with probe_session(config) as session:

        async def worker() -> None:
            while urls:
                url = urls.pop()
                async with session.get(url) as response:
                    await response.read()

        await asyncio.gather(*(worker() for _ in range(config.health.concurrency)))
    return time.perf_counter() - started, time.process_time() - cpu


async def job_run(config: Config, redis: Redis) -> tuple[float, float]:
    """One check-health run with every endpoint due: (wall seconds, CPU seconds)."""
    await redis.flushdb()
    async with create_session(config.client) as session:
        ctx = make_context(
            config=config, secrets=Secrets(), redis=redis, http=HttpClient(session, config.client)
        )
        cpu = time.process_time()
        started = time.perf_counter()
        result = await check_endpoint_health(ctx)
        elapsed = time.perf_counter() - started
        cpu = time.process_time() - cpu
    expected = len(config.health.endpoints)
    if result["checked"] != expected or result["failing"]:
        raise SystemExit(f"unexpected job result: checked {result['checked']}, {result}")
    return elapsed, cpu


async def measure(args: argparse.Namespace, port: int, redis_url: str) -> dict[str, float]:
    config = config_for(port, args.endpoints, args.concurrency)
    redis = Redis.from_url(redis_url)
    try:
        raws, jobs = [], []
        await raw_run(config)  # warm-up: imports, first connections
        for _ in range(args.repeat):
            raws.append(await raw_run(config))
            jobs.append(await job_run(config, redis))
        await redis.flushdb()
    finally:
        await redis.aclose()
    if args.verbose:
        runs = {"raw": [round(x, 2) for x, _ in raws], "job": [round(x, 2) for x, _ in jobs]}
        print(f"  concurrency {args.concurrency}: every run {runs}")
    return {
        "ideal": math.ceil(args.endpoints / args.concurrency) * args.delay,
        "raw": statistics.median(wall for wall, _ in raws),
        "job": statistics.median(wall for wall, _ in jobs),
        "raw_cpu": statistics.median(cpu for _, cpu in raws),
        "job_cpu": statistics.median(cpu for _, cpu in jobs),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--endpoints", type=int, default=1000)
    parser.add_argument(
        "--concurrency",
        type=int,
        nargs="+",
        default=[HealthConfig().concurrency],
        help="one or more values (default: the default of health.concurrency)",
    )
    parser.add_argument("--delay", type=float, default=0.05, help="server delay per request (s)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--verbose", action="store_true", help="print every run")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.delay)
        return
    server = subprocess.Popen(
        [sys.executable, __file__, "--serve", "--delay", str(args.delay)],
        stdout=subprocess.PIPE,
        text=True,
    )
    verdicts = []
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline())
        with tempfile.TemporaryDirectory(prefix="vs-bench-") as folder:
            with EmbeddedRedis(Path(folder), persistent=False) as redis_server:
                print(
                    f"{args.endpoints} endpoints, server delay {args.delay * 1000:.0f} ms, "
                    f"median of {args.repeat} runs; cpu = CPU seconds of the checking process"
                )
                print(
                    f"{'concurrency':>11}  {'ideal':>6}  {'raw':>6}  {'job':>6}  {'job/ideal':>9}"
                    f"  {'job/raw':>7}  {'raw cpu':>7}  {'job cpu':>7}"
                )
                for concurrency in args.concurrency:
                    run = argparse.Namespace(**{**vars(args), "concurrency": concurrency})
                    figures = asyncio.run(measure(run, port, redis_server.url))
                    ratio = figures["job"] / figures["ideal"]
                    verdicts.append((concurrency, ratio))
                    print(
                        f"{concurrency:>11}  {figures['ideal']:>5.2f}s  {figures['raw']:>5.2f}s  "
                        f"{figures['job']:>5.2f}s  {ratio:>9.2f}  "
                        f"{figures['job'] / figures['raw']:>7.2f}  "
                        f"{figures['raw_cpu']:>6.2f}s  {figures['job_cpu']:>6.2f}s"
                    )
    finally:
        server.terminate()
        server.wait(timeout=10)
    for concurrency, ratio in verdicts:
        verdict = "OK" if ratio <= TARGET else "above target"
        print(f"concurrency {concurrency}: job/ideal {ratio:.2f} (target <= {TARGET}): {verdict}")


if __name__ == "__main__":
    main()
