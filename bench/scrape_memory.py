"""Benchmark: peak RSS of a catalogue scrape whatever ``/v2/plans`` sends.

Each run is the production command, ``python -m vultr_scraper_worker run scrape-catalog``, in
its own process against a fake Vultr API on loopback and a private redis-server (flushed before
every run), and its peak RSS is the ``ru_maxrss`` that ``wait4`` reports for that process. In
one run of the bench, medians of ``--runs``:

* ``normal``: an ordinary catalogue (``--plans`` plans, 240 by default: today's size);
* ``50 MB, Content-Length``: ``/v2/plans`` announces and sends 50 MB of junk plans;
* ``50 MB, chunked``: the same without ``Content-Length``, so the cap is met while streaming;
* with ``--uncapped``, also the 50 MB page with ``vultr.max_response_bytes`` raised above it
  (what the scraper did before reads were capped); slow and memory-hungry.

It prints each peak RSS and its ratio to ``normal`` (target: the capped floods within 1.5x).
Linux or macOS (``wait4``). Run from the repository root:

    PYTHONPATH=. python3 -m hatch run python bench/scrape_memory.py [--runs 3] [--uncapped]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.fakes.vultr_api import FakeVultrAPI, make_plan
from tests.redis_server import RedisServer

FLOOD_BYTES = 50_000_000


@contextmanager
def serving(api: FakeVultrAPI) -> Iterator[None]:
    """The fake API on its own event loop in a thread (the scrapes run in child processes)."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(api.start(), loop).result(10)
    try:
        yield
    finally:
        asyncio.run_coroutine_threadsafe(api.stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def flush(redis: RedisServer) -> None:
    import socket

    with socket.create_connection(("127.0.0.1", redis.port), timeout=5) as sock:
        sock.sendall(b"FLUSHALL\r\n")
        sock.recv(16)


def scrape(redis: RedisServer, api: FakeVultrAPI, state: Path, **env: str) -> tuple[int, int]:
    """One ``run scrape-catalog`` in a child: (exit status, peak RSS in KiB)."""
    flush(redis)
    environment = {
        key: value for key, value in os.environ.items() if not key.startswith("VULTR_SCRAPER")
    }
    environment.update(
        {
            "VULTR_SCRAPER__REDIS__URL": redis.url,
            "VULTR_SCRAPER__VULTR__BASE_URL": api.base_url,
            "VULTR_SCRAPER__CLIENT__RATE_LIMIT": "0",
            "VULTR_SCRAPER__CLIENT__MAX_ATTEMPTS": "1",
            "VULTR_SCRAPER__PATHS__STATE_DIR": str(state),
            **env,
        }
    )
    command = [sys.executable, "-m", "vultr_scraper_worker", "run", "-q", "scrape-catalog"]
    child = subprocess.Popen(
        command, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    peak = usage.ru_maxrss if sys.platform != "darwin" else usage.ru_maxrss // 1024
    return child.returncode, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--plans", type=int, default=240)
    parser.add_argument("--uncapped", action="store_true")
    args = parser.parse_args()
    # The fake logs a traceback each time a scraper hangs up on a flood at its cap: expected.
    logging.getLogger("aiohttp.server").setLevel(logging.CRITICAL)

    api = FakeVultrAPI()
    api.catalogue.plans = [
        make_plan(f"vc2-bench-{n}", monthly_cost=5 + n, hourly_cost=0.007 + n / 1000)
        for n in range(args.plans)
    ]
    modes: dict[str, tuple[Callable[[], None], dict[str, str]]] = {
        "normal": (lambda: None, {}),
        "50 MB, Content-Length": (lambda: api.flood("/v2/plans", FLOOD_BYTES, times=None), {}),
        "50 MB, chunked": (
            lambda: api.flood("/v2/plans", FLOOD_BYTES, announce=False, times=None),
            {},
        ),
    }
    if args.uncapped:
        modes["50 MB, cap raised to 64 MiB"] = (
            lambda: api.flood("/v2/plans", FLOOD_BYTES, times=None),
            {"VULTR_SCRAPER__VULTR__MAX_RESPONSE_BYTES": str(64 * 2**20)},
        )
    peaks: dict[str, list[int]] = {name: [] for name in modes}
    exits: dict[str, set[int]] = {name: set() for name in modes}
    with (
        RedisServer() as redis,
        serving(api),
        tempfile.TemporaryDirectory(prefix="vs-bench-") as state,
    ):
        scrape(redis, api, Path(state))  # warm-up: bytecode caches, page cache
        for _ in range(args.runs):
            for name, (fault, env) in modes.items():  # interleaved: drift hits every mode
                api.clear_faults()  # plain lists read per request: safe between runs
                fault()
                status, peak = scrape(redis, api, Path(state), **env)
                peaks[name].append(peak)
                exits[name].add(status)
    baseline = statistics.median(peaks["normal"])
    print(f"peak RSS of `run scrape-catalog`, median of {args.runs} (one process each):")
    for name, samples in peaks.items():
        median = statistics.median(samples)
        print(
            f"  {name:<28} {median / 1024:7.1f} MiB  {median / baseline:5.2f}x normal"
            f"  (exit {', '.join(map(str, sorted(exits[name])))})"
        )


if __name__ == "__main__":
    main()
