"""The stock job: per (plan, region) transitions, intervals that open and close, failures."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp import web
from redis.asyncio import Redis

from tests.jobs.test_catalog import Env, scrape_env
from vultr_scraper_core.http import TransientHttpError
from vultr_scraper_core.store.changes import EventKind
from vultr_scraper_core.store.queries import PlanFilter, find_plans, stock
from vultr_scraper_core.store.stock import StockStore
from vultr_scraper_core.vultr import AVAILABILITY
from vultr_scraper_jobs.availability import scrape_vultr_availability


async def check(env: Env) -> dict[str, Any]:
    return await scrape_vultr_availability(env.ctx)


async def test_first_check_records_silently_then_intervals_open_and_close(redis: Redis) -> None:
    async with scrape_env(redis) as env:
        await env.scrape()
        baseline = len(await env.events())
        first = await check(env)
        assert first["status"] == "success"
        assert first["events"] == 0  # the first check of a region is not news
        assert first["regions_checked"] == 4 and first["in_stock"] == 10
        assert len(await env.events()) == baseline

        env.catalogue.availability["fra"].remove("vcg-a100-1c-6g-4vram")
        second = await check(env)
        (gone,) = (await env.events())[baseline:]
        env.catalogue.availability["fra"].append("vcg-a100-1c-6g-4vram")
        third = await check(env)
        (back,) = (await env.events())[baseline + 1 :]
        fourth = await check(env)

    assert (second["updated"], second["closed"], second["opened"]) == (1, 1, 0)
    assert (gone.kind, gone.subject, gone.region, gone.field) == (
        EventKind.STOCK_CHANGED,
        "vcg-a100-1c-6g-4vram",
        "fra",
        "in_stock",
    )
    assert (gone.old, gone.new) == (True, False)
    assert gone.detail["type"] == "vcg" and gone.detail["gpu_type"] == "NVIDIA_A100"
    # Times in event details are written like every other time: RFC 3339 with Z.
    assert gone.detail["previous_since"].endswith("Z") and "+00:00" not in second["checked_at"]
    assert (back.old, back.new) == (False, True)
    assert (third["opened"], fourth["updated"], fourth["events"]) == (1, 0, 0)

    intervals = await StockStore(redis, "vs").intervals(plan="vcg-a100-1c-6g-4vram")
    (closed, open_) = intervals["vcg-a100-1c-6g-4vram@fra"]
    assert closed.start.isoformat().replace("+00:00", "Z") == first["checked_at"]
    assert (
        closed.end is not None
        and closed.end.isoformat().replace("+00:00", "Z") == second["checked_at"]
    )
    assert (
        open_.start.isoformat().replace("+00:00", "Z") == third["checked_at"] and open_.end is None
    )
    (row,) = await stock(redis, "vs", plan="vcg-a100-1c-6g-4vram", region="fra")
    assert row.in_stock and row.since.isoformat().replace("+00:00", "Z") == third["checked_at"]
    assert row.last_in_stock is not None
    assert row.last_in_stock.isoformat().replace("+00:00", "Z") == fourth["checked_at"]
    assert (
        row.first_seen is not None
        and row.first_seen.isoformat().replace("+00:00", "Z") == first["checked_at"]
    )


async def test_going_out_of_stock_remembers_the_last_check_that_listed_it(redis: Redis) -> None:
    async with scrape_env(redis) as env:
        await env.scrape()
        first = await check(env)
        second = await check(env)
        env.catalogue.availability["ams"] = ["vc2-1c-1gb"]
        third = await check(env)
    (row,) = await stock(redis, "vs", plan="vc2-2c-4gb", region="ams")
    assert not row.in_stock
    assert (
        row.last_in_stock is not None
        and row.last_in_stock.isoformat().replace("+00:00", "Z") == second["checked_at"]
    )
    assert row.since.isoformat().replace("+00:00", "Z") == third["checked_at"]
    assert (
        row.first_seen is not None
        and row.first_seen.isoformat().replace("+00:00", "Z") == first["checked_at"]
    )


async def test_a_plan_new_to_a_checked_region_is_an_event(redis: Redis) -> None:
    async with scrape_env(redis) as env:
        await env.scrape()
        await check(env)
        baseline = len(await env.events())
        env.catalogue.availability["ams"].append("vcg-l40s-16c-180g-48vram")
        await check(env)
        (event,) = (await env.events())[baseline:]
    assert (event.subject, event.region, event.old, event.new) == (
        "vcg-l40s-16c-180g-48vram",
        "ams",
        False,
        True,
    )
    assert event.detail["collection"] == "plans"
    in_stock = await find_plans(redis, "vs", PlanFilter(in_stock=True, min_gpu_vram_gb=48))
    assert [(row.plan, row.region) for row in in_stock] == [("vcg-l40s-16c-180g-48vram", "ams")]


async def test_a_failing_region_is_left_untouched(redis: Redis) -> None:
    async with scrape_env(redis) as env:
        await env.scrape()
        await check(env)
        baseline = len(await env.events())
        env.catalogue.availability["fra"] = []
        env.catalogue.availability["ewr"] = ["vc2-1c-1gb"]
        env.api.fail("/v2/regions/fra/availability", 503, times=None)
        result = await check(env)
        events = (await env.events())[baseline:]
    assert list(result["failed_regions"]) == ["fra"]
    assert "503" in result["failed_regions"]["fra"]
    assert result["regions_checked"] == 3
    assert {event.region for event in events} == {"ewr"}  # nothing closed in fra
    fra = await stock(redis, "vs", region="fra")
    seen = [row for row in fra if row.first_seen is not None]  # listed in fra at some point
    assert seen and all(row.in_stock for row in seen)


async def test_every_region_failing_propagates(redis: Redis) -> None:
    async with scrape_env(redis) as env:
        await env.scrape()
        env.api.fail(lambda request: request.path.endswith("/availability"), 500, times=None)
        with pytest.raises(TransientHttpError):
            await check(env)
    assert await StockStore(redis, "vs").region_checks() == {}


async def test_without_a_catalogue_regions_come_from_the_api(redis: Redis) -> None:
    async with scrape_env(redis) as env:
        result = await check(env)
        assert env.api.count("/v2/regions") == 1
    assert result["regions_checked"] == 4


async def test_a_region_that_left_the_catalogue_has_its_intervals_closed(redis: Redis) -> None:
    async with scrape_env(redis) as env:
        await env.scrape()
        await check(env)
        baseline = len(await env.events())
        env.catalogue.regions = [
            region for region in env.catalogue.regions if region["id"] != "sao"
        ]
        env.catalogue.plans = [
            plan for plan in env.catalogue.plans if plan["id"] != "vc2-1c-1gb-sc1"
        ]
        assert (await env.scrape())["status"] == "success"
        await check(env)
        events = [event for event in (await env.events())[baseline:] if event.region == "sao"]
    assert [(event.subject, event.old, event.new) for event in events] == [
        ("vc2-1c-1gb-sc1", True, False)
    ]
    assert not (await stock(redis, "vs", region="sao"))[0].in_stock


async def test_availability_drift_is_reported_once(redis: Redis) -> None:
    async with scrape_env(redis) as env:
        await env.scrape()
        await check(env)
        baseline = len(await env.events())
        original = env.api._send

        async def with_extra_key(request: web.Request, document: dict[str, Any]) -> Any:
            if request.path.endswith("/availability"):
                document = {**document, "available_gpu_slices": {"a100": 3}}
            return await original(request, document)

        env.api._send = with_extra_key  # type: ignore[method-assign]
        await check(env)
        await check(env)
        events = (await env.events())[baseline:]
    assert [(event.kind, event.subject, event.field) for event in events] == [
        (EventKind.SCHEMA_DRIFT, AVAILABILITY, "available_gpu_slices")
    ]
    assert events[0].detail["example"] in {"ewr", "fra", "ams", "sao"}
