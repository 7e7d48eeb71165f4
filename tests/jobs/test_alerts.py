"""Saved-search alerts on a recorded sequence of catalogue changes.

The changes are made on the fake Vultr API and recorded by the real scrape jobs, so the events,
the stored catalogue and the stock the matcher reads are the ones production would have.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from redis.asyncio import Redis

from tests.fakes.vultr_api import FakeVultrAPI, make_plan
from vultr_scraper_core.config import (
    AlertConfig,
    ClientConfig,
    Config,
    Secrets,
    SinkConfig,
    VultrConfig,
)
from vultr_scraper_core.http import HttpClient, create_session
from vultr_scraper_core.store.changes import ChangeEvent, ChangeFeed, EventKind
from vultr_scraper_jobs.alerts import WATCHES, dispatch_alerts, has_plan_conditions, watches
from vultr_scraper_jobs.availability import scrape_vultr_availability
from vultr_scraper_jobs.catalog import scrape_vultr_pricing
from vultr_scraper_jobs.context import make_context

PREFIX = "vs"
L40S, A100, H100 = "vcg-l40s-16c-180g-48vram", "vcg-a100-1c-6g-4vram", "vcg-h100-12c-120g-80vram"

ALERTS = [
    # "tell me when any NVIDIA GPU plan under $2/h is in stock in fra or ams"
    AlertConfig(
        name="gpu-eu",
        kinds=["back_in_stock", "price_dropped"],
        sinks=["hook"],
        gpu_type="nvidia",
        max_hourly=Decimal("2.0"),
        regions=["fra", "ams"],
        in_stock=True,
    ),
    AlertConfig(name="new-cheap", kinds=["new_plan"], sinks=["hook"], max_monthly=Decimal(10)),
    AlertConfig(name="sold-out", kinds=["out_of_stock"], sinks=["hook"], plan="vcg-*"),
    AlertConfig(
        name="a100-fra",
        kinds=["stock_changed"],
        sinks=["hook", "chat"],
        plan="vcg-a100*",
        regions=["fra"],
    ),
    AlertConfig(name="api", kinds=["endpoint_down"], sinks=["hook", "chat"], endpoint="vultr-*"),
]


@dataclass
class Queue:
    """``ctx["enqueue"]`` with arq's refusal of an id that is already queued."""

    jobs: dict[str, tuple[str, tuple[Any, ...]]] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)

    async def __call__(
        self, job_name: str, *args: Any, job_id: str | None = None, defer_by: float | None = None
    ) -> str | None:
        assert job_id is not None
        if job_id in self.jobs:
            return None
        self.jobs[job_id] = (job_name, args)
        self.order.append(job_id)
        return job_id


@pytest.fixture
async def world(redis: Redis) -> AsyncIterator[tuple[FakeVultrAPI, Any, Queue]]:
    queue = Queue()
    async with FakeVultrAPI() as api, create_session(ClientConfig(rate_limit=0)) as session:
        config = Config(
            vultr=VultrConfig(base_url=api.base_url),
            client=ClientConfig(rate_limit=0),
            alerts=ALERTS,
            sinks=[
                SinkConfig(name="hook", url="http://h/"),
                SinkConfig(name="chat", url="http://c/"),
            ],
        )
        ctx = make_context(
            config=config,
            secrets=Secrets(),
            redis=redis,
            http=HttpClient(session, config.client),
            enqueue=queue,
        )
        yield api, ctx, queue


async def step(ctx: Any, queue: Queue, *, catalog: bool = False, stock: bool = False) -> list[Any]:
    """Scrape what changed, dispatch, and describe the delivery jobs this step queued."""
    if catalog:
        assert (await scrape_vultr_pricing(ctx))["status"] == "success"
    if stock:
        assert (await scrape_vultr_availability(ctx))["status"] == "success"
    before = len(queue.order)
    result = await dispatch_alerts(ctx)
    assert result["status"] == "success"
    events = {
        event.id: event for event in await ChangeFeed(ctx["redis"], PREFIX).read(limit=10_000)
    }
    described = []
    for job_id in queue.order[before:]:
        name, (sink, event_id, alert) = queue.jobs[job_id]
        assert name == "deliver-notification"
        assert job_id == f"deliver:{sink}:{event_id}"
        event = events[event_id]
        described.append((sink, alert, event.kind, event.subject, event.region, event.field))
    return described


