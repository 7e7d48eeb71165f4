"""The catalogue job end to end: fake Vultr API over loopback, real Redis, awaited directly."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from unittest import mock

import pytest
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from tests.fakes.vultr_api import FakeCatalogue, FakeVultrAPI, make_plan, on_page
from vultr_scraper_core.config import CatalogConfig, ClientConfig, Config, Secrets, VultrConfig
from vultr_scraper_core.http import HttpClient, TransientHttpError, create_session
from vultr_scraper_core.store.archive import RawArchive, RawResponse
from vultr_scraper_core.store.catalog import CatalogueStore
from vultr_scraper_core.store.changes import ChangeEvent, ChangeFeed, EventKind
from vultr_scraper_core.store.queries import PlanFilter, find_plans
from vultr_scraper_core.vultr import PLANS, VultrClient
from vultr_scraper_jobs.catalog import (
    accept_quarantine,
    build_snapshot,
    fetch_listings,
    scrape_vultr_pricing,
    settle,
)
from vultr_scraper_jobs.context import make_context
from vultr_scraper_jobs.prune import prune
from vultr_scraper_jobs.registry import all_jobs


async def _no_sleep(_: float) -> None:
    return None


def job_config(base_url: str, **catalog: Any) -> Config:
    return Config(
        vultr=VultrConfig(base_url=base_url),
        # Retries stay bounded and real, only the waits between them are skipped.
        client=ClientConfig(rate_limit=0, max_attempts=3, backoff_base=0.001, backoff_cap=0.001),
        catalog=CatalogConfig(**catalog),
    )


@dataclass
class Env:
    api: FakeVultrAPI
    ctx: dict[str, Any]
    config: Config
    redis: Redis

    @property
    def catalogue(self) -> FakeCatalogue:
        return self.api.catalogue

    async def scrape(self) -> dict[str, Any]:
        return await scrape_vultr_pricing(self.ctx)

    async def events(self, **filters: Any) -> list[ChangeEvent]:
        return await ChangeFeed(self.redis, "vs").read(limit=10_000, **filters)

    async def catalogue_events(self) -> list[ChangeEvent]:
        return [event for event in await self.events() if event.kind != EventKind.SCHEMA_DRIFT]


@asynccontextmanager
async def scrape_env(redis: Redis, **catalog: Any) -> AsyncIterator[Env]:
    async with FakeVultrAPI() as api:
        config = job_config(api.base_url, **catalog)
        async with create_session(config.client) as session:
            http = HttpClient(session, config.client, sleep=_no_sleep)
            ctx = make_context(config=config, secrets=Secrets(), redis=redis, http=http)
            yield Env(api=api, ctx=ctx, config=config, redis=redis)


async def test_jobs_are_registered() -> None:
    jobs = all_jobs()
    assert jobs["scrape-catalog"].function is scrape_vultr_pricing
    assert jobs["scrape-catalog"].schedule == "scrape_catalog"
    assert jobs["scrape-availability"].schedule == "scrape_availability"
    assert jobs["prune"].schedule == "prune"


async def test_a_three_page_catalogue_is_read_whole(redis: Redis) -> None:
    async with scrape_env(redis) as env:
        env.api.max_per_page = 2  # 6 plans: three pages
        result = await env.scrape()
        assert env.api.count("/v2/plans") == 3
    assert result["status"] == "success"
    assert result["counts"] == {
        "plans": 6,
        "metal": 1,
        "regions": 4,
        "os": 3,
        "apps": 3,
        "k8s_versions": 3,
        "storage_clusters": 3,
        "isos": 2,
        "databases": 0,  # no API key configured: not read
    }
    assert result["added"] == 7 and result["updated"] == 7 and result["retired"] == 0
    committed = (await CatalogueStore(redis, "vs").load()).catalogue
    assert sorted(committed.plans) == sorted(plan["id"] for plan in env.catalogue.plans)
    assert committed.plans["vc2-1c-1gb-sc1"].monthly_cost == Decimal("7.5")
    assert str(committed.plans["vc2-1c-1gb"].hourly_cost) == "0.007"
    added = [event for event in await env.events() if event.kind == EventKind.PLAN_ADDED]
    assert len(added) == 7
    assert {event.detail["collection"] for event in added} == {"plans", "metal"}
    regions = await env.events(kinds={EventKind.REGION_ADDED})
    assert sorted(event.subject for event in regions) == ["ams", "ewr", "fra", "sao"]
    # The first scrape of the documented shapes reports no drift.
    assert await env.events(kinds={EventKind.SCHEMA_DRIFT}) == []


async def test_a_page_that_keeps_failing_quarantines_and_retires_nothing(redis: Redis) -> None:
    async with scrape_env(redis) as env:
        env.api.max_per_page = 2
        assert (await env.scrape())["status"] == "success"
        before = await CatalogueStore(redis, "vs").load()
        events_before = await env.events()
        env.catalogue.plans[0]["monthly_cost"] = 6  # a change that must not land either
        env.api.fail(on_page("/v2/plans", 2), 500, times=None)
        result = await env.scrape()
    assert result["status"] == "quarantined"
    assert result["updated"] == 0 and result["retired"] == 0 and result["events"] == 0
    assert "page 2 of /v2/plans failed after retries" in result["reason"]
    assert result["complete"] is False
    after = await CatalogueStore(redis, "vs").load()
    assert after.catalogue == before.catalogue
    assert after.meta.version == before.meta.version
    assert after.meta.last_status == "quarantined"
    assert await env.events() == events_before
    info = await CatalogueStore(redis, "vs").quarantine_info()
    assert info is not None and not info.complete and info.counts["plans"] == 2


async def test_first_page_failure_propagates_for_the_worker_to_retry(redis: Redis) -> None:
    async with scrape_env(redis) as env:
        env.api.fail("/v2/plans", 503, times=None, html=True)
        with pytest.raises(TransientHttpError):
            await env.scrape()
    meta = await CatalogueStore(redis, "vs").meta()
    assert meta.version == 0 and meta.last_attempt_at is not None


async def test_one_price_change_is_one_event_and_a_rerun_adds_none(redis: Redis) -> None:
    async with scrape_env(redis) as env:
        await env.scrape()
        baseline = len(await env.events())
        env.catalogue.plan("vc2-2c-4gb")["monthly_cost"] = 24
        result = await env.scrape()
        new_events = (await env.events())[baseline:]
        again = await env.scrape()
    assert result["status"] == "success"
    assert (result["updated"], result["events"], result["price_changes"]) == (1, 1, 1)
    (event,) = new_events
    assert event.kind == EventKind.PRICE_CHANGED
    assert (event.subject, event.field, event.region) == ("vc2-2c-4gb", "monthly_cost", None)
    assert (event.old, event.new) == ("20", "24")
    assert event.detail["type"] == "vc2"
    assert (again["updated"], again["events"]) == (0, 0)
    assert len(await env.events()) == baseline + 1


async def test_regional_price_change_names_its_region(redis: Redis) -> None:
    async with scrape_env(redis) as env:
        await env.scrape()
        baseline = len(await env.events())
        plan = env.catalogue.plan("vhp-2c-4gb-amd")
        plan["location_cost"] = {"fra": {"monthly_cost": 26.4, "hourly_cost": 0.041}}
        await env.scrape()
        (event,) = (await env.events())[baseline:]
    assert (event.kind, event.region, event.field) == ("price_changed", "fra", "hourly_cost")
    assert (event.old, event.new) == ("0.04", "0.041")


async def test_a_removed_plan_is_one_retirement(redis: Redis) -> None:
    async with scrape_env(redis) as env:
        await env.scrape()
        baseline = len(await env.events())
        env.catalogue.plans = [p for p in env.catalogue.plans if p["id"] != "vc2-2c-4gb"]
        result = await env.scrape()
        (event,) = (await env.events())[baseline:]
    assert (result["retired"], result["updated"]) == (1, 1)
    assert (event.kind, event.subject) == (EventKind.PLAN_RETIRED, "vc2-2c-4gb")
    assert event.old["monthly_cost"] == "20" and event.old["id"] == "vc2-2c-4gb"
    assert "vc2-2c-4gb" not in (await CatalogueStore(redis, "vs").load()).catalogue.plans


async def test_a_new_field_is_one_drift_event_and_no_crash(redis: Redis) -> None:
    async with scrape_env(redis) as env:
        await env.scrape()
        baseline = len(await env.events())
        env.catalogue.plan("vc2-1c-1gb")["carbon_grams"] = 12.5
        env.catalogue.plan("vc2-2c-4gb")["carbon_grams"] = 30
        result = await env.scrape()
        events = (await env.events())[baseline:]
        await env.scrape()
        assert len(await env.events()) == baseline + len(events)  # reported once
        # Now that plans carry it, the field is data like any other.
        env.catalogue.plan("vc2-2c-4gb")["carbon_grams"] = 31
        env.catalogue.plan("vhp-2c-4gb-amd")["carbon_grams"] = 40
        await env.scrape()
        later = (await env.events())[baseline + len(events) :]
    (drift,) = events  # one event for the field, none per plan
    assert (drift.kind, drift.subject, drift.field, drift.old) == (
        EventKind.SCHEMA_DRIFT,
        PLANS,
        "carbon_grams",
        None,
    )
    assert drift.new == ["integer", "number"]
    assert drift.detail["change"] == "new_field"
    assert (drift.detail["records"], drift.detail["of"]) == (2, 6)
    # The values are stored with the records all the same.
    assert result["status"] == "success" and result["spec_changes"] == 0
    plans = (await CatalogueStore(redis, "vs").load()).catalogue.plans
    assert plans["vc2-1c-1gb"].extra == {"carbon_grams": "12.5"}
    assert plans["vc2-2c-4gb"].extra == {"carbon_grams": 31}
    assert sorted((event.kind, event.subject, event.old, event.new) for event in later) == [
        (EventKind.SPEC_CHANGED, "vc2-2c-4gb", 30, 31),
        (EventKind.SPEC_CHANGED, "vhp-2c-4gb-amd", None, 40),
    ]


async def test_a_field_on_every_plan_at_once_is_one_event(redis: Redis) -> None:
    async with scrape_env(redis) as env:
        await env.scrape()
        baseline = len(await env.events())
        for plan in env.catalogue.plans:
            plan["carbon_grams"] = 10
        result = await env.scrape()
        events = (await env.events())[baseline:]
    assert result["status"] == "success" and result["events"] == 1
    (drift,) = events
    assert (drift.kind, drift.field) == (EventKind.SCHEMA_DRIFT, "carbon_grams")
    assert (drift.detail["records"], drift.detail["of"]) == (6, 6)
    stored = (await CatalogueStore(redis, "vs").load()).catalogue.plans
    assert all(plan.extra.get("carbon_grams") == 10 for plan in stored.values())


async def test_a_number_turned_into_a_string_is_drift_too(redis: Redis) -> None:
    async with scrape_env(redis) as env:
        await env.scrape()
        baseline = len(await env.events())
        env.catalogue.plan("vc2-2c-4gb")["monthly_cost"] = "20.00"
        env.catalogue.plan("vc2-2c-4gb")["vcpu_count"] = "2"
        result = await env.scrape()
        events = (await env.events())[baseline:]
    assert result["status"] == "success"
    assert [(event.kind, event.field, event.detail["change"]) for event in events] == [
        (EventKind.SCHEMA_DRIFT, "monthly_cost", "type_changed"),
        (EventKind.SCHEMA_DRIFT, "vcpu_count", "type_changed"),
    ]
    assert events[0].new == ["integer", "null", "number", "string"]
    assert events[0].detail["example"] == "vc2-2c-4gb"
    # Same value, so no price or spec event; the number is still read exactly.
    plan = (await CatalogueStore(redis, "vs").load()).catalogue.plans["vc2-2c-4gb"]
    assert plan.monthly_cost == Decimal(20) and plan.vcpu_count == 2


async def test_an_unreadable_value_is_kept_and_reported(redis: Redis) -> None:
    async with scrape_env(redis) as env:
        await env.scrape()
        baseline = len(await env.events())
        env.catalogue.plan("vc2-2c-4gb")["ram"] = "4 GB"
        await env.scrape()
        events = (await env.events())[baseline:]
    assert [(event.kind, event.field) for event in events] == [
        (EventKind.SCHEMA_DRIFT, "ram"),
        (EventKind.SPEC_CHANGED, "ram"),
    ]
    assert (events[1].old, events[1].new) == (4096, "4 GB")


async def test_plans_at_returns_the_earlier_price_after_a_change(redis: Redis) -> None:
    async with scrape_env(redis) as env:
        await env.scrape()
        between = datetime.now(UTC)
        env.catalogue.plan("vc2-2c-4gb")["monthly_cost"] = 24
        await env.scrape()
    flt = PlanFilter(plan="vc2-2c-4gb", region="ewr")
    (then,) = await find_plans(redis, "vs", flt, at=between)
    (now,) = await find_plans(redis, "vs", flt)
    assert (then.monthly_cost, now.monthly_cost) == (Decimal(20), Decimal(24))


async def test_a_big_count_drop_is_quarantined_and_can_be_accepted(redis: Redis) -> None:
    async with scrape_env(redis) as env:
        await env.scrape()
        kept = {"vc2-1c-1gb", "vc2-1c-1gb-sc1", "vhp-2c-4gb-amd"}
        env.catalogue.plans = [p for p in env.catalogue.plans if p["id"] in kept]
        result = await env.scrape()
        assert result["status"] == "quarantined"
        assert "plans: 3 items, down from 6" in result["reason"]
        assert len((await CatalogueStore(redis, "vs").load()).catalogue.plans) == 6
        accepted = await accept_quarantine(redis, env.config)
        assert accepted["status"] == "success" and accepted["accepted"] is True
        assert accepted["retired"] == 3
        assert len((await CatalogueStore(redis, "vs").load()).catalogue.plans) == 3
        assert await CatalogueStore(redis, "vs").pending() is None
        assert (await accept_quarantine(redis, env.config))["status"] == "failed"
        # The next scrape sees the accepted snapshot as its baseline: nothing new.
        assert (await env.scrape())["events"] == 0


async def test_a_price_jump_is_quarantined(redis: Redis) -> None:
    async with scrape_env(redis) as env:
        await env.scrape()
        env.catalogue.plan("vc2-2c-4gb")["monthly_cost"] = 40  # x2
        env.catalogue.plan("vc2-1c-1gb")["hourly_cost"] = 0.003  # x0.43
        result = await env.scrape()
    assert result["status"] == "quarantined"
    assert "2 prices moved beyond x1.5 or x0.5" in result["reason"]
    assert "vc2-1c-1gb hourly_cost 0.007 -> 0.003" in result["reason"]
    plans = (await CatalogueStore(redis, "vs").load()).catalogue.plans
    assert plans["vc2-2c-4gb"].monthly_cost == Decimal(20)


async def test_accepting_an_incomplete_snapshot_retires_nothing(redis: Redis) -> None:
    async with scrape_env(redis) as env:
        env.api.max_per_page = 2
        await env.scrape()
        env.catalogue.plans[0]["monthly_cost"] = 6
        env.api.fail(on_page("/v2/plans", 3), 500, times=None)
        assert (await env.scrape())["status"] == "quarantined"
        result = await accept_quarantine(redis, env.config)
    assert result["status"] == "success"
    assert (result["retired"], result["updated"]) == (0, 1)
    assert result["incomplete"] == ["plans"]
    plans = (await CatalogueStore(redis, "vs").load()).catalogue.plans
    assert len(plans) == 6 and plans["vc2-1c-1gb"].monthly_cost == Decimal(6)


async def test_a_good_run_clears_a_pending_quarantine(redis: Redis) -> None:
    async with scrape_env(redis) as env:
        await env.scrape()
        env.catalogue.plan("vc2-2c-4gb")["monthly_cost"] = 40
        assert (await env.scrape())["status"] == "quarantined"
        env.catalogue.plan("vc2-2c-4gb")["monthly_cost"] = 20  # it was a glitch
        assert (await env.scrape())["status"] == "success"
    assert await CatalogueStore(redis, "vs").quarantine_info() is None


async def test_a_crash_before_exec_leaves_no_trace_and_the_rerun_is_exact(redis: Redis) -> None:
    async with scrape_env(redis) as env:
        await env.scrape()
        baseline = await env.events()
        env.catalogue.plan("vc2-2c-4gb")["monthly_cost"] = 24
        env.catalogue.plans.append(make_plan("vc2-4c-8gb", vcpu_count=4, ram=8192))
        original = Pipeline.execute
        exec_attempts = 0

        async def killed_before_exec(self: Pipeline, raise_on_error: bool = True) -> Any:
            nonlocal exec_attempts
            if self.watching:  # the snapshot commit (the archive write does not WATCH)
                exec_attempts += 1
                raise KeyboardInterrupt("SIGKILL stand-in: the process dies before EXEC")
            return await original(self, raise_on_error)

        with (
            mock.patch.object(Pipeline, "execute", killed_before_exec),
            pytest.raises(KeyboardInterrupt),
        ):
            await env.scrape()
        assert exec_attempts == 1
        assert await env.events() == baseline
        assert "vc2-4c-8gb" not in (await CatalogueStore(redis, "vs").load()).catalogue.plans
        result = await env.scrape()
        new = (await env.events())[len(baseline) :]
    assert result["events"] == 2
    assert sorted(event.kind for event in new) == [EventKind.PLAN_ADDED, EventKind.PRICE_CHANGED]


async def test_raw_bodies_are_archived_unless_retention_is_zero(redis: Redis) -> None:
    async with scrape_env(redis) as env:
        await env.scrape()
        entries = await RawArchive(redis, "vs").entries()
    assert sorted({entry.url.split("?")[0].rsplit("/v2", 1)[1] for entry in entries}) == [
        "/applications",
        "/iso-public",
        "/kubernetes/versions",
        "/object-storage/clusters",
        "/os",
        "/plans",
        "/plans-metal",
        "/regions",
    ]
    await redis.flushdb()
    async with scrape_env(redis, archive_retention_days=0) as env:
        await env.scrape()
    assert await RawArchive(redis, "vs").entries() == []


async def test_os_can_be_left_out(redis: Redis) -> None:
    async with scrape_env(redis, include_os=False) as env:
        result = await env.scrape()
        assert env.api.count("/v2/os") == 0
    assert result["counts"]["os"] == 0


async def test_a_slower_older_run_never_overwrites_a_newer_snapshot(redis: Redis) -> None:
    async with scrape_env(redis) as env:
        client = VultrClient(env.ctx["http"], env.config.vultr)
        old = build_snapshot(await fetch_listings(client, include_os=True), datetime.now(UTC))
        await env.scrape()  # a newer run commits first
        store = CatalogueStore(redis, "vs")
        version = (await store.meta()).version
        result = await settle(store, old, env.config.catalog)
    assert result["superseded"] is True and result["events"] == 0
    assert (await store.meta()).version == version


async def test_prune_applies_the_archive_retention(redis: Redis) -> None:
    archive = RawArchive(redis, "vs")
    old = datetime.now(UTC) - timedelta(days=31)
    await archive.put(
        [RawResponse(url="http://x/v2/os", status=200, headers={}, body=b"old", fetched_at=old)]
    )
    async with scrape_env(redis) as env:
        await env.scrape()
        kept = len(await archive.entries(limit=1000))
        result = await prune(env.ctx)
    assert result["status"] == "success"
    assert result["pruned"]["archive"] == {"responses": 1, "bodies": 1}
    assert len(await archive.entries(limit=1000)) == kept - 1
