"""One bad upstream answer rewrites no history and queues no notification.

Each case serves one bad answer from the fake Vultr API on loopback, runs the real jobs on a
real Redis (scrape-catalog, scrape-availability, dispatch-alerts, whose deliveries go to a real
arq queue), and shows that

* the committed catalogue, its versions, the stock state and intervals, the change feed and
  the queued deliveries are exactly as before;
* the reason is visible (the quarantine, the held stock answer, or the job's error);
* the next good scrape is clean: no event, nothing held, the same history.

Before the bad answer, one ordinary change is scraped and dispatched, which shows that the
alert path is live: a bad answer that got through would queue deliveries.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import msgspec
import pytest
from arq.connections import ArqRedis
from redis.asyncio import Redis

from tests.fakes.vultr_api import JSON, FakeVultrAPI
from tests.integration.job_world import jobs_on_queue
from vultr_scraper_core.config import (
    AlertConfig,
    ClientConfig,
    Config,
    SinkConfig,
    VultrConfig,
)
from vultr_scraper_core.http import HttpError
from vultr_scraper_core.store.catalog import CatalogueStore
from vultr_scraper_core.store.changes import ChangeEvent, ChangeFeed, EventKind
from vultr_scraper_core.store.stock import StockStore
from vultr_scraper_jobs.alerts import dispatch_alerts
from vultr_scraper_jobs.availability import scrape_vultr_availability
from vultr_scraper_jobs.catalog import accept_quarantine, scrape_vultr_pricing

PREFIX = "vs"
EVERYTHING = [
    "new_plan",
    "plan_retired",
    "price_changed",
    "stock_changed",
    "spec_changed",
    "region_added",
    "region_removed",
    "schema_drift",
]


@dataclass
class World:
    api: FakeVultrAPI
    redis: Redis
    queue: ArqRedis
    ctx: dict[str, Any]

    async def scrape(self) -> tuple[dict[str, Any] | BaseException, dict[str, Any]]:
        """Both scrapes and a dispatch; a job that fails gives its exception."""
        catalog: dict[str, Any] | BaseException
        try:
            catalog = await scrape_vultr_pricing(self.ctx)
        except HttpError as error:
            catalog = error
        stock = await scrape_vultr_availability(self.ctx)
        assert (await dispatch_alerts(self.ctx))["status"] == "success"
        return catalog, stock

    async def history(self) -> dict[str, Any]:
        """Everything that is history or would notify someone (not check times or caches)."""
        committed = await CatalogueStore(self.redis, PREFIX).load()
        r = self.redis
        deliveries = [
            key.decode()
            for key in await self.queue.zrange("arq:queue", 0, -1)
            if not key.decode().startswith("confirm-availability:")
        ]
        return {
            "catalogue": msgspec.to_builtins(committed.catalogue),
            "versions": sorted(await r.zrange(f"{PREFIX}:catalog:versions", 0, -1)),
            "stock": await r.hgetall(f"{PREFIX}:stock:state"),  # type: ignore[misc]
            "intervals": await r.hgetall(f"{PREFIX}:stock:intervals"),  # type: ignore[misc]
            "flips": await r.zrange(f"{PREFIX}:stock:flips", 0, -1),
            "feed": [_event(e) for e in await self.events() if e.kind not in CONDITION_KINDS],
            "queued": sorted(deliveries),
            "delivered": sorted(await r.keys(f"{PREFIX}:delivery:*")),
        }

    async def conditions(self) -> list[str]:
        """The kinds of the catalogue's condition events in the feed, oldest first."""
        return [str(e.kind) for e in await self.events() if e.kind in CONDITION_KINDS]

    async def events(self) -> list[ChangeEvent]:
        return await ChangeFeed(self.redis, PREFIX).read(limit=100_000)


# The catalogue's own condition (held back / released) is announced in the feed by design: it is
# how a person learns of a quarantine. It is not history, so it is compared on its own.
CONDITION_KINDS = {EventKind.CATALOG_QUARANTINED, EventKind.QUARANTINE_CLEARED}


def _event(event: ChangeEvent) -> dict[str, Any]:
    return msgspec.to_builtins(event)  # type: ignore[no-any-return]


@pytest.fixture
async def world(redis: Redis, redis_url: str) -> AsyncIterator[World]:
    async with FakeVultrAPI() as api:
        config = Config(
            vultr=VultrConfig(base_url=api.base_url),
            client=ClientConfig(rate_limit=0, max_attempts=2, backoff_base=0.001),
            alerts=[AlertConfig(name="all", kinds=EVERYTHING, sinks=["hook"])],
            sinks=[SinkConfig(name="hook", url="http://127.0.0.1:9/hook")],
        )
        async with jobs_on_queue(config, redis, redis_url) as (ctx, queue):
            world = World(api=api, redis=redis, queue=queue, ctx=ctx)
            await _baseline(world)
            yield world


