"""Retries in a real worker process: backoff between tries, bounded tries, failed records, retry."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.worker.processes import (
    WorkerProcess,
    cli,
    eventually,
    queue_for,
    tries,
    worker_env,
    workers,
)
from vultr_scraper_worker.enqueue import enqueue_job
from vultr_scraper_worker.records.failed import FailedJobs
from vultr_scraper_worker.records.runs import JobHistory

pytestmark = pytest.mark.slow
PREFIX = "vs"


async def test_transient_failures_are_retried_with_growing_delays(
    redis_url: str, tmp_path: Path
) -> None:
    env = worker_env(redis_url, tmp_path / "state")
    async with queue_for(redis_url) as queue:
        history = JobHistory(queue, PREFIX)
        with workers(WorkerProcess(env, tmp_path)) as (worker,):
            await worker.wait_ready()
            job_id = await enqueue_job(queue, "flaky", "t:flaky", 2)
            assert job_id is not None

            async def succeeded() -> bool:
                runs = await history.recent("flaky")
                return any(run.outcome == "success" for run in runs)

            await eventually(succeeded, message=worker.output)

        runs = tries(await queue.lrange("t:flaky:tries", 0, -1))  # type: ignore[misc]
        assert [(run_id, job_try) for run_id, job_try, _ in runs] == [
            (job_id, 1),
            (job_id, 2),
            (job_id, 3),
        ]
        retries = worker.events("job.end", job_id=job_id, outcome="retry")
        delays = [line["retry_in"] for line in retries]
        assert [line["try"] for line in retries] == [1, 2]
        # Backoff grows: half of each delay is fixed at ceiling/2, so try 2 waits at least as
        # long as try 1 could at most.
        assert 0 < delays[0] < delays[1]
        # arq never starts the next try before the announced delay has passed.
        for (_, _, before), (_, _, after), delay in zip(runs, runs[1:], delays, strict=False):
            assert after - before >= delay - 0.01
        outcomes = [run.outcome for run in await history.recent("flaky")]
        assert outcomes == ["success", "retry", "retry"]
        assert "flaky" in await history.last_success()
        assert await FailedJobs(queue, PREFIX).count() == 0


async def test_tries_are_bounded_one_failed_record_and_retry_reruns_it(
    redis_url: str, tmp_path: Path
) -> None:
    env = worker_env(redis_url, tmp_path / "state")
    async with queue_for(redis_url) as queue:
        failed = FailedJobs(queue, PREFIX)
        with workers(WorkerProcess(env, tmp_path)) as (worker,):
            await worker.wait_ready()
            job_id = await enqueue_job(queue, "always-transient", "t:always")
            assert job_id is not None

            async def recorded(count: int) -> bool:
                return await failed.count() >= count

            await eventually(lambda: recorded(1), message=worker.output)
            record = await failed.get(job_id)
            assert record is not None
            assert record.function == "always-transient"
            assert record.args == ["t:always"]
            assert record.tries == 3
            assert record.error_type == "TransientHttpError"
            assert "Bad Gateway" in record.error
            runs = tries(await queue.lrange("t:always:tries", 0, -1))  # type: ignore[misc]
            assert [job_try for _, job_try, _ in runs] == [1, 2, 3]

            result = await cli(env, "retry", job_id)
            assert result.returncode == 0, result.stderr
            new_id = result.stdout.strip()
            assert new_id and new_id != job_id

            await eventually(lambda: recorded(2), message=worker.output)
            runs = tries(await queue.lrange("t:always:tries", 0, -1))  # type: ignore[misc]
            assert [(run_id, job_try) for run_id, job_try, _ in runs[3:]] == [
                (new_id, 1),
                (new_id, 2),
                (new_id, 3),
            ]
            first = await failed.get(job_id)
            assert first is not None and first.retried_as == new_id
            second = await failed.get(new_id)
            assert second is not None and second.args == ["t:always"] and second.tries == 3

            listing = await cli(env, "jobs", "--json")
            assert listing.returncode == 0, listing.stderr
            assert {job_id, new_id} <= {line["id"] for line in _json(listing.stdout)["failed"]}

        ends = worker.events("job.end", function="always-transient", outcome="failed")
        assert {line["job_id"] for line in ends} == {job_id, new_id}


def _json(text: str) -> dict[str, Any]:
    import json

    document = json.loads(text)
    assert isinstance(document, dict)
    return document
