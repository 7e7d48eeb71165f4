"""Cursor paging on every list route: following ``Link: rel="next"`` from the first page visits
every row once, in order, even when the list changes between pages."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from redis.asyncio import Redis

from tests.worker.api_harness import (
    Api,
    add_events,
    cloud_plan,
    commit_catalogue,
    event,
    running_api,
    set_stock,
)

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
