"""Aborting a running job through the HTTP API of a real worker: arq's abort cancels the try,
the job is not retried, its work never finishes, and the job page shows it aborted."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import aiohttp
import pytest
from redis.asyncio import Redis

from tests.redis_server import free_port
from tests.worker.api_harness import TOKEN
from tests.worker.processes import WorkerProcess, eventually, queue_for, worker_env, workers
from vultr_scraper_worker.enqueue import enqueue_job

JOB_ID = "slow:abort-live"
KEY = "abort-live"
BEARER = {"Authorization": f"Bearer {TOKEN}"}


@pytest.mark.slow
async def test_abort_stops_a_running_job(redis_url: str, redis: Redis, tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = worker_env(
        redis_url,
        tmp_path / "state",
        VULTR_SCRAPER__HTTP__LISTEN=f"127.0.0.1:{port}",
        VULTR_SCRAPER__HTTP__TOKEN_FILE=str(token_file),
    )
    with workers(WorkerProcess(env, tmp_path)) as (worker,):
        await worker.wait_ready()
        async with queue_for(redis_url) as queue:
            # 15 s of sleep, well inside its 20 s timeout: only the abort can end it early.
            assert await enqueue_job(queue, "slow", KEY, 15.0, job_id=JOB_ID)

        async def running() -> bool:
            return bool(await redis.llen(f"{KEY}:tries"))  # type: ignore[misc]

        await eventually(running, message=worker.output)
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{base}/jobs/{JOB_ID}") as response:
                assert response.status == 200
                before = await response.text()
            asked = time.monotonic()
            async with session.post(
                f"{base}/api/v1/jobs/{JOB_ID}/abort", headers=BEARER
            ) as response:
                assert response.status == 202, await response.text()
                answer = await response.json()
            took = time.monotonic() - asked
            # Longer than any retry's backoff (0.4 s base, 4 s cap in this worker's config):
            # a retried try would have started by now.
            await asyncio.sleep(5)
            async with session.get(f"{base}/jobs/{JOB_ID}") as response:
                assert response.status == 200
                after = await response.text()
            async with session.get(f"{base}/api/v1/jobs/queue", headers=BEARER) as response:
                queued = await response.json()
        tries = await redis.lrange(f"{KEY}:tries", 0, -1)  # type: ignore[misc]
        done = await redis.get(f"{KEY}:done")
        in_progress = await redis.exists(f"arq:in-progress:{JOB_ID}")
        output = worker.output()
    assert answer == {"job_id": JOB_ID, "aborted": True}, output
    assert took < 15, "the answer came when the job ended by itself, not at the abort"
    assert len(tries) == 1, (tries, output)  # cancelled once, never retried
    assert done is None  # the job's work after its sleep never ran
    assert not in_progress
    assert all(job.get("id") != JOB_ID for job in queued.get("jobs", [])), queued
    assert "running" in before or "in_progress" in before or "in progress" in before
    assert "aborted" in after, after
    ends = worker.events("job.end", job_id=JOB_ID) if worker.lines() else []
    assert [line.get("outcome") for line in ends] == ["aborted"], ends
