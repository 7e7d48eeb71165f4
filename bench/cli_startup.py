"""Benchmark: CPU cost of one CLI call, as a ratio to ``python -c "import click"``.

Each command runs as a fresh process of this interpreter (``-m vultr_scraper_worker``, what the
installed ``vultr-scraper`` entry point does) and its CPU time (user + system, from the
kernel's accounting of waited-for children) is compared with that of ``python -c "import
click"`` in the same environment, the least any click command line can cost. Runs are paired
and interleaved (baseline, then each command, per round) so load on the machine hits both
sides alike; the ratio is the median of the per-round ratios.

* ``--help``: the whole command list (must not load aiohttp, redis, the web app);
* ``plans --json``: end to end against a small store (the 1x synthetic catalogue of
  bench/history_sim.py: about 240 plans in 33 regions) in a redis-server started here;
* ``check``: the heartbeat probe (no worker runs, so it exits 69 after reading Redis).

Bytecode caches are written by a warm-up round first (``PYTHONDONTWRITEBYTECODE`` is dropped
for the children), as in any installed environment; without them every run compiles its
sources again and measures that instead. Run from the repository root:

    python3 -m hatch run python -m bench.cli_startup [--rounds 7]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from redis.asyncio import Redis

from bench.history_sim import synthetic_catalogue
from vultr_scraper_core.embedded_redis import EmbeddedRedis
from vultr_scraper_core.store.catalog import CatalogueStore
from vultr_scraper_jobs.diff import diff_catalogues

ROOT = Path(__file__).resolve().parents[1]
PREFIX = "vs"
BASELINE = ("baseline", [sys.executable, "-c", "import click"])
COMMANDS = {
    "--help": ["--help"],
    "plans --json": ["plans", "--json"],
    "check": ["check"],
}


async def seed(url: str) -> int:
    """The 1x synthetic catalogue as the current snapshot; returns its plan count."""
    redis = Redis.from_url(url)
    try:
        catalogue = synthetic_catalogue(1, random.Random(16))
        now = datetime.now(UTC)
        async with CatalogueStore(redis, PREFIX).transaction() as tx:
            events = diff_catalogues(tx.current.catalogue, catalogue, at=now)
            tx.commit(catalogue, events, fetched_at=now, committed_at=now, shapes={})
            assert await tx.execute()
        return len(catalogue.plans)
    finally:
        await redis.aclose()


def cpu_seconds(command: list[str], env: dict[str, str], allowed: set[int]) -> float:
    """User + system CPU of one child process: the growth of RUSAGE_CHILDREN across its run
    (it counts waited-for children only, so the still running redis-server is not in it)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, check=False)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode not in allowed:
        raise RuntimeError(f"{command} exited {result.returncode}: {result.stderr[-500:]!r}")
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="vs-bench-") as directory:
        base = Path(directory)
        with EmbeddedRedis(base / "redis", persistent=False) as server:
            plans = asyncio.run(seed(server.url))
            env = {key: value for key, value in os.environ.items() if not key.startswith("VULTR")}
            env.pop("PYTHONDONTWRITEBYTECODE", None)
            env.update(
                {
                    "VULTR_SCRAPER__REDIS__URL": server.url,
                    "VULTR_SCRAPER__REDIS__KEY_PREFIX": PREFIX,
                    "VULTR_SCRAPER__PATHS__STATE_DIR": str(base / "state"),
                }
            )
            runs: list[tuple[str, list[str], set[int]]] = [(BASELINE[0], BASELINE[1], {0})]
            for name, args in COMMANDS.items():
                allowed = {0, 69} if name == "check" else {0}
                runs.append((name, [sys.executable, "-m", "vultr_scraper_worker", *args], allowed))
            for _name, command, allowed in runs:  # warm-up: writes the bytecode caches
                cpu_seconds(command, env, allowed)
            samples: dict[str, list[float]] = {name: [] for name, _command, _allowed in runs}
            for _round in range(options.rounds):
                for name, command, allowed in runs:
                    samples[name].append(cpu_seconds(command, env, allowed))
    baseline = samples[BASELINE[0]]
    print(
        f"python {sys.version.split()[0]}, {options.rounds} paired rounds, "
        f'baseline `python -c "import click"` median {statistics.median(baseline) * 1000:.0f} ms '
        f"CPU; store: {plans} plans"
    )
    print(f"{'command':>14}  {'ratio':>6}  {'CPU ms (median)':>15}  per-round ratios")
    for name in COMMANDS:
        ratios = [run / base for run, base in zip(samples[name], baseline, strict=True)]
        listed = " ".join(f"{ratio:.2f}" for ratio in ratios)
        median_ms = statistics.median(samples[name]) * 1000
        print(f"{name:>14}  {statistics.median(ratios):6.2f}  {median_ms:15.0f}  {listed}")


if __name__ == "__main__":
    main()
