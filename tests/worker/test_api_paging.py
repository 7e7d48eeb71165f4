"""Cursor paging on every list route: following ``Link: rel="next"`` from the first page visits
every row once, in order, even when the list changes between pages."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from redis.asyncio import Redis

from tests.fakes.vultr_api import FakeVultrAPI
from tests.worker.api_harness import (
    Api,
    add_events,
    cloud_plan,
    commit_catalogue,
    event,
    running_api,
    set_stock,
)
from tests.worker.test_catalog_breadth_surfaces import _scrape as scrape_everything
from vultr_scraper_core.config import HealthConfig
from vultr_scraper_core.store.changes import ChangeFeed
from vultr_scraper_core.store.health import HealthStore, ProbeResult

NOW = datetime.now(UTC)
LINK = re.compile(r'^<(?P<target>[^>]+)>; rel="next"$')


async def follow(api: Api, path: str, rows_key: str) -> tuple[list[Any], int]:
    """Every row from ``path`` on, by the Link headers; and how many pages it took."""
    rows: list[Any] = []
    pages = 0
    target: str | None = path
    while target is not None:
        async with api.request("GET", target) as response:
            assert response.status == 200, await response.text()
            document = await response.json()
            link = response.headers.get("Link")
        pages += 1
        rows.extend(document[rows_key])
        if link is None:
            assert not document.get("has_more", False)
            target = None
        else:
            match = LINK.match(link)
            assert match, link
            target = match["target"]
            assert document["has_more"] is True
        assert pages < 100
    return rows, pages


def catalogue(count: int) -> list[Any]:
    # Prices repeat, so the order inside one price rests on the plan and region.
    return [
        cloud_plan(f"vc2-{n:02d}c-1gb", f"{5 + n % 3}.00", locations=["ewr", "fra"])
        for n in range(count)
    ]


async def test_plans_pages_follow_the_link_header(redis_url: str, redis: Redis) -> None:
    await commit_catalogue(redis, catalogue(7), at=NOW - timedelta(minutes=1))
    async with running_api(redis_url) as api:
        whole = await api.json("GET", "/api/v1/plans")
        assert whole["has_more"] is False and whole["cursor"] is None
        rows, pages = await follow(api, "/api/v1/plans?limit=3&region=fra", "plans")
        assert pages == 3  # 7 rows in fra: 3 + 3 + 1
        fra = [(row["plan"], row["region"]) for row in whole["plans"] if row["region"] == "fra"]
        assert [(row["plan"], row["region"]) for row in rows] == fra
        first = await api.json("GET", "/api/v1/plans?limit=5")
        assert first["count"] == 14 and first["truncated"] is True and len(first["plans"]) == 5
        # The list changes between pages: a cheaper plan appears, one on the next page goes.
        next_row = whole["plans"][5]
        kept = [
            plan
            for plan in catalogue(7)
            if plan.id != next_row["plan"]  # gone from both regions
        ]
        kept.append(cloud_plan("vc2-cheap", "1.00", locations=["fra"]))
        await commit_catalogue(redis, kept, at=NOW)
        rest = await api.json("GET", f"/api/v1/plans?limit=1000&cursor={first['cursor']}")
    seen = [(row["plan"], row["region"]) for row in first["plans"] + rest["plans"]]
    assert len(seen) == len(set(seen))  # nothing twice
    assert ("vc2-cheap", "fra") not in seen  # sorts before the cursor: not this walk's
    assert next_row["plan"] not in {plan for plan, _ in seen[5:]}
    expected_rest = [
        (row["plan"], row["region"])
        for row in whole["plans"][5:]
        if row["plan"] != next_row["plan"]
    ]
    assert seen[5:] == expected_rest


async def test_availability_pages_follow_the_link_header(redis_url: str, redis: Redis) -> None:
    plans = catalogue(5)
    await commit_catalogue(redis, plans, at=NOW - timedelta(minutes=1))
    await set_stock(
        redis,
        {
            (plan.id, region): n % 2 == 0
            for n, plan in enumerate(plans)
            for region in ("ewr", "fra")
        },
        at=NOW - timedelta(minutes=1),
    )
    async with running_api(redis_url) as api:
        whole = await api.json("GET", "/api/v1/availability")
        rows, pages = await follow(api, "/api/v1/availability?limit=4", "availability")
        in_stock, _ = await follow(
            api, "/api/v1/availability?limit=1&in_stock=true", "availability"
        )
    assert whole["count"] == 10 and whole["has_more"] is False
    assert pages == 3 and rows == whole["availability"]
    assert [(row["plan"], row["region"]) for row in in_stock] == [
        (row["plan"], row["region"]) for row in whole["availability"] if row["in_stock"]
    ]


async def test_changes_pages_follow_the_link_header(redis_url: str, redis: Redis) -> None:
    ids = await add_events(redis, [event("plan_added", f"p{n}", at=NOW) for n in range(5)])
    async with running_api(redis_url) as api:
        rows, pages = await follow(api, "/api/v1/changes?after=0&limit=2", "events")
    assert [row["id"] for row in rows] == ids and pages == 3


async def test_a_cursor_of_another_shape_is_a_400(redis_url: str) -> None:
    async with running_api(redis_url) as api:
        for path in (
            "/api/v1/plans?cursor=not-a-cursor",
            "/api/v1/plans?cursor=x~y",  # the stock cursor's shape
            "/api/v1/plans?cursor=NaN~~p~r",
            "/api/v1/availability?cursor=only-one",
        ):
            document = await api.json("GET", path, status=400)
            assert "cursor" in str(document), document
        # A position where no row is (any more) is still a position.
        gone = await api.json("GET", "/api/v1/plans?cursor=0.01~~vanished-plan~fra")
        assert gone["plans"] == [] and gone["has_more"] is False


OFFERINGS = {
    "apps": "apps",
    "k8s-versions": "k8s_versions",
    "storage-clusters": "storage_clusters",
    "isos": "isos",
    "databases": "databases",
}


async def test_the_rest_of_the_catalogue_pages_follow_the_link_header(
    redis_url: str, redis: Redis
) -> None:
    async with FakeVultrAPI() as fake:
        assert (await scrape_everything(redis, fake))["status"] == "success"
        async with running_api(redis_url) as api:
            for path, key in OFFERINGS.items():
                whole = await api.json("GET", f"/api/v1/{path}")
                assert whole["count"] >= 2 and whole["has_more"] is False, path
                rows, pages = await follow(api, f"/api/v1/{path}?limit=1", key)
                assert [row["id"] for row in rows] == [row["id"] for row in whole[key]], path
                assert pages == whole["count"], path
                await api.json("GET", f"/api/v1/{path}?cursor=~~", status=400)
            first = await api.json("GET", "/api/v1/apps?limit=2")
            # The list changes between pages: an app appears before the cursor, the next goes.
            following = (await api.json("GET", "/api/v1/apps"))["apps"][2]
            fake.catalogue.apps = [
                app for app in fake.catalogue.apps if app["id"] != following["id"]
            ]
            fake.catalogue.apps.append({**fake.catalogue.apps[0], "id": 0, "name": "New"})
            assert (await scrape_everything(redis, fake))["status"] == "success"
            rest, _ = await follow(api, f"/api/v1/apps?limit=1&cursor={first['cursor']}", "apps")
            now = (await api.json("GET", "/api/v1/apps"))["apps"]
    seen = [row["id"] for row in first["apps"] + rest]
    assert len(seen) == len(set(seen)) and 0 not in seen and following["id"] not in seen
    assert seen[2:] == [row["id"] for row in now if row["id"] not in (0, *seen[:2])]


async def test_endpoint_health_pages_follow_the_link_header(redis_url: str, redis: Redis) -> None:
    store = HealthStore(redis, "vs")

    async def probe(name: str) -> None:
        result = ProbeResult(at=NOW, ok=True, latency_ms=5.0)
        await store.record(name, f"https://{name}.example/", result, failure_threshold=1,
                           success_threshold=1, feed=ChangeFeed(redis, "vs"))  # fmt: skip

    for name in ("alpha", "bravo", "charlie", "delta"):
        await probe(name)
    async with running_api(redis_url, health=HealthConfig(check_vultr_api=False)) as api:
        rows, pages = await follow(api, "/api/v1/health?limit=3", "endpoints")
        assert [row["name"] for row in rows] == ["alpha", "bravo", "charlie", "delta"]
        assert pages == 2
        first = await api.json("GET", "/api/v1/health?limit=2")
        assert first["count"] == 4 and first["cursor"] == "bravo"
        await probe("aardvark")  # before the cursor: not on a later page
        await probe("bz")  # after it: on the next one
        rest, _ = await follow(api, f"/api/v1/health?limit=2&cursor={first['cursor']}", "endpoints")
        await api.json("GET", "/api/v1/health?cursor=a~b", status=400)
    assert [row["name"] for row in first["endpoints"] + rest] == [
        "alpha", "bravo", "bz", "charlie", "delta"
    ]  # fmt: skip


async def test_stock_stats_pages_follow_the_link_header(redis_url: str, redis: Redis) -> None:
    plans = catalogue(4)
    at = NOW - timedelta(hours=1)
    await commit_catalogue(redis, plans, at=at)
    await set_stock(redis, {(plan.id, r): True for plan in plans for r in ("ewr", "fra")}, at=at)
    async with running_api(redis_url) as api:
        whole = await api.json("GET", "/api/v1/stock/stats")
        assert whole["count"] == 8 and whole["has_more"] is False and whole["cursor"] is None
        pairs = [(row["plan"], row["region"]) for row in whole["pairs"]]
        assert pairs == sorted(pairs)
        rows, pages = await follow(api, "/api/v1/stock/stats?limit=3&window=7d", "pairs")
        assert [(row["plan"], row["region"]) for row in rows] == pairs and pages == 3
        fra, _ = await follow(api, "/api/v1/stock/stats?limit=1&region=fra", "pairs")
        assert [(row["plan"], row["region"]) for row in fra] == [p for p in pairs if p[1] == "fra"]
        first = await api.json("GET", "/api/v1/stock/stats?limit=3")
        assert first["cursor"] == "~".join(pairs[2]) and first["count"] == 8
        # The list changes between pages: one pair sorts before the cursor, one after it.
        await set_stock(redis, {("vc2-00a", "fra"): True, ("vc2-99c", "ams"): True}, at=at)
        after = f"/api/v1/stock/stats?limit=2&cursor={first['cursor']}"
        rest, _ = await follow(api, after, "pairs")
        for bad in ("vc2-1c-1gb", "a~b~c", "~fra"):
            problem = await api.json("GET", f"/api/v1/stock/stats?cursor={bad}", status=400)
            assert "cursor" in str(problem), problem
    seen = [(row["plan"], row["region"]) for row in first["pairs"] + rest]
    assert len(seen) == len(set(seen)) and ("vc2-00a", "fra") not in seen
    assert seen == [*pairs, ("vc2-99c", "ams")]
