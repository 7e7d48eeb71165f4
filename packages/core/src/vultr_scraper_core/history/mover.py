"""Moving history out of the Redis window into the archive, one whole day at a time.

A move of day D (``[B, B + 1 day)``, B the window's boundary) happens only once the day is
older than the window, and only by the worker holding ``p:history:lock``:

1. read what Redis holds from before the day's end: change events, record versions, stock
   flips, the stock state at the day's start (a checkpoint) and the intervals that ended;
2. write one Parquet file per dataset for the day, each under a new name;
3. commit in one MULTI/EXEC, under WATCH of the lock and the intervals: trim exactly what was
   written from Redis (the change feed with its index by subject), fold the versions into the
   catalogue base, list the files in ``p:history:days`` and advance the boundary.

Killed before 3, Redis is unchanged and the files are orphans nobody reads (the next move of
that day deletes them and writes its own): nothing is lost and nothing counted twice. The
commit is all or nothing. A worker whose lock expired (or was taken over) cannot commit.

Once every day of a month is archived, the month is compacted the same way: its manifest
(the DayFiles of each of its days) is written under a new name, then one commit lists it in
``p:history:months`` and drops the month's entries from ``p:history:days``.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import msgspec
from loguru import logger
from redis.asyncio import Redis
from redis.exceptions import WatchError

from vultr_scraper_core.history import prices as price_history
from vultr_scraper_core.history import tables
from vultr_scraper_core.history.files import Archive
from vultr_scraper_core.history.window import (
    DAY,
    DayFiles,
    HistoryKeys,
    Window,
    day_name,
    day_start,
    encode_prices,
    manifest_path,
    manifest_table,
    month_name,
)
from vultr_scraper_core.store.catalog import (
    CatalogueKeys,
    CatalogueStore,
    RecordVersion,
    encode_base,
    fold_base,
)
from vultr_scraper_core.store.changes import ChangeEvent, ChangeFeed
from vultr_scraper_core.store.codec import decode, from_ms, text, to_ms, utcnow
from vultr_scraper_core.store.stock import (
    Interval,
    StockCheckpoint,
    StockStore,
    apply_flips,
    encode_checkpoint,
    flip_member,
    interval_flips,
    split_pair,
)

# Checkpoints are taken for days that began at least this long ago, so that no stock check
# still running can add a flip before one (a scrape job's timeout is 5 minutes).
CHECKPOINT_DELAY = timedelta(hours=1)
LOCK_TTL_MS = 15 * 60 * 1000
COMMIT_ATTEMPTS = 10
_BATCH = 2000

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""


# Tests only: "<stage>:<n>" makes the n-th arrival at ``stage`` in this process announce itself
# on stderr and wait there, so that a test can SIGKILL a real mover at a known point of a move.
# Unset (as in production) it is one dictionary lookup per stage.
PAUSE_VARIABLE = "VULTR_SCRAPER_TEST_HISTORY_PAUSE"
PAUSE_STAGES = ("write", "commit", "compact")  # a day's file written; all written; manifest
_arrivals: dict[str, int] = {}


def _pause_wanted(stage: str) -> bool:
    wanted = os.environ.get(PAUSE_VARIABLE)
    if not wanted:
        return False
    name, _, nth = wanted.partition(":")
    if name != stage:
        return False
    _arrivals[stage] = _arrivals.get(stage, 0) + 1
    if _arrivals[stage] != int(nth or 1):
        return False
    print(f"history mover paused at {stage} #{nth or 1}", file=sys.stderr, flush=True)
    return True


def _hook_sync(stage: str) -> None:
    if _pause_wanted(stage):
        time.sleep(3600)


async def _hook(stage: str) -> None:
    if _pause_wanted(stage):
        await asyncio.sleep(3600)


class LockLost(Exception):
    """Another worker holds the history lock now; this one stops without committing."""


class DayMoved(msgspec.Struct, kw_only=True):
    day: str
    rows: dict[str, int]
    seconds: float


class MoveSummary(msgspec.Struct, kw_only=True):
    moved: list[DayMoved] = []
    boundary: datetime | None = None
    skipped: str | None = None  # why nothing was tried (another worker holds the lock)
    orphans_deleted: int = 0
    months_compacted: list[str] = []


class HistoryMover:
    def __init__(
        self,
        redis: Redis,
        prefix: str,
        archive: Archive,
        *,
        window: timedelta,
        clock: Callable[[], datetime] = utcnow,
        lock_ttl_ms: int = LOCK_TTL_MS,
    ) -> None:
        if window < DAY:
            raise ValueError("the history window must be at least one day")
        self.redis = redis
        self.prefix = prefix
        self.archive = archive
        self.window = window
        self.clock = clock
        self.lock_ttl_ms = lock_ttl_ms
        self.keys = HistoryKeys(prefix)
        self.stock = StockStore(redis, prefix)
        self.catalogue = CatalogueStore(redis, prefix)
        self.feed = ChangeFeed(redis, prefix)
        self.token = uuid.uuid4().hex
        self._orphans = 0

    async def run(self, max_days: int | None = None) -> MoveSummary:
        """Move every day older than the window (at most ``max_days``), under the lock."""
        acquired = await self.redis.set(self.keys.lock, self.token, nx=True, px=self.lock_ttl_ms)
        if not acquired:
            return MoveSummary(
                skipped="another worker is moving history", boundary=await self._boundary()
            )
        self._orphans = 0
        try:
            await self.ensure_checkpoints()
            indexed = await self.feed.index.build(self._renew)  # a feed older than its index
            if indexed is not None:
                logger.bind(events=indexed).info("history: indexed the change feed by subject")
            moved: list[DayMoved] = []
            start = await self._boundary() or await self._first_day()
            cutoff = day_start(self.clock() - self.window)
            while start is not None and start + DAY <= cutoff:
                if max_days is not None and len(moved) >= max_days:
                    break
                moved.append(await self.move_day(start))
                start += DAY
                await self._renew()
            compacted = await self.compact_months()
            return MoveSummary(
                moved=moved,
                boundary=await self._boundary(),
                orphans_deleted=self._orphans,
                months_compacted=compacted,
            )
        finally:
            await self.redis.eval(_RELEASE, 1, self.keys.lock, self.token)  # type: ignore[misc]

    async def _renew(self) -> None:
        renewed = await self.redis.eval(  # type: ignore[misc]
            _RENEW, 1, self.keys.lock, self.token, str(self.lock_ttl_ms)
        )
        if not renewed:
            raise LockLost("the history lock expired or was taken over")

    async def _boundary(self) -> datetime | None:
        return await Window(self.redis, self.prefix, self.archive).boundary()

    async def _first_day(self) -> datetime | None:
        """The day of the oldest thing the window holds (nothing moved yet)."""
        firsts: list[int] = []
        entries = await self.redis.xrange(self.feed.key, count=1)
        if entries:
            firsts.append(int(text(entries[0][0]).partition("-")[0]))
        for key in (CatalogueKeys(self.prefix).versions, self.stock.keys.flips):
            found = await self.redis.zrange(key, 0, 0, withscores=True)
            if found:
                firsts.append(int(found[0][1]))
        return day_start(from_ms(min(firsts))) if firsts else None

    # -- stock checkpoints --------------------------------------------------------------------

    async def ensure_checkpoints(self) -> int:
        """Write the stock checkpoint of every day start up to an hour ago that lacks one (and
        first, once, the flips of intervals stored before flips existed). Returns how many."""
        await self._index_old_intervals()
        keys = self.stock.keys
        latest = await self.redis.zrevrange(keys.checkpoint_times, 0, 0, withscores=True)
        state: StockCheckpoint
        if latest:
            taken = int(latest[0][1])
            found = await self.stock.checkpoint_before(taken)
            state = found[1] if found is not None else {}
            day = from_ms(taken) + DAY
        else:
            first = await self.redis.zrange(keys.flips, 0, 0, withscores=True)
            if not first:
                return 0
            state = {}
            day = day_start(from_ms(int(first[0][1])))
            taken = None
        last = day_start(self.clock() - CHECKPOINT_DELAY)
        written = 0
        if taken is None:  # genesis: nothing was in stock before the first flip's day
            await self._write_checkpoint(to_ms(day), state)
            written += 1
            day += DAY
        while day <= last:
            apply_flips(state, await self.stock.flips(to_ms(day - DAY) - 1, to_ms(day) - 1))
            await self._write_checkpoint(to_ms(day), state)
            written += 1
            day += DAY
        return written

    async def _write_checkpoint(self, at_ms: int, state: StockCheckpoint) -> None:
        keys = self.stock.keys
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(keys.checkpoints, mapping={str(at_ms): encode_checkpoint(state)})
            pipe.zadd(keys.checkpoint_times, {str(at_ms): at_ms})
            await pipe.execute()

    async def _index_old_intervals(self) -> None:
        marker = f"{self.stock.keys.flips}:indexed"
        if await self.redis.exists(marker):
            return
        stored = await self.stock.intervals()
        members = {
            flip_member(flip): flip.at_ms
            for pair, intervals in stored.items()
            for flip in interval_flips(pair, intervals)
        }
        async with self.redis.pipeline(transaction=True) as pipe:
            if members:
                pipe.zadd(self.stock.keys.flips, members)
            pipe.set(marker, "1")
            await pipe.execute()

    # -- one day ------------------------------------------------------------------------------

    async def move_day(self, start: datetime) -> DayMoved:
        began = time.perf_counter()
        end = start + DAY
        end_ms = to_ms(end)
        day = day_name(start)
        await self._delete_orphans(start)
        events = await self._events_before(end_ms)
        raw_versions = await self.redis.zrangebyscore(
            self.catalogue.keys.versions, "-inf", f"({end_ms}"
        )
        versions = [decode(member, RecordVersion) for member in raw_versions]
        base = await self.catalogue.base()
        window = Window(self.redis, self.prefix, self.archive)
        price_state = await window.prices()
        flips = await self.stock.flips(to_ms(start) - 1, end_ms - 1)
        at_start = await self.stock.state_before(to_ms(start))
        closing = sorted({flip.pair for flip in flips if not flip.in_stock})
        stored = await self._intervals(closing)
        ended = [
            tables.StockInterval(plan=plan, region=region, start=interval.start, end=interval.end)
            for pair in closing
            for plan, region in [split_pair(pair)]
            for interval in stored.get(pair, [])
            if interval.end is not None and interval.end < end
        ]
        closed_prices = price_history.advance(price_state, versions)
        new_base = fold_base(base, versions, end)
        checkpoint_due = start.day == 1 or not await self.redis.zcard(self.keys.catalog_checkpoints)
        datasets: dict[str, Any] = {
            "changes": tables.changes_table(events),
            "versions": tables.versions_table(versions),
            "prices": tables.prices_table(closed_prices),
            "stock_intervals": tables.stock_intervals_table(ended),
            "stock_flips": tables.flips_table(flips),
            "stock_checkpoints": tables.checkpoint_table(at_start),
        }
        if checkpoint_due:
            datasets["catalog_checkpoints"] = tables.versions_table(
                base.versions if base else [], "catalog_checkpoints"
            )
        files = await asyncio.to_thread(self._write_day, start, datasets)
        await _hook("commit")
        await self._commit(
            start,
            DayFiles(
                day=day, files=files, rows={name: data.num_rows for name, data in datasets.items()}
            ),
            raw_versions=raw_versions,
            new_base=encode_base(new_base),
            prices=encode_prices(price_state),
            closing=closing,
            checkpoint_due=checkpoint_due,
        )
        seconds = time.perf_counter() - began
        rows = {name: data.num_rows for name, data in datasets.items()}
        logger.bind(day=day, rows=rows, seconds=round(seconds, 3)).info(
            f"history: moved {day} to the archive"
        )
        return DayMoved(day=day, rows=rows, seconds=seconds)

    def _write_day(self, start: datetime, datasets: dict[str, Any]) -> dict[str, str]:
        suffix = uuid.uuid4().hex[:12]
        files: dict[str, str] = {}
        for name, data in datasets.items():
            if data.num_rows == 0 and name not in ("stock_checkpoints", "catalog_checkpoints"):
                continue
            path = f"{name}/month={month_name(start)}/{day_name(start)}-{suffix}.parquet"
            self.archive.write_table(path, data)
            files[name] = path
            _hook_sync("write")
        return files

    async def _delete_orphans(self, start: datetime) -> None:
        """Files of this day left by a move that never committed (none are listed yet)."""
        listed = await Window(self.redis, self.prefix, self.archive).day(start)
        keep = set(listed.files.values()) if listed else set()
        directories = [f"{name}/month={month_name(start)}" for name in tables.DATASETS]
        self._orphans += await asyncio.to_thread(
            self._sweep, directories, f"{day_name(start)}-", keep
        )

    def _sweep(self, directories: list[str], prefix: str, keep: set[str]) -> int:
        """Delete the files in ``directories`` named ``prefix...`` that are not in ``keep``,
        and the temporary files (``.prefix...``) of a write that was killed half-way."""
        deleted = 0
        for directory in directories:
            for path in self.archive.list_dir(directory):
                name = path.rpartition("/")[2]
                if name.removeprefix(".").startswith(prefix) and path not in keep:
                    self.archive.delete(path)
                    deleted += 1
        return deleted

    # -- compacting whole months --------------------------------------------------------------

    async def compact_months(self) -> list[str]:
        """Compact every month whose days are all archived (those before the boundary's
        month) and that has day entries in Redis and no manifest yet. Returns the months."""
        boundary = await self._boundary()
        if boundary is None:
            return []
        window = Window(self.redis, self.prefix, self.archive)
        names = [text(name) for name in await self.redis.hkeys(self.keys.days)]  # type: ignore[misc]
        done = await window.months()
        due = sorted({name[:7] for name in names} - set(done))
        compacted = []
        for month in due:
            if month >= month_name(boundary):
                continue
            await self._compact(month, sorted(name for name in names if name.startswith(month)))
            compacted.append(month)
            await self._renew()
        return compacted

    async def _compact(self, month: str, names: list[str]) -> None:
        raw = await self.redis.hmget(self.keys.days, names)  # type: ignore[misc]
        entries = [decode(value, DayFiles) for value in raw if value]
        directory = f"{manifest_path(month, '')}".rpartition("/")[0]
        self._orphans += await asyncio.to_thread(self._sweep, [directory], f"{month}-", set())
        path = manifest_path(month, uuid.uuid4().hex[:12])
        await asyncio.to_thread(self.archive.write_table, path, manifest_table(entries))
        await _hook("compact")
        async with self.redis.pipeline(transaction=True) as pipe:
            await pipe.watch(self.keys.lock, self.keys.days)
            holder = await pipe.get(self.keys.lock)
            if holder is None or text(holder) != self.token:
                raise LockLost("the history lock expired or was taken over; not compacting")
            still = await pipe.hmget(self.keys.days, names)  # type: ignore[misc]
            if list(still) != list(raw):
                raise RuntimeError(f"the days of {month} changed while compacting them")
            pipe.multi()  # type: ignore[no-untyped-call]
            pipe.hset(self.keys.months, month, path)
            pipe.hdel(self.keys.days, *names)
            await pipe.execute()
        logger.bind(month=month, days=len(entries), manifest=path).info(
            f"history: compacted the day list of {month}"
        )

    async def _events_before(self, end_ms: int) -> list[ChangeEvent]:
        events: list[ChangeEvent] = []
        bound = "-"
        while True:
            batch = await self.redis.xrange(
                self.feed.key, min=bound, max=f"({end_ms}-0", count=_BATCH
            )
            for entry_id, fields in batch:
                event = ChangeFeed._decode(entry_id, fields, None, None)
                if event is not None:
                    events.append(event)
            if len(batch) < _BATCH:
                return events
            bound = f"({text(batch[-1][0])}"

    async def _intervals(self, pairs: list[str], reader: Any = None) -> dict[str, list[Interval]]:
        if not pairs:
            return {}
        raw: list[Any] = await (reader or self.redis).hmget(self.stock.keys.intervals, pairs)  # type: ignore[misc]
        return {
            pair: decode(value, list[Interval]) if value else []
            for pair, value in zip(pairs, raw, strict=True)
        }

    async def _commit(
        self,
        start: datetime,
        files: DayFiles,
        *,
        raw_versions: list[bytes],
        new_base: bytes,
        prices: bytes,
        closing: list[str],
        checkpoint_due: bool,
    ) -> None:
        end = start + DAY
        end_ms = to_ms(end)
        stock = self.stock.keys
        old_checkpoints = [
            text(member)
            for member in await self.redis.zrangebyscore(
                stock.checkpoint_times, "-inf", f"({end_ms}"
            )
        ]
        for _ in range(COMMIT_ATTEMPTS):
            async with self.redis.pipeline(transaction=True) as pipe:
                await pipe.watch(self.keys.lock, stock.intervals)
                holder = await pipe.get(self.keys.lock)
                if holder is None or text(holder) != self.token:
                    raise LockLost("the history lock expired or was taken over; not committing")
                current = await self._intervals(closing, pipe)
                pipe.multi()  # type: ignore[no-untyped-call]
                self.feed.trim_to(pipe, f"{end_ms}-0")
                if raw_versions:
                    pipe.zrem(self.catalogue.keys.versions, *raw_versions)
                pipe.set(self.catalogue.keys.base, new_base)
                pipe.set(self.keys.prices, prices)
                pipe.zremrangebyscore(stock.flips, "-inf", f"({end_ms}")
                kept = {
                    pair: [i for i in intervals if i.end is None or i.end >= end]
                    for pair, intervals in current.items()
                }
                remaining = {pair: intervals for pair, intervals in kept.items() if intervals}
                emptied = [pair for pair, intervals in kept.items() if not intervals]
                if remaining:
                    pipe.hset(
                        stock.intervals,
                        mapping={pair: msgspec.json.encode(i) for pair, i in remaining.items()},
                    )
                if emptied:
                    pipe.hdel(stock.intervals, *emptied)
                if old_checkpoints:
                    pipe.hdel(stock.checkpoints, *old_checkpoints)
                    pipe.zrem(stock.checkpoint_times, *old_checkpoints)
                pipe.hset(self.keys.days, mapping={files.day: msgspec.json.encode(files)})
                if checkpoint_due:
                    pipe.zadd(self.keys.catalog_checkpoints, {files.day: to_ms(start)})
                pipe.set(self.keys.boundary, str(end_ms))
                try:
                    await pipe.execute()
                except WatchError:
                    continue
                return
        raise RuntimeError(f"could not commit the move of {files.day}: Redis kept changing")
