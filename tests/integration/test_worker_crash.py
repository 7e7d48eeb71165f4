"""SIGKILL in the middle of a catalogue scrape, with the registry's jobs and every default
lease as shipped: a second worker started after the kill reruns the job when the killed run's
lease ends (the scrape's timeout + 10 s, about a minute, not the longest job's half hour), and
the stored catalogue is consistent throughout (old snapshot or new, never half; no duplicate
events)."""

from __future__ import annotations

import signal
import time
from collections import Counter
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest
from arq.connections import ArqRedis
from arq.constants import in_progress_key_prefix

from tests.fakes.vultr_api import FakeVultrAPI, make_plan, on_page
from tests.worker.processes import WorkerProcess, eventually, queue_for, worker_env, workers
from vultr_scraper_core.config import SchedulesConfig, load_config
from vultr_scraper_core.store.catalog import CatalogueStore
from vultr_scraper_core.store.changes import ChangeFeed
from vultr_scraper_worker.enqueue import enqueue_job
from vultr_scraper_worker.project_worker import LEASE_MARGIN
from vultr_scraper_worker.records.runs import JobHistory

pytestmark = pytest.mark.slow
PREFIX = "vs"
# No cron runs beside the test's own jobs; every timeout (and so every lease) stays the default.
NO_SCHEDULES = {
    f"VULTR_SCRAPER__SCHEDULES__{name.upper()}__ENABLED": "false"
    for name in SchedulesConfig.__struct_fields__
}
# How late after its lease ends a rerun may start: polls every 0.05 s, on a loaded machine.
RERUN_SLACK = 10.0


async def _succeeded(queue: ArqRedis, job_id: str) -> bool:
    runs = await JobHistory(queue, PREFIX).recent("scrape-catalog")
    return any(run.job_id == job_id and run.outcome == "success" for run in runs)


async def test_sigkill_mid_scrape_reruns_and_leaves_a_consistent_catalogue(
    redis_url: str, tmp_path: Path
) -> None:
    async with FakeVultrAPI() as api, queue_for(redis_url) as queue:
        api.max_per_page = 2  # six plans: three pages, so the scrape can be cut in the middle
        env = worker_env(
            redis_url,
            tmp_path / "state",
            VULTR_SCRAPER__VULTR__BASE_URL=api.base_url,
            VULTR_SCRAPER__CLIENT__RATE_LIMIT="0",
            **NO_SCHEDULES,
        )
        lease = load_config(None, environ={}).config.schedules.scrape_catalog.timeout
        lease += LEASE_MARGIN
        assert lease <= 120, "a killed scrape must run again within about two minutes"
        store = CatalogueStore(queue, PREFIX)
        feed = ChangeFeed(queue, PREFIX)

        first = WorkerProcess(env, tmp_path, name="first", jobs_module=None)
        with workers(first):
            await first.wait_ready()
            baseline_id = await enqueue_job(queue, "scrape-catalog", job_id="baseline")
            assert baseline_id == "baseline"
            await eventually(lambda: _succeeded(queue, "baseline"), message=first.output)
            before = await store.load()
            events_before = await feed.count()
            assert set(before.catalogue.plans) == {plan["id"] for plan in api.catalogue.plans}

            # Upstream changes: one price, one new plan. The scrape that should record them
            # hangs on the second page of plans, and the worker is killed there.
            api.catalogue.plan("vc2-1c-1gb")["monthly_cost"] = 6
            api.catalogue.plans.append(make_plan("vc2-4c-8gb", vcpu_count=4, ram=8192))
            api.slow(on_page("/v2/plans", 2), 8.0)
            pages_before = api.count("/v2/plans")
            job_id = await enqueue_job(queue, "scrape-catalog", job_id="interrupted")
            assert job_id == "interrupted"

            async def on_second_page() -> bool:
                return api.count("/v2/plans") >= pages_before + 2

            await eventually(on_second_page, message=first.output)
            first.send(signal.SIGKILL)
            assert await first.wait_exit() == -signal.SIGKILL
            # The killed run's lease: the scrape's own, set when it was claimed moments ago.
            remaining = await queue.pttl(in_progress_key_prefix + "interrupted") / 1000
            lease_ends = time.time() + remaining
            assert lease - 30 < remaining <= lease, (remaining, lease)

        # Nothing of the interrupted scrape is visible: same snapshot, same version, no events.
        after_kill = await store.load()
        assert after_kill.meta.version == before.meta.version
        assert after_kill.catalogue == before.catalogue
        assert await feed.count() == events_before
        assert first.events("job.start", job_id="interrupted")
        assert not first.events("job.end", job_id="interrupted")

        second = WorkerProcess(env, tmp_path, name="second", jobs_module=None)
        with workers(second):
            await second.wait_ready()
            await eventually(
                lambda: _succeeded(queue, "interrupted"),
                timeout=remaining + RERUN_SLACK + 60,
                message=second.output,
            )
        (start,) = second.events("job.start", job_id="interrupted")
        (rerun,) = second.events("job.end", job_id="interrupted")
        assert rerun["try"] == 2 and rerun["outcome"] == "success"
        # Not before the lease ended (it held), and soon after it (it is what bounds recovery).
        started = datetime.fromisoformat(start["time"]).timestamp()
        assert lease_ends - 1 <= started <= lease_ends + RERUN_SLACK, started - lease_ends

        final = await store.load()
        assert final.meta.version == before.meta.version + 1
        assert set(final.catalogue.plans) == {plan["id"] for plan in api.catalogue.plans}
        assert final.catalogue.plans["vc2-1c-1gb"].monthly_cost == Decimal(6)
        new_events = (await feed.read(limit=1000))[events_before:]
        by_change = Counter((event.kind, event.subject, event.field) for event in new_events)
        assert by_change[("plan_added", "vc2-4c-8gb", None)] == 1
        assert by_change[("price_changed", "vc2-1c-1gb", "monthly_cost")] == 1
        assert all(count == 1 for count in by_change.values()), by_change
