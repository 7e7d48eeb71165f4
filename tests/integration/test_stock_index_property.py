"""Property: the in-stock index always says what the per-pair states say, and the stock job
reading it writes the history the job reading every state writes.

Two trackers (two key prefixes on one real Redis) watch the same fake Vultr API on loopback.
The *indexed* one keeps its in-stock index from run to run; the *whole* one has its index
marked unbuilt before every operation, so each of its transactions reads every pair's state
and writes the whole index (the path of a store written before the index existed). Hypothesis
draws operations: plans entering and leaving stock, a region emptied (held by the stock gate,
then confirmed or not) or filled, a failed request, a region leaving the catalogue, the
operator accepting or discarding held answers, and the indexed tracker losing its index
marker and a region's set. After every operation both trackers' indexes equal the plans whose
state is in stock, and the two histories (states, intervals, held answers, change feed) are the
same, times aside.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from redis.asyncio import Redis

from tests.fakes.vultr_api import FakeVultrAPI
from vultr_scraper_core.config import (
    ClientConfig,
    Config,
    RedisConfig,
    Secrets,
    StockConfig,
    StockGateConfig,
    VultrConfig,
)
from vultr_scraper_core.http import HttpClient, HttpError, create_session
from vultr_scraper_core.store.changes import ChangeFeed
from vultr_scraper_core.store.stock import StockStore, in_stock_by_region
from vultr_scraper_jobs.availability import accept_held_stock, scrape_vultr_availability
from vultr_scraper_jobs.catalog import scrape_vultr_pricing
from vultr_scraper_jobs.context import make_context

PLANS = ["vc2-1c-1gb", "vc2-2c-4gb", "vhp-2c-4gb-amd", "vbm-4c-32gb", "vcg-a100-1c-6g-4vram"]
REGIONS = ["ewr", "fra", "ams", "sao"]


@dataclass(frozen=True)
class Op:
    # toggle, empty, fill, fail, retire, accept, discard, forget
    kind: str
    plan: str
    region: str


ops = st.lists(
    st.builds(
        Op,
        kind=st.sampled_from(
            ["toggle", "toggle", "empty", "fill", "fail", "retire", "accept", "discard", "forget"]
        ),
        plan=st.sampled_from(PLANS),
        region=st.sampled_from(REGIONS),
    ),
    min_size=1,
    max_size=8,
)


class Tracker:
    def __init__(self, api: FakeVultrAPI, redis: Redis, http: HttpClient, *, whole: bool) -> None:
        self.prefix = f"p{uuid.uuid4().hex[:8]}"
        self.redis = redis
        self.whole = whole
        self.config = Config(
            redis=RedisConfig(key_prefix=self.prefix),
            vultr=VultrConfig(base_url=api.base_url),
            client=ClientConfig(rate_limit=0, max_attempts=1),
            # A held answer may be confirmed by the very next check.
            stock=StockConfig(gate=StockGateConfig(confirm_after=0)),
        )
        self.ctx = make_context(
            config=self.config, secrets=Secrets(), redis=redis, http=http, enqueue=self._enqueue
        )
        self.store = StockStore(redis, self.prefix)

    async def _enqueue(self, job_name: str, *args: Any, **_: Any) -> str | None:
        return None  # the next check confirms

    async def _unbuild(self) -> None:
        if self.whole:
            await self.redis.delete(self.store.keys.in_stock_built)

    async def check(self) -> None:
        await self._unbuild()
        await scrape_vultr_availability(self.ctx)

    async def scrape_catalogue(self) -> None:
        try:
            await scrape_vultr_pricing(self.ctx)
        except HttpError:
            pass

    async def accept(self) -> None:
        await self._unbuild()
        await accept_held_stock(self.redis, self.config)

    async def forget(self, region: str) -> None:
        await self.redis.delete(self.store.keys.in_stock_built, self.store.keys.in_stock(region))

    async def assert_index_matches_states(self) -> None:
        index = await self.store.in_stock_index()
        if index is None:  # unbuilt: the next transaction builds it
            assert await self.redis.get(self.store.keys.in_stock_built) is None
            return
        assert index == in_stock_by_region((await self.store.load()).states)

    async def history(self) -> dict[str, Any]:
        view = await self.store.load()
        events = await ChangeFeed(self.redis, self.prefix).read(limit=100_000)
        return {
            "stock": {pair: state.in_stock for pair, state in view.states.items()},
            "intervals": {
                pair: [interval.end is None for interval in listed]
                for pair, listed in (await self.store.intervals()).items()
            },
            "held": {region: (h.checks, h.listed) for region, h in view.held.items()},
            "feed": [
                (event.kind, event.subject, event.region, event.field, event.old, event.new)
                for event in events
            ],
        }


async def apply(op: Op, api: FakeVultrAPI, trackers: list[Tracker]) -> None:
    availability = api.catalogue.availability
    if op.kind == "accept":
        for tracker in trackers:
            await tracker.accept()
        return
    if op.kind == "discard":
        for tracker in trackers:
            await tracker.store.discard_held()  # writes no state: the index stays as it is
        return
    if op.kind == "forget":
        await trackers[0].forget(op.region)
        return
    if op.kind == "toggle":
        listed = availability.setdefault(op.region, [])
        if op.plan in listed:
            listed.remove(op.plan)
        else:
            listed.append(op.plan)
    elif op.kind == "empty":
        availability[op.region] = []
    elif op.kind == "fill":
        availability[op.region] = list(PLANS)
    elif op.kind == "retire":
        api.catalogue.regions = [r for r in api.catalogue.regions if r["id"] != op.region]
        for tracker in trackers:
            await tracker.scrape_catalogue()
    for tracker in trackers:
        if op.kind == "fail":
            api.fail(f"/v2/regions/{op.region}/availability", times=1)
        await tracker.check()


async def run(redis_url: str, sequence: list[Op]) -> None:
    redis = Redis.from_url(redis_url)
    try:
        async with FakeVultrAPI() as api, create_session(ClientConfig(rate_limit=0)) as session:
            http = HttpClient(session, ClientConfig(rate_limit=0, max_attempts=1))
            trackers = [
                Tracker(api, redis, http, whole=False),
                Tracker(api, redis, http, whole=True),
            ]
            for tracker in trackers:
                await tracker.scrape_catalogue()
                await tracker.check()  # the baseline: the first check of a region is silent
            for op in sequence:
                await apply(op, api, trackers)
                for tracker in trackers:
                    await tracker.assert_index_matches_states()
                indexed, whole = trackers
                assert await indexed.history() == await whole.history(), op
            await trackers[0].check()  # a store that lost its index builds it on its next write
            assert await trackers[0].store.in_stock_index() is not None
            await trackers[0].assert_index_matches_states()
    finally:
        await redis.aclose()


@settings(
    derandomize=True,  # the same sequences on every run and machine
    deadline=None,
    max_examples=30,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(sequence=ops)
def test_the_in_stock_index_follows_the_states(redis_url: str, sequence: list[Op]) -> None:
    asyncio.run(run(redis_url, sequence))
