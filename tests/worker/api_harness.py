"""A running HTTP API on the test's private Redis, for the API, metrics and feed tests.

``running_api`` starts the real server (``start_http_server``) on a free loopback port with a
configuration built for the test, and yields an ``Api`` with an aiohttp client session. The job
plans are test doubles (the API only reads their names, descriptions and schedules).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import aiohttp
from aiohttp import ClientResponse
from redis.asyncio import Redis

from vultr_scraper_core.config import (
    Config,
    HealthConfig,
    HttpConfig,
    LoadedConfig,
    RedisConfig,
    Secrets,
    SinkConfig,
)
from vultr_scraper_core.config.schema import HistoryConfig
from vultr_scraper_core.models import Catalogue, CloudPlan, Region
from vultr_scraper_core.store.catalog import CatalogueStore, QuarantineInfo
from vultr_scraper_core.store.changes import ChangeEvent, ChangeFeed
from vultr_scraper_core.store.codec import encode
from vultr_scraper_core.store.stock import (
    HeldStock,
    Interval,
    RegionCheck,
    StockState,
    StockStore,
    pair_key,
)
from vultr_scraper_jobs.registry import JobSpec
from vultr_scraper_worker.api.server import HttpServerHandle, start_http_server, stop_http_server
from vultr_scraper_worker.api.state import STATE_KEY, ApiState
from vultr_scraper_worker.enqueue import close_client, deadline_client, queue_client
from vultr_scraper_worker.plans import JobPlan, JobSet, plan_jobs
from vultr_scraper_worker.records.failed import FailedJob, FailedJobs
from vultr_scraper_worker.records.runs import JobHistory, RunRecord

TOKEN = "test-token-5f2c9d1e8a7b4c3d"
PREFIX = "vs"


async def _noop(ctx: dict[Any, Any]) -> dict[str, Any]:
    return {"status": "success"}


async def _with_arguments(ctx: dict[Any, Any], sink: str, event_id: str) -> dict[str, Any]:
    return {"status": "success"}


SPECS = [
    JobSpec("scrape-catalog", _noop, "Fetch the catalogue", schedule="scrape_catalog"),
    JobSpec("check-health", _noop, "Probe endpoints", schedule="check_health"),
    JobSpec("deliver-notification", _with_arguments, "Send one notification (args: SINK EVENT)"),
]


def make_config(
    redis_url: str,
    health: HealthConfig | None = None,
    history: HistoryConfig | None = None,
    sinks: Sequence[SinkConfig] = (),
    **http: Any,
) -> Config:
    # No login throttle unless a test asks for one: the fuzzer sends many wrong tokens from
    # one address by design (test_login_throttle.py tests the throttle itself).
    return Config(
        redis=RedisConfig(url=redis_url, key_prefix=PREFIX),
        http=HttpConfig(**{"listen": "127.0.0.1:0", "max_failed_logins": 0, **http}),
        health=health or HealthConfig(),
        history=history or HistoryConfig(),
        sinks=list(sinks),
    )


def make_plans(config: Config) -> list[JobPlan]:
    return plan_jobs(config, JobSet(SPECS))


@dataclass
class Api:
    url: str
    session: aiohttp.ClientSession
    handle: HttpServerHandle
    config: Config

    @property
    def state(self) -> ApiState:
        return self.handle.app[STATE_KEY]

    def request(
        self,
        method: str,
        path: str,
        *,
        token: str | None = None,
        headers: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> Any:
        sent = dict(headers or {})
        if token is not None:
            sent["Authorization"] = f"Bearer {token}"
        return self.session.request(
            method, self.url + path, headers=sent, allow_redirects=False, **kwargs
        )

    async def json(self, method: str, path: str, status: int = 200, **kwargs: Any) -> Any:
        async with self.request(method, path, **kwargs) as response:
            body = await response.text()
            assert response.status == status, f"{method} {path}: {response.status} {body}"
            # Errors are RFC 9457 problem documents; /healthz's 503 is its own document.
            problem = status >= 400 and not path.startswith("/healthz")
            expected = "application/problem+json" if problem else "application/json"
            assert response.content_type == expected, response.content_type
            return await response.json()

    async def text(self, path: str, status: int = 200, **kwargs: Any) -> tuple[ClientResponse, str]:
        async with self.request("GET", path, **kwargs) as response:
            body = await response.text()
            assert response.status == status, f"GET {path}: {response.status} {body}"
            return response, body


@asynccontextmanager
async def running_api(
    redis_url: str,
    *,
    token: str | None = TOKEN,
    outage_budget: float = 5.0,
    health: HealthConfig | None = None,
    history: HistoryConfig | None = None,
    sinks: Sequence[SinkConfig] = (),
    **http: Any,
) -> AsyncIterator[Api]:
    config = make_config(redis_url, health, history, sinks, **http)
    worker_queue = queue_client(
        redis_url, queue_name=config.redis.queue_name, outage_budget=outage_budget
    )
    # As the worker serves it: the API's own client, every call with [http] redis_timeout.
    queue = deadline_client(
        redis_url, config.http.redis_timeout, queue_name=config.redis.queue_name
    )
    loaded = LoadedConfig(config=config, secrets=Secrets(http_token=token), source="test")
    handle = await start_http_server(ApiState.create(loaded, queue, make_plans(config)))
    assert handle is not None
    try:
        jar = aiohttp.CookieJar(unsafe=True)  # cookies for 127.0.0.1 too
        async with aiohttp.ClientSession(cookie_jar=jar) as session:
            yield Api(url=handle.url, session=session, handle=handle, config=config)
    finally:
        await stop_http_server(handle)
        await close_client(queue)
        await close_client(worker_queue)


# -- seeding the stores through their own write APIs ------------------------------------------


def cloud_plan(plan_id: str, monthly: str, *, locations: list[str], **fields: Any) -> CloudPlan:
    return CloudPlan(
        id=plan_id,
        vcpu_count=fields.pop("vcpu_count", 1),
        ram=fields.pop("ram", 1024),
        monthly_cost=Decimal(monthly),
        hourly_cost=fields.pop("hourly_cost", Decimal(monthly) / 730),
        type=fields.pop("type", "vc2"),
        locations=locations,
        **fields,
    )


REGIONS = {
    "fra": Region(id="fra", city="Frankfurt", country="DE"),
    "ewr": Region(id="ewr", city="New Jersey", country="US"),
}


async def commit_catalogue(
    redis: Redis,
    plans: list[CloudPlan],
    *,
    at: datetime,
    events: list[ChangeEvent] | None = None,
    regions: dict[str, Region] | None = None,
) -> None:
    store = CatalogueStore(redis, PREFIX)
    catalogue = Catalogue(plans={plan.id: plan for plan in plans}, regions=regions or REGIONS)
    async with store.transaction() as tx:
        tx.commit(catalogue, events or [], fetched_at=at, committed_at=at, shapes={})
        assert await tx.execute()


async def set_stock(redis: Redis, in_stock: dict[tuple[str, str], bool], *, at: datetime) -> None:
    """Stock state per (plan, region), every region checked at ``at``."""
    store = StockStore(redis, PREFIX)
    states = {
        pair_key(plan, region): StockState(in_stock=flag, since=at, first_seen=at)
        for (plan, region), flag in in_stock.items()
    }
    intervals = {
        pair_key(plan, region): [Interval(start=at)]
        for (plan, region), flag in in_stock.items()
        if flag
    }
    checked = {region: RegionCheck(first_checked=at, last_checked=at) for _, region in in_stock}
    async with store.transaction() as tx:
        tx.stage(states=states, intervals=intervals, regions=checked, events=[])
        assert await tx.execute()


async def hold_stock(redis: Redis, region: str, *, at: datetime, reasons: list[str]) -> None:
    """A region's availability answer held back by the stock gate, written as the job does."""
    held = HeldStock(
        region=region,
        observed_at=at,
        checks=["emptied"],
        reasons=reasons,
        listed=[],
        in_stock_before=4,
        confirm_at=at + timedelta(minutes=5),
    )
    async with StockStore(redis, PREFIX).transaction() as tx:
        tx.stage(states={}, intervals={}, regions={}, events=[], hold=[held])
        assert await tx.execute()