async def _baseline(world: World) -> None:
    """Two rounds (the first check of each region is silent), then one ordinary change that
    reaches the delivery queue."""
    for _ in range(2):
        catalog, stock = await world.scrape()
        assert isinstance(catalog, dict) and catalog["status"] == "success"
        assert stock["status"] == "success"
    queued = await world.queue.zcard("arq:queue")
    world.api.catalogue.plan("vc2-2c-4gb")["monthly_cost"] = 18
    world.api.catalogue.availability["fra"].remove("vcg-a100-1c-6g-4vram")
    await world.scrape()
    assert await world.queue.zcard("arq:queue") == queued + 2  # the alert path is live


# -- the bad answers --------------------------------------------------------------------------


def empty_stock(api: FakeVultrAPI) -> None:
    for region in api.catalogue.availability:
        api.catalogue.availability[region] = []


def availability_as_html(api: FakeVultrAPI) -> None:
    api.fail("/v2/regions/ewr/availability", 200, html=True, times=None)


def availability_without_its_list(api: FakeVultrAPI) -> None:
    api.fail(
        "/v2/regions/ewr/availability",
        200,
        body=b'{"plans": ["vc2-1c-1gb"], "available_vpc_only_plans": []}',
        times=None,
    )


def availability_missing_for_a_region(api: FakeVultrAPI) -> None:
    api.fail("/v2/regions/fra/availability", 404, times=None)


def availability_cut_short(api: FakeVultrAPI) -> None:
    api.truncate("/v2/regions/ewr/availability", times=None)


def availability_not_a_list_of_ids(api: FakeVultrAPI) -> None:
    api.fail(
        "/v2/regions/ewr/availability",
        200,
        body=b'{"available_plans": [{"id": "vc2-1c-1gb"}, 7]}',
        times=None,
    )


def availability_in_a_new_id_format(api: FakeVultrAPI) -> None:
    for region, listed in api.catalogue.availability.items():
        api.catalogue.availability[region] = [_new_format(plan) for plan in listed]


def huge_plans_page(api: FakeVultrAPI) -> None:
    api.flood("/v2/plans", 50_000_000, times=None)


def thousands_of_junk_plans(api: FakeVultrAPI) -> None:
    api.flood("/v2/plans", 3_000_000, announce=False, times=None)  # under the 4 MiB cap


def every_plan_renamed(api: FakeVultrAPI) -> None:
    for plan in api.catalogue.plans:
        plan["id"] = f"renamed-{plan['id']}"


def plan_ids_in_a_new_format(api: FakeVultrAPI) -> None:
    for plan in api.catalogue.plans:
        plan["id"] = _new_format(plan["id"])
    availability_in_a_new_id_format(api)


def duplicated_ids(api: FakeVultrAPI) -> None:
    copies = [dict(plan, monthly_cost=1) for plan in api.catalogue.plans]
    api.catalogue.plans.extend(copies)


def prices_times_100(api: FakeVultrAPI) -> None:
    for plan in api.catalogue.plans:
        for kind in ("monthly_cost", "hourly_cost"):
            plan[kind] = float(Decimal(str(plan[kind])) * 100)


def price_not_a_number(api: FakeVultrAPI) -> None:
    api.catalogue.plan("vc2-1c-1gb")["monthly_cost"] = "N/A"


def price_gone(api: FakeVultrAPI) -> None:
    del api.catalogue.plan("vc2-1c-1gb")["monthly_cost"]


def locations_gone(api: FakeVultrAPI) -> None:
    del api.catalogue.plan("vc2-1c-1gb")["locations"]


def _new_format(plan_id: str) -> str:
    return plan_id.upper().replace("-", "_")


@dataclass(frozen=True)
class Case:
    serve: Callable[[FakeVultrAPI], None]
    catalog: str  # expected outcome: "success", "quarantined" or "failed"
    stock: str
    reason: str  # a pattern the visible reason must match


CASES = {
    "empty stock answer": Case(empty_stock, "success", "quarantined", r"ewr: reports no plan"),
    "availability as HTML": Case(
        availability_as_html, "success", "success", r"ewr: request failed: .*got text/html"
    ),
    "availability without its list": Case(
        availability_without_its_list, "success", "quarantined", r"has no available_plans list"
    ),
    "availability missing for a region": Case(
        availability_missing_for_a_region, "success", "success", r"fra: request failed: .*404"
    ),
    "availability cut short": Case(
        availability_cut_short, "success", "success", r"ewr: request failed"
    ),
    "availability not a list of ids": Case(
        availability_not_a_list_of_ids, "success", "quarantined", r"ewr: .*available_plans"
    ),
    "availability ids in a new format": Case(
        availability_in_a_new_id_format, "success", "quarantined", r"changed stock state"
    ),
    "50 MB plans page": Case(
        huge_plans_page,
        "failed",
        "success",
        r"larger than the cap of 4194304 bytes \(vultr\.max_response_bytes\)",
    ),
    "thousands of junk plans": Case(
        thousands_of_junk_plans, "quarantined", "success", r"plans: \d+ items, up from 6"
    ),
    "every plan renamed": Case(
        every_plan_renamed, "quarantined", "success", r"6 ids retired and 6 added"
    ),
    "plan ids in a new format": Case(
        plan_ids_in_a_new_format, "quarantined", "quarantined", r"catalog\.gate\.max_turnover"
    ),
    "duplicated ids": Case(duplicated_ids, "quarantined", "success", r"listed twice"),
    "prices x100": Case(prices_times_100, "quarantined", "success", r"x100\.00"),
    "price N/A": Case(
        price_not_a_number, "quarantined", "success", r"monthly_cost 5 -> unreadable 'N/A'"
    ),
    "price gone": Case(price_gone, "quarantined", "success", r"monthly_cost 5 -> missing"),
    "locations gone": Case(locations_gone, "quarantined", "success", r"vc2-1c-1gb locations"),
}


