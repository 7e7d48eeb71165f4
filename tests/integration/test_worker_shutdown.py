"""SIGTERM: stop taking jobs, wait up to job_completion_wait, exit 0; interrupted jobs rerun."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from tests.worker.processes import (
    WorkerProcess,
    eventually,
    queue_for,
    tries,
    worker_env,
    workers,
)
from vultr_scraper_worker.enqueue import enqueue_job

pytestmark = pytest.mark.slow


async def test_sigterm_mid_job_exits_0_and_the_next_worker_completes_it(
    redis_url: str, tmp_path: Path
) -> None:
    # The job needs 4 s; the worker waits 1 s (job_completion_wait) after SIGTERM.
    env = worker_env(redis_url, tmp_path / "state", VULTR_SCRAPER__WORKER__JOB_COMPLETION_WAIT="1")
    async with queue_for(redis_url) as queue:

        async def started(count: int) -> bool:
            return int(await queue.llen("t:slow:tries")) >= count  # type: ignore[misc]

        with workers(WorkerProcess(env, tmp_path, name="first")) as (first,):
            await first.wait_ready()
            job_id = await enqueue_job(queue, "slow", "t:slow", 4)
            await eventually(lambda: started(1), message=first.output)
            first.send(signal.SIGTERM)
            assert await first.wait_exit() == 0, first.output()
        assert await queue.get("t:slow:done") is None
        interrupted = first.events("job.end", job_id=job_id, outcome="interrupted")
        assert len(interrupted) == 1
        assert any("worker stopped on SIGTERM" in line["message"] for line in first.lines())

        with workers(WorkerProcess(env, tmp_path, name="second")) as (second,):

            async def done() -> bool:
                return await queue.get("t:slow:done") is not None

            await eventually(done, message=second.output)
        assert await queue.get("t:slow:done") == b"2"  # finished by its second try
        runs = tries(await queue.lrange("t:slow:tries", 0, -1))  # type: ignore[misc]
        assert [(run_id, job_try) for run_id, job_try, _ in runs] == [(job_id, 1), (job_id, 2)]
        assert second.events("job.end", job_id=job_id, outcome="success")


async def test_sigterm_lets_a_short_job_finish_before_exiting(
    redis_url: str, tmp_path: Path
) -> None:
    env = worker_env(redis_url, tmp_path / "state", VULTR_SCRAPER__WORKER__JOB_COMPLETION_WAIT="10")
    async with queue_for(redis_url) as queue:
        with workers(WorkerProcess(env, tmp_path)) as (worker,):
            await worker.wait_ready()
            job_id = await enqueue_job(queue, "slow", "t:short", 1)

            async def started() -> bool:
                return int(await queue.llen("t:short:tries")) >= 1  # type: ignore[misc]

            await eventually(started, message=worker.output)
            worker.send(signal.SIGTERM)
            assert await worker.wait_exit() == 0, worker.output()
        assert await queue.get("t:short:done") == b"1"
        assert worker.events("job.end", job_id=job_id, outcome="success")
        assert await queue.zcard("arq:queue") == 0
