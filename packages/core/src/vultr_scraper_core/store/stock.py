"""Per (plan, region) stock: the current state and the intervals a plan was in stock.

Keys (``p`` = the key prefix; a pair is written ``"<plan>@<region>"``):

* ``p:stock:state``: hash, pair -> StockState (current state, since when, last seen in stock);
* ``p:stock:intervals``: hash, pair -> list of [start, end) intervals in stock (end null: open);
* ``p:stock:regions``: hash, region -> RegionCheck (first and last successful check).

Only transitions are written (plus the region check times), never one row per poll. A pair
with no state in a region that has been checked was never seen in stock there.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import msgspec
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from vultr_scraper_core.models import Shape
from vultr_scraper_core.store.changes import ChangeEvent, ChangeFeed
from vultr_scraper_core.store.codec import decode, encode, text
from vultr_scraper_core.store.watched import execute_staged


class StockState(msgspec.Struct, kw_only=True, omit_defaults=True):
    in_stock: bool
    since: datetime  # when the current state was first observed
    first_seen: datetime  # first check that listed the plan in this region
    last_in_stock: datetime | None = None  # last check that listed it (while out of stock)


class Interval(msgspec.Struct, array_like=True):
    start: datetime
    end: datetime | None = None  # exclusive; None while still in stock

    def covers(self, moment: datetime) -> bool:
        return self.start <= moment and (self.end is None or moment < self.end)


class RegionCheck(msgspec.Struct, kw_only=True):
    first_checked: datetime
    last_checked: datetime


class StockView(msgspec.Struct, kw_only=True):
    states: dict[str, StockState]  # pair -> state
    regions: dict[str, RegionCheck]


def pair_key(plan: str, region: str) -> str:
    return f"{plan}@{region}"


def split_pair(pair: str) -> tuple[str, str]:
    plan, _, region = pair.rpartition("@")
    return plan, region


class StockKeys:
    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.state = f"{prefix}:stock:state"
        self.intervals = f"{prefix}:stock:intervals"
        self.regions = f"{prefix}:stock:regions"
        self.schema = f"{prefix}:schema"


def _decode_view(states: dict[Any, Any], regions: dict[Any, Any]) -> StockView:
    return StockView(
        states={text(key): decode(value, StockState) for key, value in states.items()},
        regions={text(key): decode(value, RegionCheck) for key, value in regions.items()},
    )


class StockTx:
    def __init__(self, store: StockStore, pipe: Pipeline, current: StockView) -> None:
        self.store = store
        self.pipe = pipe
        self.current = current
        self.staged = False

    async def intervals(self, pairs: Iterable[str]) -> dict[str, list[Interval]]:
        """The stored intervals of ``pairs`` (read under the same WATCH)."""
        wanted = list(dict.fromkeys(pairs))
        if not wanted:
            return {}
        raw = await self.pipe.hmget(self.store.keys.intervals, wanted)  # type: ignore[misc]
        return {
            pair: decode(value, list[Interval]) if value else []
            for pair, value in zip(wanted, raw, strict=True)
        }

    def stage(
        self,
        *,
        states: dict[str, StockState],
        intervals: dict[str, list[Interval]],
        regions: dict[str, RegionCheck],
        events: Sequence[ChangeEvent],
        shapes: dict[str, Shape] | None = None,
    ) -> None:
        keys = self.store.keys
        self.pipe.multi()  # type: ignore[no-untyped-call]
        self.staged = True
        if states:
            self.pipe.hset(keys.state, mapping={p: encode(s) for p, s in states.items()})
        if intervals:
            self.pipe.hset(keys.intervals, mapping={p: encode(i) for p, i in intervals.items()})
        if regions:
            self.pipe.hset(keys.regions, mapping={r: encode(c) for r, c in regions.items()})
        if shapes:
            self.pipe.hset(keys.schema, mapping={path: encode(s) for path, s in shapes.items()})
        ChangeFeed(self.store.redis, keys.prefix).add_to(self.pipe, events)

    async def execute(self) -> bool:
        return await execute_staged(self.pipe, self.staged)


class StockStore:
    def __init__(self, redis: Redis, prefix: str) -> None:
        self.redis = redis
        self.keys = StockKeys(prefix)

    async def load(self) -> StockView:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hgetall(self.keys.state)
            pipe.hgetall(self.keys.regions)
            states, regions = await pipe.execute()
        return _decode_view(states, regions)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[StockTx]:
        async with self.redis.pipeline(transaction=True) as pipe:
            await pipe.watch(self.keys.state, self.keys.regions, self.keys.intervals)
            states = await pipe.hgetall(self.keys.state)  # type: ignore[misc]
            regions = await pipe.hgetall(self.keys.regions)  # type: ignore[misc]
            yield StockTx(self, pipe, _decode_view(states, regions))

    async def region_checks(self) -> dict[str, RegionCheck]:
        raw = await self.redis.hgetall(self.keys.regions)  # type: ignore[misc]
        return {text(key): decode(value, RegionCheck) for key, value in raw.items()}

    async def shape(self, path: str) -> Shape | None:
        raw = await self.redis.hget(self.keys.schema, path)  # type: ignore[misc]
        return decode(raw, dict[str, list[str]]) if raw else None

    async def intervals(
        self, plan: str | None = None, region: str | None = None
    ) -> dict[str, list[Interval]]:
        """Pair -> intervals, optionally for one plan and/or region."""
        raw = await self.redis.hgetall(self.keys.intervals)  # type: ignore[misc]
        found: dict[str, list[Interval]] = {}
        for key, value in raw.items():
            pair = text(key)
            pair_plan, pair_region = split_pair(pair)
            if (plan is None or pair_plan == plan) and (region is None or pair_region == region):
                found[pair] = decode(value, list[Interval])
        return found
