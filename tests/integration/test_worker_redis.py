"""Redis going away: a short restart is ridden out; a long outage ends the worker with 69."""

from __future__ import annotations

import asyncio
from functools import partial
from pathlib import Path

import pytest
from arq.connections import ArqRedis

from tests.redis_server import RedisServer
from tests.worker.processes import (
    WorkerProcess,
    eventually,
    queue_for,
    worker_env,
    workers,
)
from vultr_scraper_core.embedded_redis import EmbeddedRedis
from vultr_scraper_worker.enqueue import enqueue_job
from vultr_scraper_worker.records.runs import JobHistory

pytestmark = pytest.mark.slow


async def _succeeded(history: JobHistory, job_id: str) -> bool:
    return any(
        run.job_id == job_id and run.outcome == "success" for run in await history.recent("noop")
    )


async def test_worker_survives_a_redis_restart(
    redis_server: RedisServer, redis_url: str, tmp_path: Path
) -> None:
    env = worker_env(redis_url, tmp_path / "state", VULTR_SCRAPER__WORKER__REDIS_OUTAGE_BUDGET="20")
    with workers(WorkerProcess(env, tmp_path)) as (worker,):
        await worker.wait_ready()
        async with queue_for(redis_url) as queue:
            history = JobHistory(queue, "vs")
            before = await enqueue_job(queue, "noop", "t:before")
            assert before is not None
            await eventually(lambda: _succeeded(history, before), message=worker.output)

        await asyncio.to_thread(redis_server.restart, 2.0)  # down for 2 s, data lost (no AOF)
        assert worker.running(), worker.output()

        async with queue_for(redis_url) as queue:
            history = JobHistory(queue, "vs")
            after = [await enqueue_job(queue, "noop", f"t:after{index}") for index in range(3)]
            for job_id in after:
                assert job_id is not None
                await eventually(partial(_succeeded, history, job_id), message=worker.output)
            assert worker.running(), worker.output()
            # The heartbeat is back too, so `check` is green again.
            await eventually(
                lambda: _has_heartbeat(queue), message=lambda: "no heartbeat after the restart"
            )


async def _has_heartbeat(queue: ArqRedis) -> bool:
    return int(await queue.zcard("vs:workers")) > 0


async def test_worker_exits_69_when_redis_stays_away(tmp_path: Path) -> None:
    # A private server on a unix socket: a TCP port freed by stopping it could be taken by
    # another process's Redis on a busy machine, and the worker would happily reconnect there.
    server = EmbeddedRedis(tmp_path / "own", persistent=False)
    await asyncio.to_thread(server.start)
    try:
        env = worker_env(
            server.url, tmp_path / "state", VULTR_SCRAPER__WORKER__REDIS_OUTAGE_BUDGET="2"
        )
        with workers(WorkerProcess(env, tmp_path)) as (worker,):
            await worker.wait_ready()
            await asyncio.to_thread(server.stop)
            status = await worker.wait_exit()
    finally:
        await asyncio.to_thread(server.stop)
    assert status == 69, worker.output()
    critical = [line for line in worker.lines() if line["level"] == "CRITICAL"]
    assert len(critical) == 1
    assert critical[0]["message"].startswith("Redis unreachable: ")
    assert "for more than 2 s (worker.redis_outage_budget" in critical[0]["message"]
    assert "status 69" in critical[0]["message"]
