"""Alerts on the rest of the catalogue: the new kinds, and the ``collections`` / ``subject`` /
``regions`` filters, end to end from a scrape of the fake Vultr API to the delivery queue."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from redis.asyncio import Redis

from tests.fakes.vultr_api import FakeVultrAPI, make_app
from tests.jobs.test_alerts import Queue
from vultr_scraper_core.config import (
    AlertConfig,
    ClientConfig,
    Config,
    Secrets,
    SinkConfig,
    VultrConfig,
)
from vultr_scraper_core.config.schema import problems
from vultr_scraper_core.store.changes import ChangeEvent, ChangeFeed, EventKind
from vultr_scraper_jobs.alerts import PlanAttributes, dispatch_alerts, matches
from vultr_scraper_jobs.catalog import scrape_vultr_pricing
from vultr_scraper_jobs.context import make_context

AT = datetime(2026, 12, 1, tzinfo=UTC)
KEY = "test-api-key"

ALERTS = [
    # "tell me when Singapore or New Jersey start offering load balancers"
    AlertConfig(
        name="lb",
        kinds=["region_service_added"],
        sinks=["hook"],
        subject="load_balancers",
        regions=["ewr", "sgp"],
    ),
    AlertConfig(name="apps", kinds=["app_added", "app_removed"], sinks=["hook"]),
    AlertConfig(name="k8s", kinds=["k8s_version_added"], sinks=["hook"], subject="v1.3*"),
    AlertConfig(
        name="s3-fra", kinds=["storage_availability_changed"], sinks=["hook"], regions=["fra"]
    ),
    AlertConfig(
        name="db-prices", kinds=["price_changed"], sinks=["hook"], collections=["databases"]
    ),
]


@pytest.fixture
async def world(redis: Redis) -> AsyncIterator[tuple[FakeVultrAPI, dict[str, Any], Queue]]:
    from vultr_scraper_core.http import HttpClient, create_session

    queue = Queue()
    async with FakeVultrAPI() as api, create_session(ClientConfig(rate_limit=0)) as session:
        config = Config(
            vultr=VultrConfig(base_url=api.base_url),
            client=ClientConfig(rate_limit=0),
            alerts=ALERTS,
            sinks=[SinkConfig(name="hook", url="http://h/")],
        )
        ctx = make_context(
            config=config,
            secrets=Secrets(vultr_api_key=KEY),
            redis=redis,
            http=HttpClient(session, config.client),
            enqueue=queue,
        )
        yield api, ctx, queue


async def _step(ctx: dict[str, Any], queue: Queue) -> list[tuple[str, str, str, str | None]]:
    assert (await scrape_vultr_pricing(ctx))["status"] == "success"
    before = len(queue.order)
    assert (await dispatch_alerts(ctx))["status"] == "success"
    events = {e.id: e for e in await ChangeFeed(ctx["redis"], "vs").read(limit=10_000)}
    found = []
    for job_id in queue.order[before:]:
        _, (_, event_id, alert) = queue.jobs[job_id]
        event = events[event_id]
        found.append((alert, str(event.kind), event.subject, event.field))
    return sorted(found)


async def test_catalogue_alerts_reach_the_queue_filtered(world: Any) -> None:
    api, ctx, queue = world
    assert await _step(ctx, queue) == []  # the first snapshot is the baseline
    catalogue = api.catalogue
    catalogue.regions[0]["options"].append("load_balancers")  # ewr: watched
    catalogue.regions[1]["options"].append("load_balancers")  # fra: not in regions
    catalogue.regions[0]["options"].append("vpc")  # ewr, but another service
    catalogue.apps.append(make_app(7, "Gitea"))
    catalogue.k8s_versions.insert(0, "v1.34.0+1")
    catalogue.storage_clusters[2]["deploy"] = "yes"  # fra
    catalogue.storage_clusters[0]["deploy"] = "no"  # ewr: not watched
    catalogue.databases[0]["monthly_cost"] = 16
    catalogue.plans[0]["monthly_cost"] = 6  # a compute price: not a database one
    assert await _step(ctx, queue) == [
        ("apps", "app_added", "7", None),
        ("db-prices", "price_changed", "vultr-dbaas-hobbyist-cc-1-25-1", "monthly_cost"),
        ("k8s", "k8s_version_added", "v1.34.0+1", None),
        ("lb", "region_service_added", "ewr", "load_balancers"),
        ("s3-fra", "storage_availability_changed", "9", "deploy"),
    ]


async def test_matching_rules_for_each_new_kind(redis: Redis) -> None:
    plans = PlanAttributes(redis, "vs")

    def event(kind: EventKind, subject: str, **fields: Any) -> ChangeEvent:
        return ChangeEvent(kind=kind, at=AT, subject=subject, **fields)

    iso = event(EventKind.ISO_ADDED, "abc", new={"id": "abc"}, detail={"collection": "isos"})
    assert await matches(AlertConfig(name="a", kinds=["iso_added"]), iso, plans)
    assert not await matches(AlertConfig(name="a", kinds=["iso_removed"]), iso, plans)
    glob = AlertConfig(name="a", kinds=["iso_added"], subject="x*")
    assert not await matches(glob, iso, plans)
    other = AlertConfig(name="a", kinds=["iso_added"], collections=["apps"])
    assert not await matches(other, iso, plans)
    removed = event(
        EventKind.REGION_SERVICE_REMOVED,
        "sgp",
        region="sgp",
        field="kubernetes",
        old="kubernetes",
        detail={"collection": "regions"},
    )
    assert await matches(AlertConfig(name="a", kinds=["region_service_removed"]), removed, plans)
    wrong_region = AlertConfig(name="a", kinds=["region_service_removed"], regions=["ams"])
    assert not await matches(wrong_region, removed, plans)
    # A database plan has no compute rows: attribute filters cannot hold it back or match it.
    db = event(EventKind.PLAN_ADDED, "db1", new={"id": "db1"}, detail={"collection": "databases"})
    assert await matches(AlertConfig(name="a", kinds=["new_plan"], plan="db*"), db, plans)
    assert not await matches(AlertConfig(name="a", kinds=["new_plan"], plan="vc2*"), db, plans)


def test_unknown_alert_collection_is_a_clear_config_error() -> None:
    config = Config(alerts=[AlertConfig(name="a", kinds=["app_added"], collections=["appz"])])
    assert problems(config) == [
        (
            "alerts[0].collections",
            "unknown collection 'appz'; known: plans, metal, regions, os, apps, k8s_versions, "
            "storage_clusters, isos, databases",
        )
    ]
    bad = Config()
    bad.catalog.include = ["apps", "dns"]
    assert [key for key, _ in problems(bad)] == ["catalog.include"]
