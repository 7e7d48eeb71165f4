"""Jobs for bench/worker_startup.py: every registry job (imported as in production, schedules
off so nothing reaches the network) plus a no-op job to time the first pickup."""

from __future__ import annotations

from typing import Any

from vultr_scraper_jobs.registry import JobSpec, all_jobs
from vultr_scraper_worker.plans import Schedule


async def bench_noop(ctx: dict[Any, Any]) -> dict[str, Any]:
    return {"status": "success"}


JOBS = [*all_jobs().values(), JobSpec("bench-noop", bench_noop, "no-op for the startup bench")]
SCHEDULES = {spec.name: Schedule(timeout=60.0) for spec in JOBS}
