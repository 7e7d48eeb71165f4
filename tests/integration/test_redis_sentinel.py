"""Redis Sentinel: a real worker behind three sentinels rides out the loss of its primary.

A primary, a replica and three sentinels run on loopback (``tests.redis_sentinel``); the worker
is configured with a ``redis+sentinel://`` URL and scrapes the fake Vultr API. The primary is
SIGKILLed once the replica has acknowledged every write so far (``WAIT``), so what the test
expects to survive is exactly what Redis replicated: nothing written before the kill may go
missing, a job queued before the kill and one queued after it both complete on the new primary,
and the HTTP API, which has its own short-deadline client, answers from the new primary too.
"""

from __future__ import annotations

import asyncio
import time
from functools import partial
from pathlib import Path

import aiohttp
import pytest
from arq.connections import ArqRedis
from arq.jobs import Job, JobStatus

from tests.fakes.vultr_api import FakeVultrAPI
from tests.redis_sentinel import SentinelSetup
from tests.redis_server import free_port
from tests.worker.processes import WorkerProcess, eventually, worker_env, workers
from vultr_scraper_core.store.changes import ChangeEvent, ChangeFeed
from vultr_scraper_worker.enqueue import close_client, enqueue_job, queue_client

pytestmark = pytest.mark.slow

SCRAPE = "scrape-catalog"


async def _completed(queue: ArqRedis, job_id: str) -> bool:
    job = Job(job_id, queue, _deserializer=queue.job_deserializer)
    if await job.status() != JobStatus.complete:
        return False
    info = await job.result_info()
    assert info is not None and info.success, f"{job_id} failed: {info}"
    return True


async def _events(queue: ArqRedis) -> list[ChangeEvent]:
    return await ChangeFeed(queue, "vs").read(limit=100_000)


async def _healthz(port: int) -> int:
    try:
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"http://127.0.0.1:{port}/healthz") as response,
        ):
            return response.status
    except aiohttp.ClientError:
        return 0


async def test_worker_carries_on_after_a_sentinel_failover(tmp_path: Path) -> None:
    api = FakeVultrAPI()
    await api.start()
    setup = SentinelSetup()
    await asyncio.to_thread(setup.__enter__)
    http_port = free_port()
    env = worker_env(
        setup.url,
        tmp_path / "state",
        VULTR_SCRAPER__VULTR__BASE_URL=api.base_url,
        VULTR_SCRAPER__HTTP__LISTEN=f"127.0.0.1:{http_port}",
        VULTR_SCRAPER__WORKER__REDIS_OUTAGE_BUDGET="30",
        # Only the test starts catalogue work; the per-minute jobs stay scheduled.
        VULTR_SCRAPER__SCHEDULES__SCRAPE_CATALOG__ENABLED="false",
        VULTR_SCRAPER__SCHEDULES__SCRAPE_AVAILABILITY__ENABLED="false",
        VULTR_SCRAPER__SCHEDULES__PRUNE__ENABLED="false",
        VULTR_SCRAPER__SCHEDULES__MOVE_HISTORY__ENABLED="false",
    )
    # The producer reaches Redis through the sentinels too, and rides out the failover.
    queue = queue_client(setup.url, queue_name="arq:queue", outage_budget=30)
    try:
        with workers(WorkerProcess(env, tmp_path, jobs_module=None)) as (worker,):
            await worker.wait_ready()
            first = await enqueue_job(queue, SCRAPE, job_id="ha:first")
            assert first is not None
            await eventually(lambda: _completed(queue, "ha:first"), message=worker.output)

            plan = api.catalogue.plans[0]
            plan["monthly_cost"] = plan["monthly_cost"] + 1  # within the plausibility gate
            await enqueue_job(queue, SCRAPE, job_id="ha:second")
            await eventually(lambda: _completed(queue, "ha:second"), message=worker.output)
            before = await _events(queue)
            assert any(event.subject == plan["id"] for event in before), before
            # Queued before the kill, due after it: it must run on the new primary.
            deferred = await enqueue_job(queue, SCRAPE, job_id="ha:deferred", defer_by=4)
            assert deferred is not None
            assert await _healthz(http_port) == 200

            # Everything above is on the replica before the primary dies.
            await asyncio.to_thread(setup.wait_replicated)
            killed_at = time.monotonic()
            old_port = await asyncio.to_thread(setup.kill_primary)
            new_port = await asyncio.to_thread(setup.wait_failover, old_port)
            failover = time.monotonic() - killed_at
            assert new_port == setup.replica.port

            second_plan = api.catalogue.plans[1]
            second_plan["monthly_cost"] = second_plan["monthly_cost"] + 1
            after = await enqueue_job(queue, SCRAPE, job_id="ha:after")
            assert after is not None
            for job_id in ("ha:deferred", "ha:after"):
                await eventually(partial(_completed, queue, job_id), message=worker.output)
            assert worker.running(), worker.output()
            await eventually(lambda: _healthy(http_port), message="/healthz after the failover")

            now = await _events(queue)
            by_id = {event.id: event for event in now}
            lost = [event for event in before if by_id.get(event.id) != event]
            assert not lost, f"change events lost in the failover: {lost}"
            # The scrape after the failover saw the replicated catalogue: its only news is the
            # second plan's price, not the whole catalogue "added" again.
            news = [event for event in now if event.id not in {e.id for e in before}]
            assert news and {event.subject for event in news} == {second_plan["id"]}, news

            # The worker logged the switch to the new primary, and nothing worse than warnings
            # (the failover may be ridden out by retries, or be a logged outage).
            switched = worker.events("redis.primary_changed")
            assert switched, worker.output()
            assert switched[-1]["primary"] == f"127.0.0.1:{new_port}", switched
            errors = [line for line in worker.lines() if line.get("level") in ("ERROR", "CRITICAL")]
            assert not errors, errors
            print(f"failover took {failover:.1f} s; worker: {[s['message'] for s in switched]}")
    finally:
        await close_client(queue)
        await asyncio.to_thread(setup.cleanup)
        await api.stop()


async def _healthy(port: int) -> bool:
    return await _healthz(port) == 200
