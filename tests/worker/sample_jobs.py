"""Test-only jobs, served with ``vultr-scraper worker --jobs-module tests.worker.sample_jobs``.

Each job leaves evidence in Redis under keys the test chooses (its first argument), so a test in
another process can see what ran, how often, with which try and when.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from redis.asyncio import Redis

from vultr_scraper_core.http import PermanentHttpError, TransientHttpError
from vultr_scraper_jobs.registry import JobSpec
from vultr_scraper_worker.plans import Schedule

TICK_KEY = "sample:ticks"
TICK_SECONDS = frozenset(range(0, 60, 2))


def _redis(ctx: dict[Any, Any]) -> Redis:
    redis: Redis = ctx["redis"]
    return redis


async def _note(ctx: dict[Any, Any], key: str) -> int:
    """Append this try (``job_id try time``) to ``key:tries``; return how many there are."""
    entry = f"{ctx['job_id']} {ctx['job_try']} {time.time():.6f}"
    return int(await _redis(ctx).rpush(f"{key}:tries", entry))  # type: ignore[misc]


async def noop(ctx: dict[Any, Any], key: str = "sample:noop") -> dict[str, Any]:
    await _note(ctx, key)
    return {"status": "success"}


async def flaky(ctx: dict[Any, Any], key: str, failures: int) -> dict[str, Any]:
    """Transient failure (HTTP 503) on the first ``failures`` tries, then success."""
    count = await _note(ctx, key)
    if count <= failures:
        raise TransientHttpError("Service Unavailable", url="http://sample.invalid/", status=503)
    return {"status": "success", "tries": count}


async def always_transient(ctx: dict[Any, Any], key: str) -> dict[str, Any]:
    await _note(ctx, key)
    raise TransientHttpError("Bad Gateway", url="http://sample.invalid/", status=502)


async def permanent(ctx: dict[Any, Any], key: str) -> dict[str, Any]:
    await _note(ctx, key)
    raise PermanentHttpError("Not Found", url="http://sample.invalid/", status=404)


async def slow(ctx: dict[Any, Any], key: str, seconds: float) -> dict[str, Any]:
    """Sleeps ``seconds``, then marks ``key:done`` with the try that finished."""
    await _note(ctx, key)
    await asyncio.sleep(seconds)
    await _redis(ctx).set(f"{key}:done", str(ctx["job_try"]))
    return {"status": "success", "slept": seconds}


async def tick(ctx: dict[Any, Any]) -> dict[str, Any]:
    """Scheduled every 2 s: records each run's job id (one id per tick)."""
    await _redis(ctx).rpush(TICK_KEY, str(ctx["job_id"]))  # type: ignore[misc]
    return {"status": "success"}


async def quarantine(ctx: dict[Any, Any], key: str) -> dict[str, Any]:
    await _note(ctx, key)
    return {"status": "quarantined", "reason": "sample"}


async def reports_failure(ctx: dict[Any, Any], key: str) -> dict[str, Any]:
    await _note(ctx, key)
    return {"status": "failed", "error": "sample reported a failure"}


JOBS = [
    JobSpec("noop", noop, "does nothing"),
    JobSpec("flaky", flaky, "fails transiently N times, then succeeds"),
    JobSpec("always-transient", always_transient, "always fails transiently"),
    JobSpec("permanent", permanent, "fails permanently"),
    JobSpec("slow", slow, "sleeps"),
    JobSpec("tick", tick, "scheduled every two seconds"),
    JobSpec("quarantine", quarantine, "returns status quarantined"),
    JobSpec("reports-failure", reports_failure, "returns status failed"),
]

SCHEDULES = {
    "tick": Schedule(enabled=True, second=TICK_SECONDS, timeout=5.0),
    "slow": Schedule(timeout=20.0),
}
for _spec in JOBS:
    SCHEDULES.setdefault(_spec.name, Schedule(timeout=5.0))

# Same jobs without the schedule, for tests that must not see cron runs.
UNSCHEDULED = {name: Schedule(timeout=schedule.timeout) for name, schedule in SCHEDULES.items()}
