"""Alerts end to end in a real worker process: dispatch-alerts queues the delivery, each failed
attempt queues the next one with backoff while the receiver answers 500, and the event arrives
once, signed. (More stories: tests/integration/test_durable_deliveries.py.)"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import pytest
from arq.jobs import Job

from tests.fakes.http_targets import HttpTarget, Reply
from tests.worker.processes import (
    WAIT,
    WorkerProcess,
    eventually,
    queue_for,
    worker_env,
    workers,
)
from vultr_scraper_core.store.changes import ChangeEvent, ChangeFeed, EventKind
from vultr_scraper_core.store.deliveries import DeliveryLedger
from vultr_scraper_jobs.notify import SIGNATURE_HEADER, verify
from vultr_scraper_worker.enqueue import enqueue_job
from vultr_scraper_worker.serialization import deserialize

pytestmark = pytest.mark.slow
PREFIX = "vs"
SECRET = "end-to-end secret"


def event(subject: str, new: bool) -> ChangeEvent:
    return ChangeEvent(
        kind=EventKind.STOCK_CHANGED,
        at=datetime.now(UTC),
        subject=subject,
        region="fra",
        field="in_stock",
        old=not new,
        new=new,
    )


def config_file(tmp_path: Path, hook_url: str) -> Path:
    secret = tmp_path / "hook.secret"
    secret.write_text(SECRET)
    schedules = "\n".join(
        f"[schedules.{name}]\nenabled = false"
        for name in (
            "scrape_catalog",
            "scrape_availability",
            "check_health",
            "dispatch_alerts",
            "prune",
        )
    )
    path = tmp_path / "config.toml"
    path.write_text(
        f"""
[vultr]
base_url = "http://127.0.0.1:9/v2"

[health]
check_vultr_api = false

{schedules}

[deliveries]
backoff_base = 0.4
backoff_cap = 2.0

[[sinks]]
name = "hook"
url = "{hook_url}"
secret_file = "{secret}"

[[alerts]]
name = "stock"
kinds = ["back_in_stock"]
sinks = ["hook"]
"""
    )
    return path


async def test_delivery_is_retried_by_the_worker_and_arrives_once(
    redis_url: str, tmp_path: Path
) -> None:
    async with HttpTarget() as receiver, queue_for(redis_url) as queue:
        receiver.reply("/hook", Reply(status=500), Reply(status=500), Reply(status=200))
        env = worker_env(
            redis_url,
            tmp_path / "state",
            VULTR_SCRAPER_CONFIG=str(config_file(tmp_path, receiver.url("/hook"))),
        )
        feed = ChangeFeed(queue, PREFIX)
        ledger = DeliveryLedger(queue, PREFIX)
        with workers(WorkerProcess(env, tmp_path, jobs_module=None)) as (worker,):
            await worker.wait_ready()

            async def dispatch() -> dict[str, Any]:
                job_id = await enqueue_job(queue, "dispatch-alerts")
                assert job_id is not None
                job = Job(job_id, queue, _deserializer=deserialize)
                result: dict[str, Any] = await job.result(timeout=WAIT)
                return result

            [old_id] = await feed.append([event("vc2-1c-1gb", True)])  # before the first run
            assert (await dispatch())["baseline"] == old_id

            [new_id] = await feed.append([event("vcg-l40s", True)])
            await feed.append([event("vcg-a100", False)])  # not watched
            second = await dispatch()
            assert (second["events"], second["enqueued"]) == (2, 1)

            async def delivered() -> bool:
                return await ledger.is_delivered("hook", new_id)

            await eventually(delivered, message=worker.output)
            # Dispatching again finds nothing new and sends nothing.
            third = await dispatch()
            assert (third["events"], third["enqueued"]) == (0, 0)

        requests = receiver.requests_to("/hook")
        assert len(requests) == 3  # 500, 500, then accepted once
        assert all(verify(SECRET, r.body, r.headers[SIGNATURE_HEADER]) for r in requests)
        assert {msgspec.json.decode(r.body)["event"]["id"] for r in requests} == {new_id}
        failed = [line for line in worker.lines() if line.get("delivery") == f"hook:{new_id}"]
        assert [line["attempt"] for line in failed] == [1, 2]
        assert all(line["retry_in"] > 0 and line["http_status"] == 500 for line in failed)
        # Each attempt is its own job: the first as dispatch queued it, then the ones it queued.
        job_ids = [f"deliver:hook:{new_id}", failed[0]["next_job"], failed[1]["next_job"]]
        for job_id in job_ids:
            assert worker.events("job.end", job_id=job_id, outcome="success"), job_id