async def test_alerts_match_exactly_the_expected_events(world: Any) -> None:
    api, ctx, queue = world
    # 0. The first snapshot (every plan "added", first stock check) is the baseline.
    assert await step(ctx, queue, catalog=True, stock=True) == []
    assert await step(ctx, queue) == []

    # 1. The L40S ($1.671/h) comes into stock in fra: the GPU search fires.
    api.catalogue.availability["fra"].append(L40S)
    assert await step(ctx, queue, stock=True) == [
        ("hook", "gpu-eu", EventKind.STOCK_CHANGED, L40S, "fra", "in_stock"),
    ]

    # 2. The A100 sells out in fra: "sold-out" and "a100-fra" both match; hook gets it once.
    api.catalogue.availability["fra"].remove(A100)
    assert await step(ctx, queue, stock=True) == [
        ("hook", "sold-out", EventKind.STOCK_CHANGED, A100, "fra", "in_stock"),
        ("chat", "a100-fra", EventKind.STOCK_CHANGED, A100, "fra", "in_stock"),
    ]

    # 3. The A100 comes into stock in ewr: outside every region filter.
    api.catalogue.availability["ewr"].append(A100)
    assert await step(ctx, queue, stock=True) == []

    # 4. A new H100 plan at $2.50/h, in stock in fra: too expensive for the GPU search, and
    #    not cheap enough for "new-cheap".
    h100 = make_plan(
        H100, type="vcg", vcpu_count=12, ram=122880, gpu_type="NVIDIA_H100", gpu_vram_gb=80,
        monthly_cost=1800, hourly_cost=2.5, locations=["fra"],
    )  # fmt: skip
    api.catalogue.plans.append(h100)
    api.catalogue.availability["fra"].append(H100)
    assert await step(ctx, queue, catalog=True, stock=True) == []

    # 5. Its price drops to $1.90/h (and the monthly price with it): now it matches, once
    #    per price event.
    h100.update(hourly_cost=1.9, monthly_cost=1368)
    found = await step(ctx, queue, catalog=True)
    assert sorted(found) == [
        ("hook", "gpu-eu", EventKind.PRICE_CHANGED, H100, None, "hourly_cost"),
        ("hook", "gpu-eu", EventKind.PRICE_CHANGED, H100, None, "monthly_cost"),
    ]

    # 6. A $3.50 plan appears: "new-cheap" fires; its price rising later does not.
    api.catalogue.plans.append(make_plan("vc2-1c-0.5gb", monthly_cost=3.5, hourly_cost=0.005))
    assert await step(ctx, queue, catalog=True) == [
        ("hook", "new-cheap", EventKind.PLAN_ADDED, "vc2-1c-0.5gb", None, None),
    ]
    api.catalogue.plan("vc2-1c-0.5gb").update(monthly_cost=4, hourly_cost=0.006)
    assert await step(ctx, queue, catalog=True) == []

    # 7. Endpoint events match by name pattern.
    at = datetime.now(UTC)
    await ChangeFeed(ctx["redis"], PREFIX).append(
        [
            ChangeEvent(kind=EventKind.ENDPOINT_DOWN, at=at, subject="vultr-api", new="down"),
            ChangeEvent(kind=EventKind.ENDPOINT_DOWN, at=at, subject="intranet", new="down"),
            ChangeEvent(kind=EventKind.ENDPOINT_UP, at=at, subject="vultr-api", new="up"),
        ]
    )
    assert await step(ctx, queue) == [
        ("hook", "api", EventKind.ENDPOINT_DOWN, "vultr-api", None, None),
        ("chat", "api", EventKind.ENDPOINT_DOWN, "vultr-api", None, None),
    ]

    # 8. Nothing new: nothing queued, and replaying from an old cursor queues no duplicate.
    assert await step(ctx, queue, catalog=True, stock=True) == []
    await ctx["redis"].delete(f"{PREFIX}:alerts:cursor")
    assert await step(ctx, queue) == []  # a lost cursor restarts at the newest event


async def test_cursor_replay_does_not_duplicate(world: Any) -> None:
    api, ctx, queue = world
    await step(ctx, queue, catalog=True, stock=True)
    await dispatch_alerts(ctx)
    api.catalogue.availability["fra"].append(L40S)
    await scrape_vultr_availability(ctx)
    cursor = await ctx["redis"].get(f"{PREFIX}:alerts:cursor")
    first = await dispatch_alerts(ctx)
    assert first["enqueued"] == 1
    # An interrupted run that queued its jobs but lost its cursor write: the next run finds
    # the same ids already queued.
    await ctx["redis"].set(f"{PREFIX}:alerts:cursor", cursor)
    second = await dispatch_alerts(ctx)
    assert (second["enqueued"], second["already_queued"]) == (0, 1)


def test_vocabulary() -> None:
    at = datetime(2026, 1, 1, tzinfo=UTC)

    def price(old: Any, new: Any) -> ChangeEvent:
        return ChangeEvent(kind=EventKind.PRICE_CHANGED, at=at, subject="p", old=old, new=new)

    def alert(*kinds: str) -> AlertConfig:
        return AlertConfig(name="a", kinds=list(kinds))

    assert watches(alert("price_dropped"), price("24", "20"))
    assert not watches(alert("price_dropped"), price("20", "24"))
    assert not watches(alert("price_dropped"), price(None, "24"))
    assert watches(alert("price_increased"), price("0.007", "0.0075"))
    assert watches(alert("price_changed"), price(None, "24"))
    stock = ChangeEvent(kind=EventKind.STOCK_CHANGED, at=at, subject="p", old=True, new=False)
    assert watches(alert("out_of_stock"), stock) and not watches(alert("back_in_stock"), stock)
    assert {watch.kind for watch in WATCHES.values()} == set(EventKind)
    assert not has_plan_conditions(alert("new_plan"))
    assert has_plan_conditions(AlertConfig(name="a", kinds=["new_plan"], regions=["fra"]))
