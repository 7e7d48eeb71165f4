"""Property: the change feed's index by subject always lists exactly the feed's events about
each subject, and every read about a subject answers what a scan of the feed answers.

Hypothesis draws operations on one feed in a real redis-server: appends of events about a few
subjects (alone, or in a MULTI with another write, as the jobs write them; several in one
millisecond, or later), trims to a point in time as the history mover's commit does, the
index forgotten (a store written before it existed: no marker, no index keys), the index built
(what the history mover does first), and an index stream made unwritable (its next write fails
and drops the marker). After every operation, while the marker is there, each subject's index
holds exactly the ids of the feed's entries about it and nothing else is indexed; whatever the
index's state, ``latest`` and ``read`` about a subject (with limits, kinds, ``before``,
``after``, ``since``, ``until``) return the events an independent scan of the stream finds.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from redis.asyncio import Redis

from vultr_scraper_core.store.changes import ChangeEvent, ChangeFeed, EventKind
from vultr_scraper_core.store.codec import from_ms, text

SUBJECTS = ["vc2-1c-1gb", "vhp-2c-4gb-amd", "fra", "api: health", "catalog"]
KINDS = [EventKind.PRICE_CHANGED, EventKind.STOCK_CHANGED, EventKind.PLAN_ADDED]
START_MS = 1_767_225_600_000  # 2026-01-01


@dataclass(frozen=True)
class Op:
    # append, append_multi, trim, forget, build, jam
    kind: str
    subjects: tuple[int, ...] = ()
    step_ms: int = 0
    cut: float = 0.0


ops = st.lists(
    st.one_of(
        st.builds(
            Op,
            kind=st.sampled_from(["append", "append", "append_multi"]),
            subjects=st.lists(st.integers(0, len(SUBJECTS) - 1), min_size=1, max_size=7).map(tuple),
            step_ms=st.sampled_from([0, 0, 1, 5, 1000]),
        ),
        st.builds(Op, kind=st.just("trim"), cut=st.floats(0, 1.2)),
        st.builds(Op, kind=st.sampled_from(["forget", "build", "jam"])),
    ),
    min_size=1,
    max_size=14,
)


class Clock:
    def __init__(self) -> None:
        self.ms = START_MS

    def __call__(self) -> int:
        return self.ms


def _event(subject: str, index: int) -> ChangeEvent:
    return ChangeEvent(
        kind=KINDS[index % len(KINDS)],
        at=datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=index),
        subject=subject,
        region="fra" if index % 2 else None,
        old=str(index),
        new=str(index + 1),
    )


async def _stream(redis: Redis, key: str) -> list[tuple[str, dict[str, str]]]:
    entries = await redis.xrange(key)
    return [
        (text(entry_id), {text(k): text(v) for k, v in fields.items()})
        for entry_id, fields in entries
    ]


def _key(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq)


class World:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self.clock = Clock()
        self.feed = ChangeFeed(redis, f"p{uuid.uuid4().hex[:8]}", id_clock=self.clock)
        self.count = 0

    async def apply(self, op: Op) -> None:
        feed, index = self.feed, self.feed.index
        if op.kind in ("append", "append_multi"):
            self.clock.ms += op.step_ms
            events = [_event(SUBJECTS[s], self.count + n) for n, s in enumerate(op.subjects)]
            self.count += len(events)
            if op.kind == "append":
                assert len(await feed.append(events)) == len(events)
            else:
                async with self.redis.pipeline(transaction=True) as pipe:
                    pipe.set(f"{feed.key}-other", self.count)
                    feed.add_to(pipe, events)
                    await pipe.execute()
        elif op.kind == "trim":
            # As the history mover's commit: a whole millisecond boundary, in a MULTI.
            cut = START_MS + int((self.clock.ms - START_MS + 1) * op.cut)
            async with self.redis.pipeline(transaction=True) as pipe:
                feed.trim_to(pipe, f"{cut}-0")
                await pipe.execute()
        elif op.kind == "forget":
            subjects = [text(s) for s in await self.redis.smembers(index.subjects)]  # type: ignore[misc]
            await self.redis.delete(index.marker, index.subjects, *(index.key(s) for s in subjects))
        elif op.kind == "build":
            built = await index.build()
            assert built is None or built >= 0
            assert await index.built()
        elif op.kind == "jam":
            # An index stream holding an id beyond any the feed will assign: the next write
            # to it fails, which must only drop the marker (readers scan until a build).
            await self.redis.sadd(index.subjects, SUBJECTS[0])  # type: ignore[misc]
            jam = index.key(SUBJECTS[0])
            if not await self.redis.xrange(jam, min="99999999999999-0"):  # not jammed yet
                await self.redis.xadd(jam, {"e": ""}, id="99999999999999-0")
            self.clock.ms += 1
            await feed.append([_event(SUBJECTS[0], self.count)])
            self.count += 1

    async def check_index(self) -> None:
        index = self.feed.index
        if not await index.built():
            return
        stream = await _stream(self.redis, self.feed.key)
        expected = {
            subject: [entry_id for entry_id, fields in stream if fields["subject"] == subject]
            for subject in SUBJECTS
        }
        for subject, ids in expected.items():
            listed = [entry_id for entry_id, _ in await _stream(self.redis, index.key(subject))]
            assert listed == ids, subject
        keys = {text(k) async for k in self.redis.scan_iter(match=f"{index.key_prefix}*")}
        assert keys == {index.key(s) for s, ids in expected.items() if ids}
        members = {text(s) for s in await self.redis.smembers(index.subjects)}  # type: ignore[misc]
        assert members == {s for s, ids in expected.items() if ids}

    async def check_reads(self) -> None:
        stream = await _stream(self.redis, self.feed.key)
        feed = self.feed
        for subject in SUBJECTS:
            about = [entry_id for entry_id, fields in stream if fields["subject"] == subject]
            newest = list(reversed(about))
            for limit in (1, 3, 100):
                got = await feed.latest(limit=limit, subject=subject)
                assert [e.id for e in got] == newest[:limit], (subject, limit)
                assert all(e.subject == subject for e in got)
                assert [e.id for e in await feed.read(subject=subject, limit=limit)] == about[
                    :limit
                ]
            kinds = {str(KINDS[0])}
            of_kind = [
                entry_id
                for entry_id, fields in stream
                if fields["subject"] == subject and fields["kind"] in kinds
            ]
            got = await feed.latest(limit=2, subject=subject, kinds=kinds)
            assert [e.id for e in got] == list(reversed(of_kind))[:2]
            if about:
                middle = about[len(about) // 2]
                got = await feed.latest(limit=100, subject=subject, before=middle)
                assert [e.id for e in got] == [i for i in newest if _key(i) < _key(middle)]
                got = await feed.read(subject=subject, after=middle, limit=100)
                assert [e.id for e in got] == [i for i in about if _key(i) > _key(middle)]
                ms = _key(middle)[0]
                got = await feed.read(
                    subject=subject, since=from_ms(ms), until=from_ms(ms + 2), limit=100
                )
                assert [e.id for e in got] == [i for i in about if ms <= _key(i)[0] < ms + 2]


async def run(redis_url: str, sequence: list[Op]) -> None:
    redis = Redis.from_url(redis_url)
    try:
        world = World(redis)
        for op in sequence:
            await world.apply(op)
            await world.check_index()
            await world.check_reads()
        # Whatever happened, the history mover's build leaves a complete index.
        await world.feed.index.build()
        assert await world.feed.index.built()
        await world.check_index()
        await world.check_reads()
    finally:
        await redis.aclose()


@settings(
    derandomize=True,  # the same sequences on every run and machine
    deadline=None,
    max_examples=60,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(sequence=ops)
def test_the_subject_index_lists_the_feed_by_subject(redis_url: str, sequence: list[Op]) -> None:
    asyncio.run(run(redis_url, sequence))


async def _trimmed_behind_the_index(redis_url: str) -> None:
    redis = Redis.from_url(redis_url)
    try:
        clock = Clock()
        feed = ChangeFeed(redis, "skip", id_clock=clock)
        ids: list[str] = []
        for n in range(6):
            clock.ms += 10
            ids.extend(await feed.append([_event("vc2-1c-1gb", n), _event("fra", n)]))
        plan_ids = ids[0::2]
        # The feed alone loses its oldest three events; their index entries stay behind.
        await redis.xtrim(feed.key, minid=plan_ids[3], approximate=False)
        assert len(await redis.xrange(feed.index.key("vc2-1c-1gb"))) == 6
        got = await feed.read(subject="vc2-1c-1gb", limit=2)
        assert [e.id for e in got] == plan_ids[3:5]
        got = await feed.latest(subject="vc2-1c-1gb", limit=10)
        assert [e.id for e in got] == plan_ids[:2:-1]
    finally:
        await redis.aclose()


def test_an_id_whose_event_was_trimmed_is_skipped(redis_url: str) -> None:
    asyncio.run(_trimmed_behind_the_index(redis_url))


async def _writes_without_marker(redis_url: str) -> dict[str, Any]:
    redis = Redis.from_url(redis_url)
    try:
        feed = ChangeFeed(redis, "old")
        await feed.append([_event("fra", 0)])
        await redis.delete(feed.index.marker, feed.index.subjects, feed.index.key("fra"))
        await feed.append([_event("fra", 1), _event("ewr", 2)])  # a feed older than its index
        return {
            "built": await feed.index.built(),
            "keys": await redis.exists(feed.index.key("fra"), feed.index.key("ewr")),
            "read": [e.new for e in await feed.latest(subject="fra")],
            "build": await feed.index.build(),
            "after": [e.new for e in await feed.latest(subject="fra")],
            "again": await feed.index.build(),
        }
    finally:
        await redis.aclose()


def test_a_feed_written_before_the_index_is_scanned_until_built(redis_url: str) -> None:
    found = asyncio.run(_writes_without_marker(redis_url))
    assert found == {
        "built": False,
        "keys": 0,
        "read": ["2", "1"],
        "build": 3,
        "after": ["2", "1"],
        "again": None,
    }
