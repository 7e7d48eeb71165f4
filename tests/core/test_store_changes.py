"""The change feed on a real Redis: stable ids, cursors, filters, atomic appends."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import msgspec
import pytest
from redis.asyncio import Redis
from redis.exceptions import WatchError

from vultr_scraper_core.store.changes import ChangeEvent, ChangeFeed, EventKind
from vultr_scraper_core.store.codec import from_ms

AT = datetime(2026, 1, 31, 12, 0, tzinfo=UTC)


def _event(
    index: int, kind: str = EventKind.PRICE_CHANGED, subject: str = "vc2-1c-1gb"
) -> ChangeEvent:
    return ChangeEvent(
        kind=kind,
        at=AT + timedelta(seconds=index),
        subject=subject,
        region="fra" if index % 2 else None,
        field="monthly_cost",
        old=str(index),
        new=str(index + 1),
        detail={"collection": "plans", "n": index},
    )


def _ms(event_id: str) -> int:
    return int(event_id.split("-")[0])


def _key(event_id: str) -> tuple[int, int]:
    ms, seq = event_id.split("-")
    return int(ms), int(seq)


async def test_append_assigns_stream_ids_and_read_round_trips(redis: Redis) -> None:
    feed = ChangeFeed(redis, "vs")
    events = [_event(0), _event(1, EventKind.PLAN_ADDED, "vhp-2c-4gb-amd")]
    ids = await feed.append(events)
    assert len(ids) == 2 and _key(ids[0]) < _key(ids[1])
    read = await feed.read()
    assert [event.id for event in read] == ids
    for stored, original, event_id in zip(read, events, ids, strict=True):
        assert stored == msgspec.structs.replace(original, id=event_id)
        assert stored.at.tzinfo is not None
    assert await redis.exists("vs:changes") == 1
    assert await feed.count() == 2


async def test_after_is_an_exclusive_cursor_for_pagination(redis: Redis) -> None:
    feed = ChangeFeed(redis, "vs")
    ids = await feed.append([_event(index) for index in range(7)])
    pages: list[list[str]] = []
    cursor: str | None = None
    while True:
        page = await feed.read(after=cursor, limit=3)
        if not page:
            break
        pages.append([event.id for event in page])
        cursor = page[-1].id
    assert pages == [ids[0:3], ids[3:6], ids[6:7]]


async def test_since_is_inclusive_and_until_exclusive_on_the_commit_time(redis: Redis) -> None:
    feed = ChangeFeed(redis, "vs")
    (early,) = await feed.append([_event(0)])
    await asyncio.sleep(0.005)  # the next id lands in a later millisecond
    (late,) = await feed.append([_event(1)])
    cut = from_ms(_ms(late))
    assert [event.id for event in await feed.read(since=cut)] == [late]
    assert [event.id for event in await feed.read(until=cut)] == [early]
    assert [event.id for event in await feed.read(since=from_ms(_ms(early)), until=cut)] == [early]
    # `after` wins over an older `since`; an older `after` does not widen a later `since`.
    assert [event.id for event in await feed.read(after=early, since=from_ms(0))] == [late]
    assert [event.id for event in await feed.read(after="0-1", since=cut)] == [late]


async def test_kind_and_subject_filters_cross_batches(redis: Redis) -> None:
    feed = ChangeFeed(redis, "vs")
    noise = [_event(index, EventKind.STOCK_CHANGED, "other") for index in range(1200)]
    wanted = [_event(index, EventKind.PLAN_RETIRED, "vc2-1c-1gb") for index in range(3)]
    await feed.append([*noise[:600], wanted[0], *noise[600:], wanted[1], wanted[2]])
    found = await feed.read(kinds={"plan_retired"}, limit=10)
    assert [event.detail["n"] for event in found] == [0, 1, 2]
    by_subject = await feed.read(subject="vc2-1c-1gb", limit=2)
    assert len(by_subject) == 2 and all(event.subject == "vc2-1c-1gb" for event in by_subject)
    newest = await feed.latest(limit=2, kinds={"plan_retired"})
    assert [event.detail["n"] for event in newest] == [2, 1]
    assert (await feed.latest(limit=1))[0].kind == EventKind.PLAN_RETIRED
    about = await feed.latest(limit=2, subject="other")
    assert [event.detail["n"] for event in about] == [1199, 1198]
    assert all(event.subject == "other" for event in about)
    assert [event.detail["n"] for event in await feed.latest(10, subject="vc2-1c-1gb")] == [
        2,
        1,
        0,
    ]


async def test_add_to_is_atomic_with_the_rest_of_a_transaction(redis: Redis) -> None:
    feed = ChangeFeed(redis, "vs")
    async with redis.pipeline(transaction=True) as pipe:
        await pipe.watch("vs:guard")
        pipe.multi()  # type: ignore[no-untyped-call]
        pipe.set("vs:snapshot", "new")
        feed.add_to(pipe, [_event(0), _event(1)])
        await redis.set("vs:guard", "someone else committed")  # invalidates our WATCH
        with pytest.raises(WatchError):
            await pipe.execute()
    assert await redis.get("vs:snapshot") is None
    assert await feed.read() == []


async def test_naive_times_are_stored_as_utc(redis: Redis) -> None:
    feed = ChangeFeed(redis, "vs")
    naive = ChangeEvent(kind=EventKind.ENDPOINT_DOWN, at=datetime(2026, 1, 1, 0, 0), subject="api")
    await feed.append([naive])
    (stored,) = await feed.read()
    assert stored.at == datetime(2026, 1, 1, tzinfo=UTC)
    assert stored.detail == {} and stored.old is None


async def test_empty_append_and_empty_feed(redis: Redis) -> None:
    feed = ChangeFeed(redis, "other")
    assert await feed.append([]) == []
    assert await feed.read() == []
    assert await feed.latest() == []
    assert feed.key == "other:changes"