async def quarantine(redis: Redis, *, at: datetime, reasons: list[str]) -> None:
    """A held-back snapshot, as the store's readers see it (its ``info``)."""
    info = QuarantineInfo(fetched_at=at, quarantined_at=at, reasons=reasons, complete=True)
    keys = CatalogueStore(redis, PREFIX).keys
    await redis.hset(keys.quarantine, "info", encode(info))  # type: ignore[misc,arg-type]


async def add_events(redis: Redis, events: list[ChangeEvent]) -> list[str]:
    return await ChangeFeed(redis, PREFIX).append(events)


def event(kind: str, subject: str, *, at: datetime, **fields: Any) -> ChangeEvent:
    return ChangeEvent(kind=kind, at=at, subject=subject, **fields)


async def add_failed_job(
    redis: Redis, job_id: str, function: str = "scrape-catalog", **fields: Any
) -> FailedJob:
    record = FailedJob(
        id=job_id,
        function=function,
        error=fields.pop("error", "HTTP 404 from https://api.vultr.com/v2/plans: Not Found"),
        error_type=fields.pop("error_type", "PermanentHttpError"),
        tries=fields.pop("tries", 1),
        failed_at=fields.pop("failed_at", time.time()),
        **fields,
    )
    await FailedJobs(redis, PREFIX).add(record)
    return record


async def record_run(
    redis: Redis, function: str, outcome: str, duration: float, *, end: float | None = None
) -> RunRecord:
    finished = end if end is not None else time.time()
    run = RunRecord(
        function=function,
        job_id=f"{function}:{int(finished * 1000)}",
        job_try=1,
        start=finished - duration,
        end=finished,
        duration=duration,
        outcome=outcome,
        error="boom" if outcome == "failed" else None,
    )
    await JobHistory(redis, PREFIX).record(run)
    return run
