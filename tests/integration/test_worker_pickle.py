"""A pickled job planted in Redis is refused and reported, never executed."""

from __future__ import annotations

import os
import pickle
import time
from pathlib import Path

import pytest

from tests.worker.processes import WorkerProcess, cli, eventually, queue_for, worker_env, workers
from vultr_scraper_worker.enqueue import enqueue_job
from vultr_scraper_worker.records.failed import FailedJobs
from vultr_scraper_worker.records.runs import JobHistory

pytestmark = pytest.mark.slow


class _Exploit:
    """Unpickling this runs ``touch MARKER``: what an attacker with Redis access would plant."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, (f"touch {self.marker}",))


async def test_pickled_job_is_refused_recorded_and_never_run(
    redis_url: str, tmp_path: Path
) -> None:
    marker = tmp_path / "pwned"
    payload = pickle.dumps(
        {"t": 1, "f": "noop", "a": (_Exploit(marker),), "k": {}, "et": int(time.time() * 1000)}
    )
    env = worker_env(redis_url, tmp_path / "state")
    async with queue_for(redis_url) as queue:
        planted = "planted-pickle"
        await queue.set(f"arq:job:{planted}", payload)
        await queue.zadd("arq:queue", {planted: int(time.time() * 1000)})
        failed = FailedJobs(queue, "vs")
        with workers(WorkerProcess(env, tmp_path)) as (worker,):
            await worker.wait_ready()

            async def reported() -> bool:
                return await failed.get(planted) is not None

            await eventually(reported, message=worker.output)
            # The worker goes on serving msgpack jobs.
            job_id = await enqueue_job(queue, "noop", "t:after")
            history = JobHistory(queue, "vs")

            async def served() -> bool:
                return any(run.job_id == job_id for run in await history.recent("noop"))

            await eventually(served, message=worker.output)

        assert not marker.exists()
        record = await failed.get(planted)
        assert record is not None
        assert record.error_type == "RefusedPayload"
        assert "pickle" in record.error and "never executed" in record.error
        assert record.retryable is False
        assert await queue.zscore("arq:queue", planted) is None
        assert await queue.exists(f"arq:job:{planted}") == 0
        refused = worker.events("job.end", job_id=planted, outcome="failed")
        assert len(refused) == 1 and "pickle" in refused[0]["error"]
        assert not worker.events("job.start", job_id=planted)
        assert await queue.llen("t:after:tries") == 1  # type: ignore[misc]
        assert await queue.llen("sample:noop:tries") == 0  # type: ignore[misc]

        result = await cli(env, "retry", planted)
        assert result.returncode == 1
        assert "cannot be retried" in result.stderr
        assert not marker.exists()
