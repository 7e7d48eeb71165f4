"""The one query layer over history: the Redis window and the archive before it.

``History`` answers "as of" (``catalogue_at``, ``stock_at``, ``plans``), the change feed over
any range (``changes``), price and stock intervals (``price_intervals``, ``stock_intervals``)
and statistics (``stock_share``), for the CLI, the API, the pages and the alerts alike.
Times from the window's boundary on are read from Redis; earlier ones from the archive.

Cost: "as of" in the window is the catalogue base plus the window's versions, and the latest
stock checkpoint plus at most a day or so of flips; in the archive it is the month's catalogue
checkpoint plus that month's versions, and the day's stock checkpoint plus that day's flips.
Neither grows with the length of history.
"""

from __future__ import annotations

import asyncio
import bisect
import weakref
from collections.abc import AsyncIterator, Callable, Collection, Hashable, Iterable
from datetime import datetime, timedelta
from typing import Any, TypeVar

import pyarrow.compute as pc
from redis.asyncio import Redis

from vultr_scraper_core.config import Config, Secrets
from vultr_scraper_core.history import prices as price_history
from vultr_scraper_core.history import tables
from vultr_scraper_core.history.files import Archive, ArchiveError, archive_from_config
from vultr_scraper_core.history.tables import PriceInterval, StockInterval
from vultr_scraper_core.history.window import (
    DAY,
    DayFiles,
    Window,
    day_name,
    day_start,
    decode_prices,
)
from vultr_scraper_core.models import Catalogue
from vultr_scraper_core.store.catalog import CatalogueStore, RecordVersion, catalogue_of
from vultr_scraper_core.store.changes import ChangeEvent, ChangeFeed
from vultr_scraper_core.store.codec import as_utc, decode, text, to_ms
from vultr_scraper_core.store.queries import (
    CatalogueRows,
    PlanFilter,
    PlanRow,
    RedisPast,
    StockLookup,
    current_rows,
    find_plans,
    points_lookup,
    rows_for,
)
from vultr_scraper_core.store.stock import (
    Flip,
    Interval,
    StockCheckpoint,
    StockStore,
    apply_flips,
    pair_key,
    split_pair,
)

T = TypeVar("T")


