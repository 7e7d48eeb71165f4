"""Benchmark: what ETag revalidation and gzip save on the big documents.

Fills a private redis-server with simulated history (``bench.history_sim``, ``--days`` at
``--scale``), serves the API in this process (``tests.worker.api_harness.running_api``) and
measures on loopback, median of ``--rounds`` requests each:

* ``/feed.atom?limit=500`` revalidated with its ETag (a 304), with the feed's tag taken from
  the change feed's head (the body is not built) against the same request with the tag a hash
  of the built body (``CHEAP_VERSIONS`` emptied, as before), as a ratio in the same run; the
  full 200 for scale;
* for the plans listing, the feed and the changes export: bytes sent and server time with and
  without ``Accept-Encoding: gzip``.

    PYTHONPATH=. python3 -m hatch run python bench/http_conditional.py --days 5 --rounds 15
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from datetime import UTC, datetime, timedelta

import aiohttp
from loguru import logger
from redis.asyncio import Redis
from tests.redis_server import RedisServer
from tests.worker.api_harness import running_api

from bench.history_sim import SimulationSpec, simulate
from vultr_scraper_worker.api import conditional


async def _timed(
    session: aiohttp.ClientSession, url: str, headers: dict[str, str], rounds: int
) -> tuple[float, int, int]:
    """Median seconds, the status and the bytes on the wire of ``rounds`` GETs."""
    times = []
    status = size = 0
    for _ in range(rounds + 1):  # the first warms caches up and is not counted
        began = time.perf_counter()
        async with session.get(url, headers=headers) as response:
            body = await response.read()
        times.append(time.perf_counter() - began)
        status, size = response.status, len(body)
    return statistics.median(times[1:]), status, size


async def main(days: int, scale: int, rounds: int) -> None:
    logger.remove()
    with RedisServer() as server:
        redis = Redis.from_url(server.url)
        spec = SimulationSpec(
            days=days, scale=scale, start=datetime.now(UTC) - timedelta(days=days)
        )
        stats = await simulate(redis, "vs", spec)
        await redis.aclose()
        print(f"simulated {days} days at {scale}x: {stats.plans} plans, {stats.events} events")
        async with (
            running_api(server.url, redis_timeout=60.0) as api,
            aiohttp.ClientSession(auto_decompress=False) as session,
        ):
            feed = f"{api.url}/feed.atom?limit=500"
            identity = {"Accept-Encoding": "identity"}
            async with session.get(feed, headers=identity) as response:
                tag = response.headers["ETag"]
            full, _, _ = await _timed(session, feed, identity, rounds)
            cheap, status, _ = await _timed(
                session, feed, {**identity, "If-None-Match": tag}, rounds
            )
            assert status == 304
            saved = dict(conditional.CHEAP_VERSIONS)
            conditional.CHEAP_VERSIONS.clear()
            async with session.get(feed, headers=identity) as response:
                body_tag = response.headers["ETag"]
            hashed, status, _ = await _timed(
                session, feed, {**identity, "If-None-Match": body_tag}, rounds
            )
            assert status == 304
            conditional.CHEAP_VERSIONS.update(saved)
            print(
                f"feed.atom?limit=500 304: tag from the feed's head {cheap * 1000:.2f} ms, tag"
                f" from the built body {hashed * 1000:.2f} ms: {cheap / hashed:.3f}x"
                f" (a full 200: {full * 1000:.2f} ms)"
            )
            for path in ("/api/v1/plans?limit=100000", "/feed.atom?limit=500",
                         "/api/v1/export/changes.csv"):  # fmt: skip
                url = api.url + path
                plain, _, plain_size = await _timed(session, url, identity, rounds)
                zipped, _, zipped_size = await _timed(
                    session, url, {"Accept-Encoding": "gzip"}, rounds
                )
                print(
                    f"{path}: identity {plain_size / 1024:.0f} KiB in {plain * 1000:.1f} ms,"
                    f" gzip {zipped_size / 1024:.0f} KiB ({zipped_size / plain_size:.3f}x)"
                    f" in {zipped * 1000:.1f} ms ({zipped / plain:.2f}x)"
                )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=5)
    parser.add_argument("--scale", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=15)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.days, arguments.scale, arguments.rounds))
