"""Property: any sequence of good and bad scrapes leaves the history that the good ones alone
leave.

Two trackers (two key prefixes on one real Redis) watch the same fake Vultr API on loopback.
Hypothesis draws a sequence of steps: a *good* step makes one ordinary change upstream (a price
moves, a plan enters or leaves stock in a region, or nothing) and both trackers scrape; a *bad*
step serves one bad answer (from ``test_bad_responses``) for one run, only the first tracker
scrapes it, and the API is good again. After every good step and at the end, the first
tracker's history (committed catalogue, version count, stock states and intervals, the change
feed without the catalogue's own quarantine announcements) equals the second's, times aside.
"""

from __future__ import annotations

import asyncio
import copy
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from redis.asyncio import Redis

from tests.fakes.vultr_api import FakeVultrAPI
from tests.integration import test_bad_responses as bad
from vultr_scraper_core.config import ClientConfig, Config, RedisConfig, Secrets, VultrConfig
from vultr_scraper_core.http import HttpClient, HttpError, create_session
from vultr_scraper_core.store.catalog import CatalogueStore
from vultr_scraper_core.store.changes import ChangeFeed
from vultr_scraper_core.store.stock import StockStore
from vultr_scraper_jobs.availability import scrape_vultr_availability
from vultr_scraper_jobs.catalog import scrape_vultr_pricing
from vultr_scraper_jobs.context import make_context

BAD_ANSWERS: dict[str, Callable[[FakeVultrAPI], None]] = {
    "empty stock": bad.empty_stock,
    "availability as HTML": bad.availability_as_html,
    "availability without its list": bad.availability_without_its_list,
    "availability ids in a new format": bad.availability_in_a_new_id_format,
    "every plan renamed": bad.every_plan_renamed,
    "plan ids in a new format": bad.plan_ids_in_a_new_format,
    "duplicated ids": bad.duplicated_ids,
    "prices x100": bad.prices_times_100,
    "price N/A": bad.price_not_a_number,
    "price gone": bad.price_gone,
    "locations gone": bad.locations_gone,
}
PLANS = ["vc2-1c-1gb", "vc2-2c-4gb", "vhp-2c-4gb-amd", "vcg-a100-1c-6g-4vram"]
REGIONS = ["ewr", "fra", "ams", "sao"]


@dataclass(frozen=True)
class Good:
    change: str  # "price", "stock" or "none"
    plan: str
    region: str


@dataclass(frozen=True)
class Bad:
    answer: str


steps = st.lists(
    st.one_of(
        st.builds(
            Good,
            change=st.sampled_from(["price", "stock", "none"]),
            plan=st.sampled_from(PLANS),
            region=st.sampled_from(REGIONS),
        ),
        st.builds(Bad, answer=st.sampled_from(sorted(BAD_ANSWERS))),
    ),
    min_size=1,
    max_size=6,
)


def make_good(api: FakeVultrAPI, step: Good) -> None:
    """One ordinary change: every gate lets it through."""
    if step.change == "price":
        plan = api.catalogue.plan(step.plan)
        plan["monthly_cost"] = float(Decimal(str(plan["monthly_cost"])) + 1)
    elif step.change == "stock":
        listed = api.catalogue.availability[step.region]
        if step.plan in listed:
            listed.remove(step.plan)
        else:
            listed.append(step.plan)


class Tracker:
    """The scrape jobs under one key prefix."""

    def __init__(self, api: FakeVultrAPI, redis: Redis, http: HttpClient) -> None:
        self.prefix = f"p{uuid.uuid4().hex[:8]}"
        self.redis = redis
        self.config = Config(
            redis=RedisConfig(key_prefix=self.prefix),
            vultr=VultrConfig(base_url=api.base_url),
            client=ClientConfig(rate_limit=0, max_attempts=1),
        )
        self.ctx = make_context(
            config=self.config, secrets=Secrets(), redis=redis, http=http, enqueue=self._enqueue
        )

    async def _enqueue(self, job_name: str, *args: Any, **_: Any) -> str | None:
        return None  # follow-up checks are not run here; the next step's scrape is the check

    async def scrape(self) -> None:
        try:
            await scrape_vultr_pricing(self.ctx)
        except HttpError:
            pass  # a failed run changes nothing, which is what is compared
        await scrape_vultr_availability(self.ctx)

    async def history(self) -> dict[str, Any]:
        """Everything that is history, with the moments it happened left out."""
        committed = await CatalogueStore(self.redis, self.prefix).load()
        stock = StockStore(self.redis, self.prefix)
        view = await stock.load()
        events = await ChangeFeed(self.redis, self.prefix).read(limit=100_000)
        return {
            "catalogue": msgspec.to_builtins(committed.catalogue),
            "versions": await self.redis.zcard(f"{self.prefix}:catalog:versions"),
            "stock": {pair: state.in_stock for pair, state in view.states.items()},
            "intervals": {
                pair: [interval.end is None for interval in listed]
                for pair, listed in (await stock.intervals()).items()
            },
            "feed": [
                (event.kind, event.subject, event.region, event.field, event.old, event.new)
                for event in events
                if event.kind not in bad.CONDITION_KINDS
            ],
        }


async def run(redis_url: str, sequence: list[Good | Bad]) -> None:
    redis = Redis.from_url(redis_url)
    try:
        async with FakeVultrAPI() as api, create_session(ClientConfig(rate_limit=0)) as session:
            http = HttpClient(session, ClientConfig(rate_limit=0, max_attempts=1))
            mixed, good_only = Tracker(api, redis, http), Tracker(api, redis, http)
            for _ in range(2):  # the baseline: the first check of a region is silent
                await mixed.scrape()
                await good_only.scrape()
            for step in sequence:
                if isinstance(step, Good):
                    make_good(api, step)
                    await mixed.scrape()
                    await good_only.scrape()
                    assert await mixed.history() == await good_only.history(), step
                    continue
                saved = copy.deepcopy(api.catalogue)
                BAD_ANSWERS[step.answer](api)
                await mixed.scrape()
                api.clear_faults()
                api.catalogue = saved
            assert await mixed.history() == await good_only.history()
    finally:
        await redis.aclose()


@settings(
    derandomize=True,  # the same sequences on every run and machine
    deadline=None,
    max_examples=25,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(sequence=steps)
def test_bad_scrapes_leave_the_history_of_the_good_ones(
    redis_url: str, sequence: list[Good | Bad]
) -> None:
    asyncio.run(run(redis_url, sequence))
