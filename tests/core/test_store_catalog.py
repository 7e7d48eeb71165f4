"""The catalogue store: atomic commits, consistent reads, history replay, quarantine, archive."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import msgspec
from redis.asyncio import Redis

from vultr_scraper_core.models import (
    Catalogue,
    CloudPlan,
    MetalPlan,
    OperatingSystem,
    Region,
    parse_record,
)
from vultr_scraper_core.store.archive import RawArchive, RawResponse
from vultr_scraper_core.store.catalog import (
    CatalogueStore,
    FetchedSnapshot,
    PendingSnapshot,
    PlanLabels,
    PlanSummary,
    QuarantineInfo,
    plan_summaries_of,
)
from vultr_scraper_core.store.changes import ChangeEvent, ChangeFeed, EventKind

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def plan(plan_id: str, **fields: Any) -> CloudPlan:
    return parse_record(CloudPlan, {"id": plan_id, "type": "vc2", **fields})


def catalogue(generation: int, size: int = 3) -> Catalogue:
    return Catalogue(
        plans={
            f"p{n}": plan(f"p{n}", monthly_cost=Decimal(generation), locations=["ewr"])
            for n in range(size)
        },
        metal={"m": parse_record(MetalPlan, {"id": "m", "monthly_cost": generation})},
        regions={"ewr": parse_record(Region, {"id": "ewr", "city": f"gen{generation}"})},
        os={"1": parse_record(OperatingSystem, {"id": 1, "name": f"os{generation}"})},
    )


async def commit(
    store: CatalogueStore, new: Catalogue, at: datetime, events: list[ChangeEvent] | None = None
) -> int | None:
    async with store.transaction() as tx:
        version = tx.commit(new, events or [], fetched_at=at, committed_at=at, shapes={})
        return version if await tx.execute() else None


async def test_commit_then_load_round_trips_everything(redis: Redis) -> None:
    store = CatalogueStore(redis, "vs")
    empty = await store.load()
    assert empty.catalogue == Catalogue() and empty.meta.version == 0
    event = ChangeEvent(kind=EventKind.PLAN_ADDED, at=T0, subject="p0")
    assert await commit(store, catalogue(1), T0, [event]) == 1
    loaded = await store.load()
    assert loaded.catalogue == catalogue(1)
    assert loaded.meta.version == 1
    assert loaded.meta.fetched_at == T0 and loaded.meta.last_status == "success"
    assert [stored.subject for stored in await ChangeFeed(redis, "vs").read()] == ["p0"]
    assert await store.counts() == {
        "plans": 3,
        "metal": 1,
        "regions": 1,
        "os": 1,
        "apps": 0,
        "k8s_versions": 0,
        "storage_clusters": 0,
        "isos": 0,
        "databases": 0,
    }
    keys = {key.decode() for key in await redis.keys("*")}
    assert keys and all(key.startswith("vs:") for key in keys)


async def test_region_ids_and_plan_summaries_read_only_what_stock_events_need(
    redis: Redis,
) -> None:
    store = CatalogueStore(redis, "vs")
    assert await store.region_ids() == set()
    assert await store.plan_summaries(["p0"]) == {}
    gpu = plan("g", type="vcg", gpu_type="NVIDIA_A100", gpu_brand="NVIDIA", locations=["fra"])
    metal = parse_record(MetalPlan, {"id": "m", "type": "SSD", "locations": ["ewr", "fra"]})
    twin = parse_record(MetalPlan, {"id": "p0", "type": "NVMe"})  # a cloud plan's id wins
    snapshot = msgspec.structs.replace(
        catalogue(1),
        plans={**catalogue(1).plans, "g": gpu},
        metal={"m": metal, "p0": twin},
        regions={region: parse_record(Region, {"id": region}) for region in ("ewr", "fra", "sgp")},
    )
    await commit(store, snapshot, T0)
    assert await store.region_ids() == {"ewr", "fra", "sgp"}
    ids = ["p0", "g", "m", "gone", "ewr"]
    summaries = await store.plan_summaries(ids)
    assert summaries == {
        "p0": PlanSummary(collection="plans", labels=PlanLabels(type="vc2")),
        "g": PlanSummary(
            collection="plans",
            labels=PlanLabels(type="vcg", gpu_type="NVIDIA_A100", gpu_brand="NVIDIA"),
        ),
        "m": PlanSummary(collection="metal", labels=PlanLabels(type="SSD")),
    }
    assert summaries == plan_summaries_of(snapshot, ids)


async def test_unchanged_records_are_not_rewritten_and_removed_ones_go(redis: Redis) -> None:
    store = CatalogueStore(redis, "vs")
    await commit(store, catalogue(1), T0)
    smaller = catalogue(1, size=2)
    smaller.plans["p0"] = plan("p0", monthly_cost=Decimal("1.00"), locations=["ewr"])  # same value
    await commit(store, smaller, T0 + timedelta(minutes=1))
    plan_keys = await redis.hkeys("vs:catalog:plans")  # type: ignore[misc]
    assert sorted(key.decode() for key in plan_keys) == ["p0", "p1"]
    stored = await redis.hget("vs:catalog:plans", "p0")  # type: ignore[misc]
    assert stored is not None and b'"1"' in stored  # the old text stays: nothing changed
    # One version per record at first (3 plans, metal, region, OS), then only p2's retirement.
    assert await redis.zcard("vs:catalog:versions") == 3 + 1 + 1 + 1 + 1


async def test_a_concurrent_commit_makes_the_second_fail_cleanly(redis: Redis) -> None:
    store = CatalogueStore(redis, "vs")
    async with store.transaction() as first:
        async with store.transaction() as second:
            second.commit(catalogue(2), [], fetched_at=T0, committed_at=T0, shapes={})
            assert await second.execute()
        first.commit(catalogue(3), [], fetched_at=T0, committed_at=T0, shapes={})
        assert not await first.execute()
    assert (await store.load()).catalogue == catalogue(2)


async def test_readers_never_see_half_a_commit(redis: Redis, redis_url: str) -> None:
    writer = Redis.from_url(redis_url)
    store = CatalogueStore(writer, "vs")
    reader = CatalogueStore(redis, "vs")
    await commit(store, catalogue(0, size=40), T0)
    stop = asyncio.Event()
    seen: set[int] = set()

    async def write() -> None:
        for generation in range(1, 30):
            await commit(store, catalogue(generation, size=40), T0 + timedelta(seconds=generation))
        stop.set()

    async def read() -> None:
        while not stop.is_set():
            snapshot = (await reader.load()).catalogue
            generations = {int(p.monthly_cost or 0) for p in snapshot.plans.values()}
            generations |= {int(m.monthly_cost or 0) for m in snapshot.metal.values()}
            generations |= {int((r.city or "gen-1")[3:]) for r in snapshot.regions.values()}
            assert len(generations) == 1, generations
            seen.update(generations)

    try:
        await asyncio.gather(write(), read(), read())
    finally:
        await writer.aclose()
    assert len(seen) > 1  # the readers did overlap with commits


async def test_history_replays_to_any_time(redis: Redis) -> None:
    store = CatalogueStore(redis, "vs")
    await commit(store, catalogue(1, size=3), T0)
    await commit(store, catalogue(2, size=2), T0 + timedelta(hours=1))
    before = await store.catalogue_at(T0 - timedelta(seconds=1))
    assert before == Catalogue()
    first = await store.catalogue_at(T0 + timedelta(minutes=30))
    assert first.plans == catalogue(1).plans and first.regions == catalogue(1).regions
    assert first.os == catalogue(1).os  # OS images keep versions like the rest
    second = await store.catalogue_at(T0 + timedelta(hours=2))
    assert second.plans == catalogue(2, size=2).plans
    assert second.metal["m"].monthly_cost == Decimal(2)


async def test_quarantine_is_stored_shown_and_cleared_by_a_good_commit(redis: Redis) -> None:
    store = CatalogueStore(redis, "vs")
    await commit(store, catalogue(1), T0)
    info = QuarantineInfo(
        fetched_at=T0 + timedelta(minutes=5),
        quarantined_at=T0 + timedelta(minutes=5),
        reasons=["plans: 1 item, down from 3", "x"],
        complete=True,
        counts={"plans": 1},
    )
    snapshot = FetchedSnapshot(
        catalogue=catalogue(9, size=1), fetched_at=info.fetched_at, checked=["plans"]
    )
    async with store.transaction() as tx:
        tx.quarantine(PendingSnapshot(info=info, snapshot=snapshot))
        assert await tx.execute()
    assert (await store.load()).catalogue == catalogue(1)  # untouched
    assert await store.quarantine_info() == info
    assert info.reason == "plans: 1 item, down from 3; x"
    pending = await store.pending()
    assert pending is not None and pending.snapshot.catalogue == catalogue(9, size=1)
    meta = await store.meta()
    assert meta.last_status == "quarantined" and meta.last_reason == info.reason
    assert meta.last_success_at == T0
    await commit(store, catalogue(2), T0 + timedelta(minutes=10))
    assert await store.pending() is None and await store.quarantine_info() is None
    assert not await store.discard_quarantine()


async def test_archive_deduplicates_bodies_and_prunes_by_age(redis: Redis) -> None:
    archive = RawArchive(redis, "vs")

    def response(body: bytes, at: datetime) -> RawResponse:
        return RawResponse(
            url="http://x/v2/plans",
            status=200,
            headers={"Content-Type": "application/json", "Set-Cookie": "no"},
            body=body,
            fetched_at=at,
        )

    old, new = T0, T0 + timedelta(days=40)
    assert await archive.put([response(b"A" * 1000, old), response(b"B", old)]) == 2
    assert await archive.put([response(b"A" * 1000, new)]) == 0  # same body, stored once
    entries = await archive.entries()
    assert [entry.fetched_at for entry in entries] == [old, old, new]
    assert entries[0].headers == {"Content-Type": "application/json"}
    assert await archive.body(entries[0].sha256) == b"A" * 1000
    compressed = await redis.get(f"vs:archive:body:{entries[0].sha256}")
    assert compressed is not None and len(compressed) < 100
    pruned = await archive.prune(T0 + timedelta(days=10))
    assert (pruned.responses, pruned.bodies) == (2, 1)  # B goes; A is still used by `new`
    assert await archive.body(entries[0].sha256) == b"A" * 1000
    assert await archive.body(entries[1].sha256) is None
    assert [entry.fetched_at for entry in await archive.entries()] == [new]
    pruned = await archive.prune(new + timedelta(days=1))
    assert (pruned.responses, pruned.bodies) == (1, 1)
    assert await redis.keys("vs:archive:*") == []
