"""Benchmark: CPU of one catalogue job and one availability job at 1x and 10x catalogue size.

Both jobs run in this process exactly as the worker runs them (``scrape_vultr_pricing`` and
``scrape_vultr_availability`` with the ``ctx`` of ``runtime.job_context``) against the fake
Vultr API of the tests, served by a child process so its own CPU is not counted, and a
redis-server started here. At 1x the fake catalogue is about today's size (240 plans in 33
regions, each plan sold in a third of them: 2,640 (plan, region) pairs); 10x is 2,400 plans in
330 regions (264,000 pairs).

Per scale: a first run of each job fills the store (everything is new), then ``--runs``
steady-state runs, each after a small change in the fake (``--price-changes`` plans per 1x
change a price, 2 by default, far more than Vultr's few a day; 0.3 % of the pairs enter or
leave stock), so every run writes events like a real one. The figure is
the job's process CPU time (``time.process_time``: every thread, the jobs' worker threads
included), median of the runs; the 10x/1x ratio is computed in the same run. Run from the
repository root:

    python3 -m hatch run python -m bench.jobs_at_scale [--runs 5] [--scales 1 10]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from loguru import logger

from vultr_scraper_core.config import load_config
from vultr_scraper_core.embedded_redis import EmbeddedRedis
from vultr_scraper_core.redis import connect
from vultr_scraper_jobs.availability import scrape_vultr_availability
from vultr_scraper_jobs.catalog import scrape_vultr_pricing
from vultr_scraper_worker.runtime import job_context

ROOT = Path(__file__).resolve().parents[1]
PLANS_AT_1X = 240
REGIONS_AT_1X = 33
FAMILIES = ("vc2", "vhf", "vhp", "voc", "vcg", "vdm", "vx1")


def fake_catalogue(scale: int, rng: random.Random) -> Any:
    from tests.fakes.vultr_api import FakeCatalogue, make_metal_plan, make_plan, make_region

    regions = [f"r{index:03d}" for index in range(REGIONS_AT_1X * scale)]
    plans = []
    for index in range(PLANS_AT_1X * scale):
        family = FAMILIES[index % len(FAMILIES)]
        vcpus = 1 << (index % 6)
        sold = sorted(rng.sample(regions, max(1, len(regions) // 3)))
        monthly = 5 * vcpus + index % 7
        fields: dict[str, Any] = {
            "vcpu_count": vcpus,
            "ram": 1024 * vcpus,
            "disk": 25 * vcpus,
            "monthly_cost": monthly,
            "hourly_cost": round(monthly / 730, 4),
            "type": family,
            "locations": sold,
        }
        if family == "vcg":
            fields.update(gpu_type="NVIDIA_A100", gpu_vram_gb=40, gpu_count=1)
        if index % 5 == 0:
            fields["location_cost"] = {sold[0]: {"monthly_cost": monthly + 1, "hourly_cost": 0.01}}
        plans.append(make_plan(f"{family}-{vcpus}c-{index:05d}", **fields))
    metal = [make_metal_plan(f"vbm-{index}c", locations=regions[:5]) for index in range(4 * scale)]
    availability: dict[str, list[str]] = {region: [] for region in regions}
    for plan in plans:
        for region in plan["locations"]:
            if rng.random() < 0.8:
                availability[region].append(plan["id"])
    return FakeCatalogue(
        plans=plans,
        metal=metal,
        regions=[make_region(region, region.upper(), "US", "North America") for region in regions],
        images=[{"id": 2284, "name": "Ubuntu 24.04 LTS x64", "arch": "x64", "family": "ubuntu"}],
        availability=availability,
    )


def mutate(catalogue: Any, scale: int, rng: random.Random, prices: int) -> None:
    """``prices`` price changes per 1x and 0.3 % of the pairs flipping, between two runs."""
    for plan in rng.sample(catalogue.plans, prices * scale):
        plan["monthly_cost"] += 1
    pairs = [(plan["id"], region) for plan in catalogue.plans for region in plan["locations"]]
    for plan_id, region in rng.sample(pairs, max(1, len(pairs) * 3 // 1000)):
        listed = catalogue.availability[region]
        if plan_id in listed:
            listed.remove(plan_id)
        else:
            listed.append(plan_id)


async def serve(scale: int, prices: int) -> None:
    """The child process: the fake API; each line "mutate" on stdin changes it a little."""
    from tests.fakes.vultr_api import FakeVultrAPI

    rng = random.Random(scale)
    catalogue = fake_catalogue(scale, rng)
    async with FakeVultrAPI(catalogue, default_per_page=500) as api:
        api.max_per_page = 500
        print(api.base_url, flush=True)
        loop = asyncio.get_running_loop()
        while line := await loop.run_in_executor(None, sys.stdin.readline):
            if line.strip() == "mutate":
                mutate(catalogue, scale, rng, prices)
                api.requests.clear()
            print("ok", flush=True)


def measure(scale: int, runs: int, redis_url: str, prices: int = 2) -> dict[str, list[float]]:
    command = [sys.executable, "-m", "bench.jobs_at_scale", "--serve", str(scale)]
    server = subprocess.Popen(
        [*command, "--price-changes", str(prices)],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        return asyncio.run(run_jobs(server, scale, runs, redis_url))
    finally:
        assert server.stdin is not None
        server.stdin.close()
        server.wait(timeout=30)


async def run_jobs(
    server: subprocess.Popen[str], scale: int, runs: int, redis_url: str
) -> dict[str, list[float]]:
    assert server.stdin is not None and server.stdout is not None
    base_url = server.stdout.readline().strip()
    env = {
        "VULTR_SCRAPER__REDIS__URL": redis_url,
        "VULTR_SCRAPER__VULTR__BASE_URL": base_url,
        "VULTR_SCRAPER__CLIENT__RATE_LIMIT": "0",
        "VULTR_SCRAPER__VULTR__AVAILABILITY_CONCURRENCY": "8",
        "VULTR_SCRAPER__VULTR__MAX_RESPONSE_BYTES": str(64 * 1024 * 1024),
    }
    loaded = load_config(None, environ=env)
    redis = connect(redis_url, password=None, outage_budget=5.0)
    await redis.flushdb()
    jobs: dict[str, Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]] = {
        "catalogue": scrape_vultr_pricing,
        "availability": scrape_vultr_availability,
    }
    cpu: dict[str, list[float]] = {name: [] for name in jobs}
    async with job_context(loaded, redis) as ctx:
        for attempt in range(runs + 1):
            if attempt:
                server.stdin.write("mutate\n")
                server.stdin.flush()
                assert server.stdout.readline().strip() == "ok"
            for name, job in jobs.items():
                ctx["job_id"] = f"bench-{name}-{attempt}"
                started = time.process_time()
                result = await job(ctx)
                spent = time.process_time() - started
                if result.get("status") != "success":
                    raise RuntimeError(f"{name} at {scale}x: {json.dumps(result)[:500]}")
                if attempt:  # the first run fills the store
                    cpu[name].append(spent)
    await redis.aclose()
    return cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--scales", type=int, nargs="+", default=[1, 10])
    parser.add_argument(
        "--price-changes", type=int, default=2, help="plans per 1x changing a price per run"
    )
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.serve:
        asyncio.run(serve(options.serve, options.price_changes))
        return
    logger.remove()  # the jobs' own log lines would drown the figures
    results: dict[int, dict[str, list[float]]] = {}
    with tempfile.TemporaryDirectory(prefix="vs-bench-") as directory:
        with EmbeddedRedis(Path(directory), persistent=False) as redis_server:
            for scale in options.scales:
                results[scale] = measure(
                    scale, options.runs, redis_server.url, options.price_changes
                )
    print(
        f"python {sys.version.split()[0]}, {options.runs} steady-state runs per job and scale, "
        f"{options.price_changes} price changes per 1x between runs"
    )
    first = options.scales[0]
    for name in ("catalogue", "availability"):
        base = statistics.median(results[first][name])
        for scale in options.scales:
            values = results[scale][name]
            median = statistics.median(values)
            listed = " ".join(f"{value:.3f}" for value in values)
            print(
                f"{name:>12} {scale:>3}x: {median:.3f} s CPU (median), "
                f"{median / base:5.2f}x the {first}x cost  ({listed})"
            )


if __name__ == "__main__":
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    main()
