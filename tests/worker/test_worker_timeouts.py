"""Job timeouts in a real arq worker (in-process, on the test Redis): arq keeps the time, the
wrapper reports an overrun as a transient ``JobTimeout``, and a shutdown is not a timeout."""

from __future__ import annotations

import asyncio
import signal
import time
from contextlib import suppress
from pathlib import Path
from typing import Any

import pytest
from arq.connections import ArqRedis

from vultr_scraper_core.config import LoadedConfig, load_config
from vultr_scraper_jobs.registry import JobSpec
from vultr_scraper_worker.enqueue import enqueue_job
from vultr_scraper_worker.plans import JobSet, Schedule
from vultr_scraper_worker.records.failed import FailedJobs
from vultr_scraper_worker.records.runs import JobHistory
from vultr_scraper_worker.worker_main import build_worker

STARTED = "sleepy:started"


async def sleepy(ctx: dict[Any, Any], seconds: float) -> dict[str, Any]:
    await ctx["redis"].incr(STARTED)
    await asyncio.sleep(seconds)
    return {"status": "success"}


def _loaded(redis_url: str, tmp_path: Path, **settings: str) -> LoadedConfig:
    return load_config(
        None,
        environ={
            **settings,
            "VULTR_SCRAPER__REDIS__URL": redis_url,
            "VULTR_SCRAPER__PATHS__STATE_DIR": str(tmp_path),
            "VULTR_SCRAPER__HTTP__LISTEN": "",
            "VULTR_SCRAPER__WORKER__POLL_DELAY": "0.01",
            "VULTR_SCRAPER__WORKER__MAX_TRIES": "2",
            "VULTR_SCRAPER__WORKER__RETRY_BACKOFF_BASE": "0.2",
            "VULTR_SCRAPER__WORKER__RETRY_BACKOFF_CAP": "0.2",
        },
    )


def _jobs(timeout: float) -> JobSet:
    return JobSet([JobSpec("sleepy", sleepy, "sleeps")], {"sleepy": Schedule(timeout=timeout)})


async def test_a_job_over_its_timeout_is_retried_then_fails_as_a_timeout(
    queue: ArqRedis, redis_url: str, tmp_path: Path
) -> None:
    await enqueue_job(queue, "sleepy", 30, job_id="slow-1")
    worker, lifecycle = build_worker(
        _loaded(redis_url, tmp_path), queue, jobs=_jobs(0.3), burst=True, handle_signals=False
    )
    started = time.monotonic()
    await worker.main()
    elapsed = time.monotonic() - started
    await lifecycle.aclose()

    # Two tries of 0.3 s and a backoff between them, not 30 s of sleeping.
    assert elapsed < 10
    assert int(await queue.get(STARTED) or 0) == 2
    runs = sorted(await JobHistory(queue, "vs").recent("sleepy"), key=lambda run: run.job_try)
    assert [(run.job_try, run.outcome, run.error_type) for run in runs] == [
        (1, "retry", "JobTimeout"),
        (2, "failed", "JobTimeout"),
    ]
    assert runs[0].retry_in is not None and runs[0].retry_in > 0
    assert all(0.25 <= run.duration < 5 for run in runs)
    failed = await FailedJobs(queue, "vs").get("slow-1")
    assert failed is not None
    assert (failed.error_type, failed.tries, failed.args) == ("JobTimeout", 2, [30])
    assert failed.error == "job exceeded its timeout of 0.3 s"
    assert (worker.jobs_retried, worker.jobs_failed) == (1, 1)


@pytest.mark.parametrize("grace", [False, True], ids=["at-once", "after-the-grace-period"])
async def test_a_shutdown_mid_job_is_an_interruption_not_a_timeout(
    queue: ArqRedis, redis_url: str, tmp_path: Path, grace: bool
) -> None:
    await enqueue_job(queue, "sleepy", 30, job_id="long-1")
    loaded = _loaded(redis_url, tmp_path, VULTR_SCRAPER__WORKER__JOB_COMPLETION_WAIT="0.2")
    worker, lifecycle = build_worker(loaded, queue, jobs=_jobs(60), handle_signals=False)
    worker.main_task = asyncio.ensure_future(worker.main())
    deadline = time.monotonic() + 10
    while not await queue.get(STARTED):
        assert time.monotonic() < deadline, "the job never started"
        await asyncio.sleep(0.01)

    # arq's two signal handlers: cancel now, or stop polling and cancel after the grace period.
    if grace:
        worker.handle_sig_wait_for_completion(signal.SIGTERM)
    else:
        worker.handle_sig(signal.SIGTERM)
    with suppress(asyncio.CancelledError):
        await worker.main_task
    await asyncio.gather(*worker.tasks.values(), return_exceptions=True)
    await lifecycle.aclose()

    (run,) = await JobHistory(queue, "vs").recent("sleepy")
    assert (run.outcome, run.error_type) == ("interrupted", None)
    assert await FailedJobs(queue, "vs").count() == 0
    assert await queue.zscore("arq:queue", "long-1") is not None  # still queued: it runs again
