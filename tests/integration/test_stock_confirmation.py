"""The confirmation path: a whole region selling out, seen twice, is recorded once.

One answer that empties a region changes nothing and queues a follow-up check
(``confirm-availability``) ``stock.gate.confirm_after`` seconds later; when that check sees the
same, the sell-out is recorded once, with events that say it was confirmed.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from arq.connections import ArqRedis
from redis.asyncio import Redis

from tests.fakes.vultr_api import FakeVultrAPI
from tests.integration.job_world import jobs_on_queue
from tests.worker.processes import WorkerProcess, eventually, queue_for, worker_env, workers
from vultr_scraper_core.config import (
    AlertConfig,
    ClientConfig,
    Config,
    SinkConfig,
    StockConfig,
    StockGateConfig,
    VultrConfig,
)
from vultr_scraper_core.formats import format_instant
from vultr_scraper_core.store.changes import ChangeEvent, ChangeFeed, EventKind
from vultr_scraper_core.store.codec import utcnow
from vultr_scraper_core.store.stock import StockStore
from vultr_scraper_jobs.alerts import dispatch_alerts
from vultr_scraper_jobs.availability import confirm_availability, scrape_vultr_availability
from vultr_scraper_jobs.catalog import scrape_vultr_pricing
from vultr_scraper_worker.enqueue import enqueue_job

PREFIX = "vs"
CONFIRM_AFTER = 0.6
EWR = {"vc2-1c-1gb", "vc2-2c-4gb", "vhp-2c-4gb-amd", "vbm-4c-32gb"}


@dataclass
class World:
    api: FakeVultrAPI
    redis: Redis
    queue: ArqRedis
    ctx: dict[str, Any]

    async def stock_events(self) -> list[ChangeEvent]:
        feed = ChangeFeed(self.redis, PREFIX)
        return await feed.read(kinds={EventKind.STOCK_CHANGED}, limit=10_000)

    async def queued(self, prefix: str) -> list[tuple[str, float]]:
        entries = await self.queue.zrange("arq:queue", 0, -1, withscores=True)
        return [(key.decode(), score) for key, score in entries if key.decode().startswith(prefix)]


@pytest.fixture
async def world(redis: Redis, redis_url: str) -> AsyncIterator[World]:
    async with FakeVultrAPI() as api:
        config = Config(
            vultr=VultrConfig(base_url=api.base_url),
            client=ClientConfig(rate_limit=0),
            stock=StockConfig(gate=StockGateConfig(confirm_after=CONFIRM_AFTER)),
            alerts=[AlertConfig(name="gone", kinds=["out_of_stock"], sinks=["hook"])],
            sinks=[SinkConfig(name="hook", url="http://127.0.0.1:9/hook")],
        )
        async with jobs_on_queue(config, redis, redis_url) as (ctx, queue):
            assert (await scrape_vultr_pricing(ctx))["status"] == "success"
            for _ in range(2):
                assert (await scrape_vultr_availability(ctx))["status"] == "success"
            await dispatch_alerts(ctx)  # the baseline cursor
            yield World(api=api, redis=redis, queue=queue, ctx=ctx)


async def test_a_sell_out_seen_twice_is_recorded_once_with_events(world: World) -> None:
    world.api.catalogue.availability["ewr"] = []
    held_run = await scrape_vultr_availability(world.ctx)
    assert held_run["status"] == "quarantined" and held_run["events"] == 0
    assert list(held_run["held_regions"]) == ["ewr"]
    assert await world.stock_events() == []
    held = (await StockStore(world.redis, PREFIX).held())["ewr"]
    assert (held.checks, held.listed, held.in_stock_before) == (["emptied"], [], 4)
    assert held.confirm_at is not None
    # The follow-up check is queued for the moment the answer may be confirmed.
    ((job_id, score),) = await world.queued("confirm-availability:")
    assert job_id == f"confirm-availability:{int(held.confirm_at.timestamp() * 1000)}"
    assert abs(score / 1000 - held.confirm_at.timestamp()) < 0.01

    # A second look before the interval is not a confirmation: still nothing recorded.
    early = await scrape_vultr_availability(world.ctx)
    assert early["status"] == "quarantined" and early["events"] == 0
    assert (await StockStore(world.redis, PREFIX).held())["ewr"] == held
    assert len(await world.queued("confirm-availability:")) == 1  # no second follow-up

    await _until(held.confirm_at)
    confirmed = await confirm_availability(world.ctx)
    assert confirmed["status"] == "success" and confirmed["confirmed_regions"] == ["ewr"]
    events = await world.stock_events()
    assert sorted(event.subject for event in events) == sorted(EWR)
    assert {(event.region, event.old, event.new) for event in events} == {("ewr", True, False)}
    assert all(event.detail["confirmed"] is True for event in events)
    assert {event.detail["held_since"] for event in events} == {format_instant(held.observed_at)}
    assert await StockStore(world.redis, PREFIX).held() == {}
    intervals = await StockStore(world.redis, PREFIX).intervals(region="ewr")
    assert {pair: spans[-1].end for pair, spans in intervals.items()} == {
        f"{plan}@ewr": events[0].at for plan in EWR
    }

    # Recorded once: later checks of the same sold-out region add nothing.
    again = await scrape_vultr_availability(world.ctx)
    assert again["status"] == "success" and again["events"] == 0
    assert len(await world.stock_events()) == len(EWR)
    dispatched = await dispatch_alerts(world.ctx)
    assert dispatched["enqueued"] == len(EWR)


async def test_a_blip_is_cleared_by_the_next_good_answer(world: World) -> None:
    good = list(world.api.catalogue.availability["ewr"])
    world.api.catalogue.availability["ewr"] = []
    assert (await scrape_vultr_availability(world.ctx))["status"] == "quarantined"
    world.api.catalogue.availability["ewr"] = good
    assert (await scrape_vultr_availability(world.ctx))["status"] == "success"
    assert await StockStore(world.redis, PREFIX).held() == {}
    # The follow-up still runs, finds nothing to confirm, and records nothing.
    await _until(utcnow())
    result = await confirm_availability(world.ctx)
    assert result == {
        "status": "success",
        "regions_checked": 0,
        "confirmed_regions": [],
        "events": 0,
    }
    assert await world.stock_events() == []


async def _until(moment: datetime) -> None:
    delay = (moment - utcnow()).total_seconds()
    if delay > 0:
        await asyncio.sleep(delay + 0.05)


@pytest.mark.slow
async def test_a_real_worker_confirms_a_sell_out_by_itself(
    redis: Redis, redis_url: str, tmp_path: Path
) -> None:
    async with FakeVultrAPI() as api, queue_for(redis_url) as queue:
        off = {
            f"VULTR_SCRAPER__SCHEDULES__{name.upper()}__ENABLED": "false"
            for name in ("scrape_catalog", "scrape_availability", "check_health")
        }
        env = worker_env(
            redis_url,
            tmp_path / "state",
            VULTR_SCRAPER__VULTR__BASE_URL=api.base_url,
            VULTR_SCRAPER__CLIENT__RATE_LIMIT="0",
            VULTR_SCRAPER__STOCK__GATE__CONFIRM_AFTER="1",
            **off,
        )
        worker = WorkerProcess(env, tmp_path, jobs_module=None)
        feed = ChangeFeed(redis, PREFIX)

        async def run(job: str, job_id: str) -> None:
            await enqueue_job(queue, job, job_id=job_id)
            await eventually(
                lambda: _ended(worker, job_id), message=lambda: f"{job_id}\n{worker.output()}"
            )

        with workers(worker):
            await worker.wait_ready()
            await run("scrape-catalog", "catalog-1")
            await run("scrape-availability", "stock-1")
            await run("scrape-availability", "stock-2")
            api.catalogue.availability["ewr"] = []
            await run("scrape-availability", "stock-3")
            assert await feed.read(kinds={EventKind.STOCK_CHANGED}) == []

            async def recorded() -> bool:
                return len(await feed.read(kinds={EventKind.STOCK_CHANGED})) == len(EWR)

            def confirm_runs() -> list[dict[str, Any]]:
                return [
                    line
                    for line in worker.events("job.end")
                    if str(line.get("job_id", "")).startswith("confirm-availability:")
                ]

            async def confirm_ended() -> bool:
                return bool(confirm_runs())

            await eventually(recorded, message=worker.output)
            # The events are committed inside the job; its end line is logged just after.
            await eventually(confirm_ended, message=worker.output)
            assert [line["outcome"] for line in confirm_runs()] == ["success"]
            await run("scrape-availability", "stock-4")
        events = await feed.read(kinds={EventKind.STOCK_CHANGED})
    assert sorted(event.subject for event in events) == sorted(EWR)
    assert all(event.detail.get("confirmed") for event in events)


async def _ended(worker: WorkerProcess, job_id: str) -> bool:
    return any(line.get("job_id") == job_id for line in worker.events("job.end"))
