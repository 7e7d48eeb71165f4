"""Durable deliveries against real processes: a real worker (``python -m vultr_scraper_worker``)
on a real redis-server delivers to a real aiohttp receiver on loopback that is down, failing,
slow, or fine, with small ``[deliveries]`` backoffs so each story takes seconds, not hours."""

from __future__ import annotations

import asyncio
import html
import json
import time
from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path
from typing import Any

import aiohttp
import msgspec
import pytest
from redis.asyncio import Redis
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from tests.fakes.webhook_receiver import WebhookReceiver
from tests.redis_server import free_port
from tests.worker.processes import (
    WorkerProcess,
    cli,
    eventually,
    queue_for,
    worker_env,
    workers,
)
from vultr_scraper_core.store.changes import ChangeEvent, ChangeFeed, EventKind
from vultr_scraper_core.store.deliveries import DeliveryLedger
from vultr_scraper_jobs.notify import SIGNATURE_HEADER, verify
from vultr_scraper_worker.enqueue import enqueue_job
from vultr_scraper_worker.records.failed import FailedJobs

pytestmark = pytest.mark.slow
PREFIX = "vs"
# A Standard Webhooks secret: base64 after the prefix (what receivers' libraries take).
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
DISABLED = ("scrape_catalog", "scrape_availability", "check_health", "dispatch_alerts", "prune")


def config_file(
    tmp_path: Path,
    url: str,
    *,
    horizon: float = 600.0,
    backoff_base: float = 1.0,
    backoff_cap: float = 4.0,
    sink_timeout: float = 5.0,
) -> Path:
    secret = tmp_path / "hook.secret"
    secret.write_text(SECRET + "\n")
    schedules = "\n".join(f"[schedules.{name}]\nenabled = false" for name in DISABLED)
    path = tmp_path / "config.toml"
    path.write_text(
        f"""
[vultr]
base_url = "http://127.0.0.1:9/v2"

[health]
check_vultr_api = false

{schedules}

[deliveries]
horizon = {horizon}
backoff_base = {backoff_base}
backoff_cap = {backoff_cap}

[[sinks]]
name = "hook"
url = "{url}"
secret_file = "{secret}"
timeout = {sink_timeout}

[[alerts]]
name = "stock"
kinds = ["back_in_stock"]
sinks = ["hook"]
"""
    )
    return path


def env_for(redis_url: str, tmp_path: Path, config: Path) -> dict[str, str]:
    return worker_env(redis_url, tmp_path / "state", VULTR_SCRAPER_CONFIG=str(config))


async def queue_delivery(redis: Redis, redis_url: str) -> str:
    """A stock event in the feed and its delivery queued as dispatch-alerts queues it."""
    event = ChangeEvent(
        kind=EventKind.STOCK_CHANGED,
        at=datetime.now(UTC),
        subject="vcg-l40s-16c-180g-48vram",
        region="fra",
        field="in_stock",
        old=False,
        new=True,
    )
    [event_id] = await ChangeFeed(redis, PREFIX).append([event])
    async with queue_for(redis_url) as queue:
        job_id = f"deliver:hook:{event_id}"
        queued = await enqueue_job(
            queue, "deliver-notification", "hook", event_id, "stock", job_id=job_id
        )
        assert queued == job_id
    return event_id


def delivered_check(redis: Redis, event_id: str) -> Any:
    ledger = DeliveryLedger(redis, PREFIX)

    async def delivered() -> bool:
        return await ledger.is_delivered("hook", event_id)

    return delivered


def retry_lines(worker: WorkerProcess) -> list[dict[str, Any]]:
    """The worker's WARNING lines about a failed attempt with a next one queued."""
    return [line for line in worker.lines() if "next_job" in line and "retry_in" in line]


def assert_verifies(receiver: WebhookReceiver) -> None:
    """Every request passes the reference Standard Webhooks library, and the old header."""
    for request in receiver.received:
        document = Webhook(SECRET).verify(request.body, request.headers)
        assert document == json.loads(request.body)
        assert verify(SECRET, request.body, request.headers[SIGNATURE_HEADER])
        with pytest.raises(WebhookVerificationError):
            Webhook("whsec_" + "QUJD" * 8).verify(request.body, request.headers)