class History:
    """Reads history wherever it lives. Every method may raise ``ArchiveError`` (naming the
    file) when the answer needs an archive file that is missing or unreadable; answers from
    the window alone never touch the archive."""

    def __init__(self, redis: Redis, prefix: str, archive: Archive | None) -> None:
        self.redis = redis
        self.prefix = prefix
        self.archive = archive
        self.window = Window(redis, prefix, archive)
        self.redis_past = RedisPast(redis, prefix)

    @classmethod
    def from_config(
        cls, redis: Redis, config: Config, secrets: Secrets, archive: Archive | None = None
    ) -> History:
        """The history of the configured store and archive (``archive``: one already open,
        so that its cache of read files is shared)."""
        return cls(
            redis,
            config.redis.key_prefix,
            archive if archive is not None else archive_from_config(config, secrets),
        )

    def _archive(self) -> Archive:
        if self.archive is None:
            raise ArchiveError(
                "history before the Redis window is in the archive, which is not configured"
            )
        return self.archive

    async def _read(self, files: DayFiles | None, dataset: str) -> Any:
        if files is None or dataset not in files.files:
            return tables.SCHEMAS[dataset].empty_table()
        return await asyncio.to_thread(self._archive().read_table, files.files[dataset])

    async def _decoded(self, files: DayFiles | None, dataset: str, decode: Callable[[Any], T]) -> T:
        """``decode`` of a day's file, cached by the archive (shared: do not change it)."""
        if files is None or dataset not in files.files:
            return decode(tables.SCHEMAS[dataset].empty_table())
        return await asyncio.to_thread(self._archive().read_decoded, files.files[dataset], decode)

    # -- as of --------------------------------------------------------------------------------

    async def catalogue_at(self, at: datetime) -> Catalogue:
        moment = as_utc(at)
        boundary = await self.window.boundary()
        if boundary is None or moment >= boundary:
            return await self.redis_past.catalogue_at(moment)
        _, found = await self._archived_versions(moment)
        return await asyncio.to_thread(catalogue_of, found)

    async def catalogue_rows_at(self, at: datetime) -> CatalogueRows:
        moment = as_utc(at)
        boundary = await self.window.boundary()
        if boundary is None or moment >= boundary:
            return await self.redis_past.catalogue_rows_at(moment)
        key, found = await self._archived_versions(moment)
        return await rows_for(key, lambda: catalogue_of(found))

    async def _archived_versions(self, moment: datetime) -> tuple[Hashable, list[RecordVersion]]:
        """The archived versions the catalogue at ``moment`` is made of (none before the first
        archived day: nothing is known), and what identifies them: the files read (written
        once, never changed) and how many versions were taken."""
        checkpoint = await self.window.catalog_checkpoint_before(moment)
        if checkpoint is None:
            return ("archive",), []
        found: list[RecordVersion] = []
        read: list[str] = []
        for index, files in enumerate(await self.window.days_from(checkpoint, moment)):
            datasets = ("catalog_checkpoints", "versions") if index == 0 else ("versions",)
            for dataset in datasets:
                entries = await self._decoded(files, dataset, tables.versions_of)
                if files is not None and dataset in files.files:
                    read.append(str(files.files[dataset]))
                if dataset == "catalog_checkpoints":
                    found.extend(entries)  # the whole catalogue at the day's start
                else:
                    found.extend(entry for entry in entries if entry.at <= moment)
        return ("archive", tuple(read), len(found)), found

    async def stock_points_at(self, at: datetime) -> StockCheckpoint | None:
        moment = as_utc(at)
        boundary = await self.window.boundary()
        if boundary is None or moment >= boundary:
            return await StockStore(self.redis, self.prefix).points_at(to_ms(moment))
        files = await self.window.day(day_start(moment))
        if files is None:
            return {}  # before the first archived day
        state = dict(await self._decoded(files, "stock_checkpoints", tables.checkpoint_of))
        flips = await self._decoded(files, "stock_flips", tables.flips_of)  # in time order
        limit = to_ms(moment)
        apply_flips(state, flips[: bisect.bisect_right(flips, limit, key=_flip_ms)])
        return state

    async def stock_at(self, at: datetime) -> StockLookup:
        moment = as_utc(at)
        points = await self.stock_points_at(moment)
        if points is None:
            return await self.redis_past.stock_at(moment)
        checks = await StockStore(self.redis, self.prefix).region_checks()
        return points_lookup(points, checks, moment)

    async def plans(self, flt: PlanFilter, at: datetime | None = None) -> list[PlanRow]:
        return await find_plans(self.redis, self.prefix, flt, at=at, past=self)

    # -- the change feed ----------------------------------------------------------------------

    async def changes(
        self,
        *,
        after: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        kinds: Collection[str] | None = None,
        subject: str | None = None,
        limit: int = 100,
    ) -> list[ChangeEvent]:
        """Like ``ChangeFeed.read`` (ascending ids, ``after`` exclusive, ``since`` inclusive,
        ``until`` exclusive on the id's time), across the archive and the window."""
        feed = ChangeFeed(self.redis, self.prefix)
        boundary = await self.window.boundary()
        found: list[ChangeEvent] = []
        before_boundary = boundary is not None and (since is None or as_utc(since) < boundary)
        if after and boundary is not None and _id_key(after)[0] >= to_ms(boundary):
            before_boundary = False
        if boundary is not None and before_boundary:
            async for event in self._archived_events(after, since, until, boundary):
                if (kinds is None or event.kind in kinds) and (
                    subject is None or event.subject == subject
                ):
                    found.append(event)
                    if len(found) >= limit:
                        return found
            if until is not None and as_utc(until) <= boundary:
                return found
        rest = await feed.read(
            after=after, since=since, until=until, kinds=kinds, subject=subject,
            limit=limit - len(found),
        )  # fmt: skip
        return [*found, *rest]

    async def _archived_events(
        self,
        after: str | None,
        since: datetime | None,
        until: datetime | None,
        boundary: datetime,
    ) -> AsyncIterator[ChangeEvent]:
        low = _id_key(after) if after else (-1, -1)
        since_ms = to_ms(since) if since is not None else None
        until_ms = to_ms(until) if until is not None else None
        for files in await self._days_between(
            since, min(boundary, as_utc(until)) if until else boundary
        ):
            for event in tables.events_of(await self._read(files, "changes")):
                key = _id_key(event.id)
                if key <= low:
                    continue
                if since_ms is not None and key[0] < since_ms:
                    continue
                if until_ms is not None and key[0] >= until_ms:
                    continue
                yield event

    async def _days_between(self, since: datetime | None, until: datetime) -> list[DayFiles]:
        """Archived days that may hold something in ``[since, until)``, in order."""
        # Day names ("YYYY-MM-DD") sort as the days do: compared as text, not parsed (a
        # year of days is parsed on every read otherwise).
        first = day_name(day_start(as_utc(since))) if since is not None else ""
        end = as_utc(until)
        last = day_name(end) if end > day_start(end) else day_name(end - DAY)  # days < until
        return [files for files in await self.window.days() if first <= files.day <= last]

    async def _rows_of_days(
        self,
        days: list[DayFiles],
        dataset: str,
        rows_of: Callable[[Any], Iterable[T]],
        plan: str | None = None,
        region: str | None = None,
    ) -> list[T]:
        """``rows_of`` the rows of ``dataset`` about ``plan`` / ``region`` in each of
        ``days``, read and filtered in one worker thread: a plan page reads a day's file per
        dataset for each of 90 days, and a thread hand-off per file cost more than the read."""
        if not days:
            return []
        archive = self._archive()

        def read() -> list[T]:
            found: list[T] = []
            for files in days:
                if dataset in files.files:
                    table = archive.read_table(files.files[dataset])
                    found.extend(rows_of(_only(table, plan=plan, region=region)))
            return found

        return await asyncio.to_thread(read)

    # -- intervals and statistics -------------------------------------------------------------

    async def price_intervals(
        self,
        since: datetime | None = None,
        until: datetime | None = None,
        plan: str | None = None,
    ) -> list[PriceInterval]:
        """Every price interval overlapping ``[since, until)`` (of ``plan`` only, if given),
        archive first, then the window (``valid_to`` None: the price still holds)."""
        found: list[PriceInterval] = []
        boundary = await self.window.boundary()
        if boundary is not None and (since is None or as_utc(since) < boundary):
            days = await self._days_between(since, _day_after(boundary))
            found.extend(await self._rows_of_days(days, "prices", tables.prices_of, plan=plan))
        if plan is not None:
            found.extend((await self._price_index()).intervals(plan))
        else:
            state = await self.window.prices()
            raw = await self.redis.zrange(
                CatalogueStore(self.redis, self.prefix).keys.versions, 0, -1
            )
            versions = [decode(member, RecordVersion) for member in raw]
            found.extend(price_history.advance(state, versions))
            found.extend(price_history.open_intervals(state))
        return [row for row in found if _overlaps(row.valid_from, row.valid_to, since, until)]

    async def _price_index(self) -> price_history.PriceIndex:
        """The window's prices per plan, read and grouped once per catalogue revision and
        window boundary (a commit adds versions and changes the revision; moving a day
        changes the boundary, the versions and the price state together)."""
        meta_key = CatalogueStore(self.redis, self.prefix).keys.meta
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hget(meta_key, "revision")
            pipe.get(self.window.keys.boundary)
            revision, boundary = await pipe.execute()
        key = (text(revision), text(boundary or b"")) if revision is not None else None
        known = _PRICE_INDEXES.get(self.redis, {}).get(self.prefix)
        if key is not None and known is not None and known[0] == key:
            return known[1]
        versions_key = CatalogueStore(self.redis, self.prefix).keys.versions
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hget(meta_key, "revision")
            pipe.get(self.window.keys.boundary)
            pipe.get(self.window.keys.prices)
            pipe.zrange(versions_key, 0, -1)
            revision, boundary, raw_prices, raw_versions = await pipe.execute()
        index = await asyncio.to_thread(_build_price_index, raw_prices, raw_versions)
        if revision is not None:
            key = (text(revision), text(boundary or b""))
            _PRICE_INDEXES.setdefault(self.redis, {})[self.prefix] = (key, index)
        return index

    async def stock_intervals(
        self,
        since: datetime | None = None,
        until: datetime | None = None,
        plan: str | None = None,
        region: str | None = None,
        pairs: Collection[tuple[str, str]] | None = None,
    ) -> list[StockInterval]:
        """Every in-stock interval overlapping ``[since, until)`` (``end`` None: still in),
        of ``plan`` and/or ``region``, or of the (plan, region) ``pairs`` only.

        A plan's intervals are read by HMGET of its pairs in every region whose stock was
        ever checked (intervals are only written for checked regions) or that the catalogue
        knows; ``pairs`` reads just those; only a region alone scans the intervals hash."""
        found: list[StockInterval] = []
        boundary = await self.window.boundary()
        wanted = set(pairs) if pairs is not None else None
        if boundary is not None and (since is None or as_utc(since) < boundary):
            days = await self._days_between(since, _day_after(boundary))
            archived = await self._rows_of_days(
                days, "stock_intervals", tables.stock_intervals_of, plan=plan, region=region
            )
            found.extend(
                row for row in archived if wanted is None or (row.plan, row.region) in wanted
            )
        stock = StockStore(self.redis, self.prefix)
        stored: dict[str, list[Interval]]
        if wanted is not None or plan is not None:
            if wanted is None:
                regions = [region] if region is not None else await self._known_regions()
                wanted = {(str(plan), name) for name in regions}
            stored = await self._intervals_of(sorted(pair_key(p, r) for p, r in wanted))
        else:
            stored = await stock.intervals(plan, region)
        low = as_utc(since) if since is not None else None
        high = as_utc(until) if until is not None else None
        for pair, listed in stored.items():
            pair_plan, pair_region = split_pair(pair)
            if (plan is not None and pair_plan != plan) or (
                region is not None and pair_region != region
            ):
                continue
            # Only the intervals in the range become rows (a region page reads 14 days of
            # some 800 pairs, whose intervals go back to the window's start).
            found.extend(
                StockInterval(plan=pair_plan, region=pair_region, start=i.start, end=i.end)
                for i in listed
                if (high is None or i.start < high)
                and (low is None or i.end is None or i.end > low)
            )
        return sorted(
            (
                row
                for row in found
                if (plan is None or row.plan == plan)
                and (region is None or row.region == region)
                and _overlaps(row.start, row.end, since, until)
            ),
            key=lambda row: (row.plan, row.region, row.start),
        )

    async def _known_regions(self) -> list[str]:
        checked = await self.redis.hkeys(StockStore(self.redis, self.prefix).keys.regions)  # type: ignore[misc]
        sold = (await current_rows(self.redis, self.prefix)).catalogue.regions
        return sorted({*(text(name) for name in checked), *sold})

    async def _intervals_of(self, pairs: list[str]) -> dict[str, list[Interval]]:
        if not pairs:
            return {}
        key = StockStore(self.redis, self.prefix).keys.intervals
        raw = await self.redis.hmget(key, pairs)  # type: ignore[misc]
        return {
            pair: decode(value, list[Interval])
            for pair, value in zip(pairs, raw, strict=True)
            if value is not None
        }

    async def stock_share(self, plan: str, region: str, since: datetime, until: datetime) -> float:
        """The share of ``[since, until)`` that ``plan`` was in stock in ``region``."""
        low, high = as_utc(since), as_utc(until)
        if high <= low:
            return 0.0
        total = 0.0
        for row in await self.stock_intervals(low, high, plan, region):
            start = max(row.start, low)
            end = min(row.end or high, high)
            total += max(0.0, (end - start).total_seconds())
        return total / (high - low).total_seconds()


