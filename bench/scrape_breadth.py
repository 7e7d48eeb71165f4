"""Benchmark: what the rest of the catalogue costs a catalogue scrape, in requests and CPU.

The scrape job (``scrape_vultr_pricing``, the code the worker runs) is awaited in this process
against a fake Vultr API served from a forked child process (so its CPU is not counted here)
and a private redis-server. The catalogue has today's sizes: 240 plans, 14 metal plans, 33
regions, 51 OS images, and for the rest 150 applications, 4 Kubernetes versions, 12
object-storage clusters, 30 public ISOs and 48 database plans. Two modes, interleaved:

* ``without``: ``catalog.include = []`` and no API key (what the scrape read before);
* ``with``: every collection, and an API key, so database plans are read too.

For each mode, medians of ``--rounds``: the first scrape into an empty Redis (everything is
added: every record written, one event each) and a steady-state scrape of identical data (the
every-15-minutes case: read, parse, diff, nothing written). It prints requests per scrape and
the CPU time of this process (user + system) for each, with ``with / without`` ratios.
Run from the repository root:

    PYTHONPATH=. python3 -m hatch run python bench/scrape_breadth.py [--rounds 7] [--per-page 500]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import statistics
import time
from multiprocessing.connection import Connection
from typing import Any

from loguru import logger
from redis.asyncio import Redis
from tests.fakes.vultr_api import (
    FakeCatalogue,
    FakeVultrAPI,
    make_app,
    make_database_plan,
    make_metal_plan,
    make_plan,
    make_region,
)
from tests.redis_server import RedisServer

from vultr_scraper_core.config import CatalogConfig, ClientConfig, Config, Secrets, VultrConfig
from vultr_scraper_core.http import HttpClient, create_session
from vultr_scraper_jobs.catalog import scrape_vultr_pricing
from vultr_scraper_jobs.context import make_context

KEY = "bench-api-key"


def catalogue() -> FakeCatalogue:
    regions = [f"r{n:02d}" for n in range(33)]
    return FakeCatalogue(
        plans=[
            make_plan(f"vc2-bench-{n}", monthly_cost=5 + n, locations=regions[: 5 + n % 28])
            for n in range(240)
        ],
        metal=[make_metal_plan(f"vbm-bench-{n}", locations=regions[:8]) for n in range(14)],
        regions=[make_region(region, f"City {region}", "US", "Europe") for region in regions],
        images=[
            {"id": 2000 + n, "name": f"OS {n}", "arch": "x64", "family": "ubuntu"}
            for n in range(51)
        ],
        apps=[make_app(n, f"App {n}") for n in range(1, 151)],
        k8s_versions=["v1.33.0+1", "v1.32.4+1", "v1.31.8+1", "v1.30.12+1"],
        storage_clusters=[
            {"id": n, "region": regions[n], "hostname": f"{regions[n]}.example", "deploy": "yes"}
            for n in range(12)
        ],
        isos=[
            {"id": f"iso-{n}", "name": f"ISO {n}", "description": "d", "md5sum": f"{n:032x}"}
            for n in range(30)
        ],
        databases=[
            make_database_plan(f"vultr-dbaas-bench-{n}", monthly_cost=15 + n, locations=regions)
            for n in range(48)
        ],
    )


def serve(pipe: Connection) -> None:
    """The fake API in a child process: report the port, serve until the parent says stop."""

    async def run() -> None:
        api = FakeVultrAPI(catalogue())
        api.api_key = KEY
        await api.start()
        pipe.send(api.port)
        await asyncio.get_running_loop().run_in_executor(None, pipe.recv)
        await api.stop()

    asyncio.run(run())


async def scrape(redis: Redis, base_url: str, per_page: int, full: bool) -> dict[str, Any]:
    config = Config(
        vultr=VultrConfig(base_url=base_url, per_page=per_page),
        client=ClientConfig(rate_limit=0, max_attempts=1),
        catalog=CatalogConfig() if full else CatalogConfig(include=[]),
    )
    async with create_session(config.client) as session:
        http = HttpClient(session, config.client)
        ctx = make_context(
            config=config,
            secrets=Secrets(vultr_api_key=KEY if full else None),
            redis=redis,
            http=http,
        )
        return await scrape_vultr_pricing(ctx)


async def measure(redis: Redis, base_url: str, per_page: int, full: bool) -> list[float | int]:
    """(requests, CPU of the first scrape, CPU of a steady-state scrape)."""
    await redis.flushall()
    samples: list[float | int] = []
    for _ in range(2):
        started = time.process_time()
        result = await scrape(redis, base_url, per_page, full)
        used = time.process_time() - started
        if result["status"] != "success":
            raise RuntimeError(f"scrape did not succeed: {result}")
        if not samples:
            samples.append(int(result["requests"]))
        samples.append(used)
    return samples


async def bench(rounds: int, per_page: int, port: int, redis_url: str) -> None:
    base_url = f"http://127.0.0.1:{port}/v2"
    redis = Redis.from_url(redis_url)
    modes = {"without": False, "with": True}
    found: dict[str, list[list[float | int]]] = {name: [] for name in modes}
    try:
        for full in modes.values():  # warm-up: imports, connections, caches
            await measure(redis, base_url, per_page, full)
        for _ in range(rounds):
            for name, full in modes.items():  # interleaved: drift hits both modes
                found[name].append(await measure(redis, base_url, per_page, full))
    finally:
        await redis.aclose()
    medians = {
        name: [statistics.median(sample[index] for sample in samples) for index in range(3)]
        for name, samples in found.items()
    }
    print(f"catalogue scrape, per_page={per_page}, medians of {rounds} rounds (CPU of the job):")
    print(f"  {'':<8} {'requests':>8} {'first scrape':>14} {'steady state':>14}")
    for name, (requests, first, steady) in medians.items():
        print(f"  {name:<8} {requests:>8.0f} {first * 1000:>11.1f} ms {steady * 1000:>11.1f} ms")
    (r0, f0, s0), (r1, f1, s1) = medians["without"], medians["with"]
    print(f"  ratio    {r1 / r0:>7.2f}x {f1 / f0:>13.2f}x {s1 / s0:>13.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--per-page", type=int, default=500)
    args = parser.parse_args()
    logger.remove()  # one log line per scrape would drown the figures
    context = multiprocessing.get_context("fork")
    parent, child = context.Pipe()
    server = context.Process(target=serve, args=(child,), daemon=True)
    server.start()
    try:
        port = parent.recv()
        with RedisServer() as redis:
            asyncio.run(bench(args.rounds, args.per_page, port, redis.url))
    finally:
        parent.send("stop")
        server.join(10)
        if server.is_alive():
            server.terminate()


if __name__ == "__main__":
    main()