async def test_a_sink_down_for_30_s_gets_the_alert_once_when_it_is_back(
    redis: Redis, redis_url: str, tmp_path: Path
) -> None:
    receiver = WebhookReceiver()
    await receiver.start()  # for a port of its own, then down: connection refused
    await receiver.stop()
    env = env_for(redis_url, tmp_path, config_file(tmp_path, receiver.url))
    try:
        with workers(WorkerProcess(env, tmp_path, jobs_module=None)) as (worker,):
            await worker.wait_ready()
            event_id = await queue_delivery(redis, redis_url)
            started = time.monotonic()
            await asyncio.sleep(30)
            failed_attempts = retry_lines(worker)
            await receiver.start()
            back = time.monotonic()
            await eventually(delivered_check(redis, event_id), message=worker.output)
            delivered_after = time.monotonic() - back
            await asyncio.sleep(5)  # longer than the backoff cap: no further attempt comes
    finally:
        await receiver.stop()
    assert time.monotonic() - started > 30
    # Tried all along, each attempt after a growing wait, always as the same delivery.
    assert len(failed_attempts) >= 4, worker.output()
    assert {line["delivery"] for line in failed_attempts} == {f"hook:{event_id}"}
    waits = [line["retry_in"] for line in failed_attempts]
    assert waits[0] <= 1.0 and max(waits) > 2.0 and all(wait <= 4.0 for wait in waits)
    assert delivered_after <= 4.0 + 2.0  # within the longest wait (and the poll)
    [request] = receiver.received  # exactly once
    assert request.headers["webhook-id"] == f"hook:{event_id}"
    assert_verifies(receiver)
    ledger = DeliveryLedger(redis, PREFIX)
    assert await ledger.pending() == []
    outcomes = [record.outcome for record in await ledger.recent()]
    assert outcomes[0] == "delivered" and set(outcomes[1:]) == {"retrying"}


async def test_a_sink_answering_500_then_200_gets_it_once_verifiably(
    redis: Redis, redis_url: str, tmp_path: Path
) -> None:
    async with WebhookReceiver(status=500) as receiver:
        env = env_for(redis_url, tmp_path, config_file(tmp_path, receiver.url))
        with workers(WorkerProcess(env, tmp_path, jobs_module=None)) as (worker,):
            await worker.wait_ready()
            event_id = await queue_delivery(redis, redis_url)

            async def refused_three_times() -> bool:
                return len(receiver.received) >= 3

            await eventually(refused_three_times, message=worker.output)
            receiver.status = 200
            await eventually(delivered_check(redis, event_id), message=worker.output)
            await asyncio.sleep(5)  # longer than the backoff cap: no further attempt comes
    statuses = [request.status for request in receiver.received]
    assert statuses.count(200) == 1 and statuses[-1] == 200
    assert {request.headers["webhook-id"] for request in receiver.received} == {f"hook:{event_id}"}
    # Each attempt waited its backoff (at least half the ceiling: base 1 s, doubled per try).
    gaps = [later.at - earlier.at for earlier, later in pairwise(receiver.received)]
    assert all(gap >= 0.5 for gap in gaps), gaps
    assert_verifies(receiver)
    document = msgspec.json.decode(receiver.received[-1].body)
    assert (document["delivery"], document["event"]["id"]) == (f"hook:{event_id}", event_id)


async def test_a_slow_sink_is_not_sent_copies_at_once_and_can_drop_them(
    redis: Redis, redis_url: str, tmp_path: Path
) -> None:
    # The receiver takes 3 s to answer; the sink's timeout is 1 s.
    async with WebhookReceiver(delay=3.0) as receiver:
        config = config_file(
            tmp_path, receiver.url, sink_timeout=1.0, backoff_base=4.0, backoff_cap=8.0
        )
        env = env_for(redis_url, tmp_path, config)
        with workers(WorkerProcess(env, tmp_path, jobs_module=None)) as (worker,):
            await worker.wait_ready()
            event_id = await queue_delivery(redis, redis_url)

            async def tried_twice() -> bool:
                return len(receiver.received) >= 2

            await eventually(tried_twice, message=worker.output)
            receiver.delay = 0.0
            await eventually(delivered_check(redis, event_id), message=worker.output)
    received = receiver.received
    assert 2 <= len(received) <= 3
    # Never an immediate copy: each attempt began after the previous one's timeout (1 s) plus
    # at least half its backoff ceiling (4 s, then 8 s).
    gaps = [later.at - earlier.at for earlier, later in pairwise(received)]
    assert gaps[0] >= 1.0 + 2.0, gaps
    assert all(gap >= 3.0 for gap in gaps), gaps
    # Every copy is the same delivery: a receiver de-duplicating by webhook-id processes one.
    assert {request.headers["webhook-id"] for request in received} == {f"hook:{event_id}"}
    assert len(receiver.first_seen()) == 1
    timeouts = retry_lines(worker)
    assert timeouts and all("timed out" in line["error"] for line in timeouts)