# One price index per Redis client and key prefix, for its (catalogue revision, boundary).
_PRICE_INDEXES: weakref.WeakKeyDictionary[
    Redis, dict[str, tuple[tuple[str, str], price_history.PriceIndex]]
] = weakref.WeakKeyDictionary()


def _build_price_index(
    raw_prices: bytes | None, raw_versions: list[bytes]
) -> price_history.PriceIndex:
    return price_history.PriceIndex(
        decode_prices(raw_prices) if raw_prices else {},
        (decode(member, RecordVersion) for member in raw_versions),
    )


def _day_after(moment: datetime) -> datetime:
    """The end of ``moment``'s day: archived days that start before it may hold ``moment``."""
    return day_start(as_utc(moment)) + timedelta(days=1)


def _only(data: Any, *, plan: str | None = None, region: str | None = None) -> Any:
    """The rows of an archive table about ``plan`` and/or ``region`` (filtered in Arrow)."""
    if plan is not None:
        data = data.filter(pc.equal(data["plan"], plan))
    if region is not None:
        data = data.filter(pc.equal(data["region"], region))
    return data


def _flip_ms(flip: Flip) -> int:
    return flip.at_ms


def _overlaps(
    start: datetime, end: datetime | None, since: datetime | None, until: datetime | None
) -> bool:
    if until is not None and start >= as_utc(until):
        return False
    return since is None or end is None or end > as_utc(since)


def _id_key(stream_id: str) -> tuple[int, int]:
    ms, _, seq = stream_id.partition("-")
    return (int(ms), int(seq or 0))
