"""The raw-response archive indexes a URL's body once per change, with when it was last seen,
instead of once per fetch."""

from __future__ import annotations

import hashlib
import zlib
from datetime import UTC, datetime, timedelta

from redis.asyncio import Redis

from vultr_scraper_core.store.archive import RawArchive, RawResponse
from vultr_scraper_core.store.codec import to_ms

T0 = datetime(2026, 1, 1, tzinfo=UTC)
PLANS = "https://api.vultr.com/v2/plans"
REGIONS = "https://api.vultr.com/v2/regions"


def fetched(url: str, body: bytes, minutes: int, status: int = 200) -> RawResponse:
    return RawResponse(
        url=url,
        status=status,
        headers={"date": f"minute {minutes}"},
        body=body,
        fetched_at=T0 + timedelta(minutes=minutes),
    )


async def test_an_unchanged_body_moves_last_seen_and_adds_no_entry(redis: Redis) -> None:
    archive = RawArchive(redis, "vs")
    for minute in range(0, 50, 5):  # ten identical scrapes of two URLs
        await archive.put([fetched(PLANS, b"plans v1", minute), fetched(REGIONS, b"r", minute)])
    assert await redis.zcard("vs:archive:index") == 2
    entries = await archive.entries()
    assert sorted((e.url, e.fetched_at, e.last_seen) for e in entries) == [
        (PLANS, T0, T0 + timedelta(minutes=45)),
        (REGIONS, T0, T0 + timedelta(minutes=45)),
    ]
    assert entries[0].headers == {"date": "minute 0"}  # the first fetch's

    # The body changes: a new entry, and the old one keeps when it was last seen.
    await archive.put([fetched(PLANS, b"plans v2", 50)])
    await archive.put([fetched(PLANS, b"plans v2", 55)])
    # The same body with another status is a change too.
    await archive.put([fetched(PLANS, b"plans v2", 60, status=500)])
    plans = [e for e in await archive.entries() if e.url == PLANS]
    assert [(e.fetched_at, e.last_seen, e.status) for e in plans] == [
        (T0, T0 + timedelta(minutes=45), 200),
        (T0 + timedelta(minutes=50), T0 + timedelta(minutes=55), 200),
        (T0 + timedelta(minutes=60), T0 + timedelta(minutes=60), 500),
    ]
    assert await archive.body(plans[1].sha256) == b"plans v2"


async def test_prune_keeps_a_current_entry_that_is_still_seen(redis: Redis) -> None:
    archive = RawArchive(redis, "vs")
    await archive.put([fetched(PLANS, b"old", 0), fetched(REGIONS, b"gone", 0)])
    await archive.put([fetched(PLANS, b"new", 10)])
    await archive.put([fetched(PLANS, b"new", 24 * 60 * 40)])  # still the same 40 days later
    pruned = await archive.prune(T0 + timedelta(days=30))
    # "old" (replaced) and REGIONS (last seen at 0) go; "new" was first fetched before the
    # cutoff but is still current and seen after it, so it stays.
    assert (pruned.responses, pruned.bodies) == (2, 2)
    left = await archive.entries()
    assert [(e.url, e.fetched_at) for e in left] == [(PLANS, T0 + timedelta(minutes=10))]
    assert left[0].last_seen == T0 + timedelta(days=40)
    assert await archive.body(left[0].sha256) == b"new"
    # A URL no longer fetched is forgotten with its entry: the next fetch starts a new one.
    await archive.put([fetched(REGIONS, b"gone", 24 * 60 * 41)])
    assert len(await archive.entries()) == 2


async def test_only_bodies_no_current_entry_holds_are_written(redis: Redis) -> None:
    archive = RawArchive(redis, "vs")
    assert await archive.put([fetched(PLANS, b"v1", 0), fetched(REGIONS, b"r", 0)]) == 2
    (plans,) = [entry for entry in await archive.entries() if entry.url == PLANS]
    body_key = f"vs:archive:body:{plans.sha256}"
    await redis.delete(body_key)  # had it been written again, it would be back
    # Unchanged: held by the URL's current entry, so neither compressed nor written.
    assert await archive.put([fetched(PLANS, b"v1", 5), fetched(REGIONS, b"r", 5)]) == 0
    assert not await redis.exists(body_key)
    # A body seen before under another URL's old entry only is written again (SET NX).
    assert await archive.put([fetched(PLANS, b"v2", 10)]) == 1
    assert await archive.put([fetched(REGIONS, b"v1", 15)]) == 1
    assert await redis.exists(body_key)


async def test_a_body_compressed_at_another_level_reads_the_same(redis: Redis) -> None:
    """Bodies archived before the level changed (level 6) stay readable."""
    archive = RawArchive(redis, "vs")
    body = b'{"available_plans": ["vc2-1c-1gb", "vc2-2c-4gb"]}' * 50
    await archive.put([fetched(PLANS, body, 0)])
    (entry,) = await archive.entries()
    key = f"vs:archive:body:{entry.sha256}"
    assert zlib.decompress(await redis.get(key)) == body
    for level in (1, 6, 9):
        await redis.set(key, zlib.compress(body, level))
        assert await archive.body(entry.sha256) == body


async def test_one_batch_fetching_a_url_twice_indexes_like_two_batches(redis: Redis) -> None:
    one, two = RawArchive(redis, "one"), RawArchive(redis, "two")
    first = [fetched(PLANS, b"a", 0), fetched(REGIONS, b"a", 0)]
    later = [
        fetched(PLANS, b"b", 5),
        fetched(REGIONS, b"a", 5),
        fetched(PLANS, b"c", 10),
        fetched(PLANS, b"c", 15),
        fetched(REGIONS, b"d", 20),
    ]
    await one.put(first)
    await one.put(later)
    await two.put(first)
    for response in later:
        await two.put([response])
    for key in ("archive:index", "archive:bodies"):
        assert await redis.zrange(f"one:{key}", 0, -1, withscores=True) == await redis.zrange(
            f"two:{key}", 0, -1, withscores=True
        )
    latest = [await redis.hgetall(f"{name}:archive:latest") for name in ("one", "two")]  # type: ignore[misc]
    assert latest[0] == latest[1]
    plans = [(e.fetched_at, e.last_seen) for e in await one.entries() if e.url == PLANS]
    assert plans == [
        (T0, T0),
        (T0 + timedelta(minutes=5), T0 + timedelta(minutes=5)),
        (T0 + timedelta(minutes=10), T0 + timedelta(minutes=15)),
    ]
    # Body "a" was last returned at minute 5 (by REGIONS), whatever the order in the batch.
    digest = hashlib.sha256(b"a").hexdigest()
    assert await redis.zscore("one:archive:bodies", digest) == to_ms(T0 + timedelta(minutes=5))