async def test_a_worker_restart_between_attempts_loses_nothing(
    redis: Redis, redis_url: str, tmp_path: Path
) -> None:
    async with WebhookReceiver(status=503) as receiver:
        config = config_file(tmp_path, receiver.url, backoff_base=6.0, backoff_cap=6.0)
        env = env_for(redis_url, tmp_path, config)
        ledger = DeliveryLedger(redis, PREFIX)
        first = WorkerProcess(env, tmp_path, jobs_module=None, name="first")
        with workers(first):
            await first.wait_ready()
            event_id = await queue_delivery(redis, redis_url)

            async def pending() -> bool:
                return await ledger.pending_of("hook", event_id) is not None

            await eventually(pending, message=first.output)
            first.kill()  # SIGKILL: nothing of the worker's memory survives
        state = await ledger.pending_of("hook", event_id)
        assert state is not None and state.attempts == 1
        assert len(receiver.received) == 1
        receiver.status = 200
        second = WorkerProcess(env, tmp_path, jobs_module=None, name="second")
        with workers(second):
            await second.wait_ready()
            await eventually(delivered_check(redis, event_id), message=second.output)
    assert [request.status for request in receiver.received] == [503, 200]
    assert {request.headers["webhook-id"] for request in receiver.received} == {f"hook:{event_id}"}
    # The second worker ran the attempt the first one had queued.
    ran = second.events("job.end", job_id=state.next_job, outcome="success")
    assert ran, second.output()
    assert await ledger.pending() == []


async def test_past_the_horizon_it_is_a_failed_delivery_visible_and_retryable(
    redis: Redis, redis_url: str, tmp_path: Path
) -> None:
    async with WebhookReceiver(status=503) as receiver:
        config = config_file(tmp_path, receiver.url, horizon=3.0, backoff_base=0.5, backoff_cap=1.0)
        port = free_port()
        env = env_for(redis_url, tmp_path, config)
        env["VULTR_SCRAPER__HTTP__LISTEN"] = f"127.0.0.1:{port}"
        failures = FailedJobs(redis, PREFIX)
        with workers(WorkerProcess(env, tmp_path, jobs_module=None)) as (worker,):
            await worker.wait_ready()
            event_id = await queue_delivery(redis, redis_url)

            async def failed() -> bool:
                return await failures.count() > 0

            await eventually(failed, message=worker.output)
            [record] = await failures.list()
            attempts = len(receiver.received)
            # Visible where failed jobs show: the CLI, the API and the status page.
            listing = await cli(env, "jobs", "--json")
            assert listing.returncode == 0, listing.stderr
            in_cli = [job for job in json.loads(listing.stdout)["failed"] if job["id"] == record.id]
            async with aiohttp.ClientSession(f"http://127.0.0.1:{port}") as session:
                async with session.get("/api/v1/jobs") as response:
                    assert response.status == 200
                    api = await response.json()
                async with session.get("/") as response:
                    assert response.status == 200
                    page = await response.text()
            deliveries = await cli(env, "alerts", "deliveries", "--json")
            document = json.loads(deliveries.stdout)
            # Retryable: the receiver is back, a person retries, it arrives once.
            receiver.status = 200
            retried = await cli(env, "retry", record.id)
            assert retried.returncode == 0, retried.stderr
            await eventually(delivered_check(redis, event_id), message=worker.output)
    assert record.function == "deliver-notification"
    assert record.error_type == "DeliveryExpired"
    assert f"after {attempts} attempts" in record.error and "deliveries.horizon" in record.error
    assert record.args == ["hook", event_id, "stock", 0]
    assert in_cli and in_cli[0]["error_type"] == "DeliveryExpired"
    in_api = [job for job in api["failed"]["jobs"] if job["id"] == record.id]
    assert in_api and "gave up on delivery" in in_api[0]["error"]
    assert html.escape(record.id) in page
    assert document["pending"] == []
    assert document["deliveries"][0]["outcome"] == "failed"
    assert attempts >= 3
    first_try = receiver.received[0].at
    last_refused = receiver.received[attempts - 1].at
    assert last_refused - first_try <= 3.0 + 1.5  # the last attempt is at the horizon
    assert [request.status for request in receiver.received].count(200) == 1