def _status(result: dict[str, Any] | BaseException) -> str:
    return "failed" if isinstance(result, BaseException) else str(result["status"])


async def visible_reasons(world: World, catalog: dict[str, Any] | BaseException) -> str:
    """Everything a person can read about what was held back and why."""
    found = [str(catalog)] if isinstance(catalog, BaseException) else []
    info = await CatalogueStore(world.redis, PREFIX).quarantine_info()
    if info is not None:
        found.extend(info.reasons)
    for held in (await StockStore(world.redis, PREFIX).held()).values():
        found.extend(held.reasons)
    return "\n".join(found)


@pytest.mark.parametrize("case", CASES.values(), ids=list(CASES))
async def test_a_bad_answer_changes_nothing_and_the_next_good_one_is_clean(
    world: World, case: Case
) -> None:
    before = await world.history()
    good_plans: list[JSON] = [dict(plan) for plan in world.api.catalogue.plans]
    good_stock = {region: list(plans) for region, plans in world.api.catalogue.availability.items()}

    conditions_before = await world.conditions()
    case.serve(world.api)
    catalog, stock = await world.scrape()
    assert (_status(catalog), _status(stock)) == (case.catalog, case.stock)
    assert await world.history() == before
    held = ["catalog_quarantined"] if case.catalog == "quarantined" else []
    assert await world.conditions() == [*conditions_before, *held]
    assert re.search(case.reason, await visible_reasons(world, catalog)), await visible_reasons(
        world, catalog
    )

    world.api.clear_faults()
    world.api.catalogue.plans = good_plans
    world.api.catalogue.availability = good_stock
    catalog, stock = await world.scrape()
    assert (_status(catalog), _status(stock)) == ("success", "success")
    assert isinstance(catalog, dict) and catalog["events"] == 0 and stock["events"] == 0
    assert await world.history() == before
    assert await visible_reasons(world, catalog) == ""
    released = ["quarantine_cleared"] if held else []
    assert await world.conditions() == [*conditions_before, *held, *released]


async def test_an_accepted_unreadable_price_is_never_a_price_change(world: World) -> None:
    price_not_a_number(world.api)
    catalog, _ = await world.scrape()
    assert _status(catalog) == "quarantined"
    feed = len(await world.events())

    accepted = await accept_quarantine(world.redis, world.ctx["config"])
    assert accepted["status"] == "success"
    new = (await world.events())[feed:]
    # Reported once as drift of the field's JSON type, never as a price change.
    assert [(event.kind, event.field) for event in new] == [
        (EventKind.SCHEMA_DRIFT, "monthly_cost")
    ]
    plan = (await CatalogueStore(world.redis, PREFIX).load()).catalogue.plans["vc2-1c-1gb"]
    assert plan.monthly_cost == Decimal(5) and "monthly_cost" not in plan.extra

    world.api.catalogue.plan("vc2-1c-1gb")["monthly_cost"] = 5
    catalog, _ = await world.scrape()
    assert isinstance(catalog, dict) and catalog["events"] == 0  # and none on the way back


async def test_a_new_field_on_every_plan_is_one_event_and_one_delivery(world: World) -> None:
    queued = await world.queue.zcard("arq:queue")
    feed = len(await world.events())
    for plan in world.api.catalogue.plans:
        plan["energy_rating"] = "A"
    catalog, _ = await world.scrape()
    assert isinstance(catalog, dict) and catalog["status"] == "success"
    new = (await world.events())[feed:]
    assert [(event.kind, event.field) for event in new] == [
        (EventKind.SCHEMA_DRIFT, "energy_rating")
    ]  # and no spec_changed per plan, which the alert also watches
    assert await world.queue.zcard("arq:queue") == queued + 1
    stored = (await CatalogueStore(world.redis, PREFIX).load()).catalogue.plans["vc2-1c-1gb"]
    assert stored.extra["energy_rating"] == "A"  # the values are still stored
