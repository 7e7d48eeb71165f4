"""``/api/v1/plans/{id}``, ``/api/v1/plans/{id}/history`` and ``/api/v1/stock/stats``: the
documents, their numbers, and their schemas generated from the Structs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import jsonschema  # type: ignore[import-untyped]  # schemathesis brings it
import pytest
from redis.asyncio import Redis

from tests.worker.api_harness import running_api
from tests.worker.test_explorer_pages import seed


def _validator(document: dict, ref: str) -> jsonschema.Draft202012Validator:  # type: ignore[type-arg]
    schema = {"$ref": ref, "components": document["components"]}
    return jsonschema.Draft202012Validator(schema)


async def test_plan_document(redis_url: str, redis: Redis) -> None:
    await seed(redis)
    async with running_api(redis_url) as api:
        openapi = await api.json("GET", "/api/v1/openapi.json")
        plan = await api.json("GET", "/api/v1/plans/vc2-1c-1gb")
        week = await api.json("GET", "/api/v1/plans/vc2-1c-1gb?span=7d")
        await api.json("GET", "/api/v1/plans/nothing", 404)
        await api.json("GET", "/api/v1/plans/vc2-1c-1gb?span=2y", 400)
    ref = openapi["paths"]["/api/v1/plans/{plan_id}"]["get"]["responses"]["200"]["content"][
        "application/json"
    ]["schema"]["$ref"]
    assert ref == "#/components/schemas/PlanHistory"
    _validator(openapi, ref).validate(plan)
    assert plan["plan"] == "vc2-1c-1gb" and plan["kind"] == "cloud"
    assert {row["region"]: row["monthly_cost"] for row in plan["regions"]} == {
        "ewr": "5",
        "fra": "6",
    }
    by_region = {item["region"]: item["stats"] for item in plan["stats"]}
    assert by_region["fra"]["in_stock"] is True
    assert by_region["fra"]["share"]["24h"] == pytest.approx(2 / 24, abs=1e-3)
    assert by_region["fra"]["returns"] == 1
    assert by_region["fra"]["median_back_seconds"] == pytest.approx(22 * 3600, abs=5)
    assert by_region["ewr"]["last_in_stock"] is None
    monthly = [p for p in plan["prices"] if p["price_kind"] == "monthly_cost"]
    assert {(p["region"], p["price"]) for p in monthly} >= {
        ("ewr", "4"),
        ("ewr", "5"),
        ("fra", "6"),
    }
    # A shorter span drops what ended before it: the $4 price ended ten days ago.
    assert all(p["price"] != "4" for p in week["prices"] if p["price_kind"] == "monthly_cost")


async def test_plan_history_range(redis_url: str, redis: Redis) -> None:
    await seed(redis)
    now = datetime.now(UTC)
    recent = (now - timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    async with running_api(redis_url) as api:
        openapi = await api.json("GET", "/api/v1/openapi.json")
        everything = await api.json("GET", "/api/v1/plans/vc2-1c-1gb/history?from=30d")
        lately = await api.json("GET", f"/api/v1/plans/vc2-1c-1gb/history?from={recent}")
        backwards = await api.json("GET", "/api/v1/plans/vc2-1c-1gb/history?from=1d&to=2d")
        await api.json("GET", "/api/v1/plans/vc2-1c-1gb/history?from=someday", 400)
        await api.json("GET", "/api/v1/plans/nothing/history", 404)
    _validator(openapi, "#/components/schemas/PlanRange").validate(everything)
    assert len(everything["stock"]) == 2 and len(lately["stock"]) == 2
    assert any(p["price"] == "4" for p in everything["prices"])
    assert not any(p["price"] == "4" for p in lately["prices"])
    assert set(everything) == {"plan", "from", "to", "prices", "stock"}
    assert backwards["prices"] == [] and backwards["stock"] == []


async def test_stock_stats(redis_url: str, redis: Redis) -> None:
    await seed(redis)
    async with running_api(redis_url) as api:
        openapi = await api.json("GET", "/api/v1/openapi.json")
        fra = await api.json("GET", "/api/v1/stock/stats?region=fra&window=7d")
        one = await api.json("GET", "/api/v1/stock/stats?plan=vc2-1c-1gb&region=fra")
        every = await api.json("GET", "/api/v1/stock/stats")
        await api.json("GET", "/api/v1/stock/stats?plan=x&window=1y", 400)
    _validator(openapi, "#/components/schemas/StockStatsPage").validate(fra)
    assert fra["window"] == "7d"
    assert [(p["plan"], p["region"]) for p in fra["pairs"]] == [
        ("vc2-1c-1gb", "fra"),
        ("vcg-a100-1c-6g-4vram", "fra"),
    ]
    gpu = fra["pairs"][1]["stats"]
    assert gpu["in_stock"] is False and gpu["share"]["7d"] == pytest.approx(1 / 7, abs=1e-3)
    assert [p["plan"] for p in one["pairs"]] == ["vc2-1c-1gb"]
    assert len(every["pairs"]) == 2
