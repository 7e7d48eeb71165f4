"""The job claim leases each job for its own timeout + 10 s, on a real Redis: a short job is not
held for the longest timeout of all (arq's rule), and a payload that does not decode gets the
longest lease (arq then fails it without running it)."""

from __future__ import annotations

import asyncio
import pickle
from pathlib import Path
from typing import Any

import pytest
from arq.connections import ArqRedis
from arq.constants import in_progress_key_prefix, job_key_prefix

from vultr_scraper_core.config import load_config
from vultr_scraper_jobs.registry import JobSpec
from vultr_scraper_worker.enqueue import enqueue_job
from vultr_scraper_worker.plans import JobSet, Schedule
from vultr_scraper_worker.project_worker import LEASE_MARGIN
from vultr_scraper_worker.worker_main import build_worker

SHORT, LONG = 20.0, 900.0


async def test_each_claimed_job_is_leased_for_its_own_timeout(
    queue: ArqRedis, redis_url: str, tmp_path: Path
) -> None:
    release = asyncio.Event()

    async def hold(ctx: dict[Any, Any]) -> dict[str, Any]:
        await release.wait()
        return {"status": "success"}

    jobs = JobSet(
        [JobSpec("short", hold, "short job"), JobSpec("long", hold, "long job")],
        {"short": Schedule(timeout=SHORT), "long": Schedule(timeout=LONG)},
    )
    loaded = load_config(
        None,
        environ={
            "VULTR_SCRAPER__REDIS__URL": redis_url,
            "VULTR_SCRAPER__PATHS__STATE_DIR": str(tmp_path),
            "VULTR_SCRAPER__HTTP__LISTEN": "",
        },
    )
    worker, lifecycle = build_worker(loaded, queue, jobs=jobs, handle_signals=False)
    assert await enqueue_job(queue, "short", job_id="s") == "s"
    assert await enqueue_job(queue, "long", job_id="l") == "l"
    # A pickle planted in Redis: never decoded by the worker, in Lua or in Python.
    planted = pickle.dumps({"f": "short", "a": [], "k": {}, "t": 1, "et": 0})
    await queue.set(job_key_prefix + "p", planted)
    await queue.zadd("arq:queue", {"p": 0})
    try:
        await worker.start_jobs([b"s", b"l", b"p"])
        leases = {
            job_id: await queue.pttl(in_progress_key_prefix + job_id) / 1000
            for job_id in ("s", "l", "p")
        }
    finally:
        release.set()
        await asyncio.gather(*worker.tasks.values())
        await lifecycle.aclose()

    assert set(worker.tasks) == {"s", "l", "p"}
    assert SHORT + LEASE_MARGIN - 5 < leases["s"] <= SHORT + LEASE_MARGIN
    assert LONG + LEASE_MARGIN - 5 < leases["l"] <= LONG + LEASE_MARGIN
    # The longest lease of the worker's functions (arq's own, for every job).
    assert leases["p"] == pytest.approx(worker.in_progress_timeout_s, abs=5)
    assert worker.in_progress_timeout_s == pytest.approx(LONG + LEASE_MARGIN)
    assert await queue.zcard("arq:queue") == 0  # both ran, the pickle failed
