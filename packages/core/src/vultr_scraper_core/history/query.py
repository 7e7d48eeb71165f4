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
from collections.abc import AsyncIterator, Callable, Collection
from datetime import datetime
from typing import Any, TypeVar

from redis.asyncio import Redis

from vultr_scraper_core.config import Config, Secrets
from vultr_scraper_core.history import prices as price_history
from vultr_scraper_core.history import tables
from vultr_scraper_core.history.files import Archive, ArchiveError, archive_from_config
from vultr_scraper_core.history.tables import PriceInterval, StockInterval
from vultr_scraper_core.history.window import DayFiles, Window, day_start, parse_day
from vultr_scraper_core.models import Catalogue
from vultr_scraper_core.store.catalog import CatalogueStore, RecordVersion, catalogue_of
from vultr_scraper_core.store.changes import ChangeEvent, ChangeFeed
from vultr_scraper_core.store.codec import as_utc, decode, to_ms
from vultr_scraper_core.store.queries import (
    PlanFilter,
    PlanRow,
    RedisPast,
    StockLookup,
    find_plans,
    points_lookup,
)
from vultr_scraper_core.store.stock import (
    Flip,
    StockCheckpoint,
    StockStore,
    apply_flips,
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
        self.window = Window(redis, prefix)
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
        checkpoint = await self.window.catalog_checkpoint_before(moment)
        if checkpoint is None:
            return Catalogue()  # before the first archived day: nothing is known
        found: list[RecordVersion] = []
        for index, files in enumerate(await self.window.days_from(checkpoint, moment)):
            if index == 0:
                found.extend(await self._decoded(files, "catalog_checkpoints", tables.versions_of))
            found.extend(
                entry
                for entry in await self._decoded(files, "versions", tables.versions_of)
                if entry.at <= moment
            )
        return await asyncio.to_thread(catalogue_of, found)

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
        first = day_start(as_utc(since)) if since is not None else None
        return [
            files
            for files in await self.window.days()
            if (first is None or parse_day(files.day) >= first) and parse_day(files.day) < until
        ]

    # -- intervals and statistics -------------------------------------------------------------

    async def price_intervals(
        self, since: datetime | None = None, until: datetime | None = None
    ) -> list[PriceInterval]:
        """Every price interval overlapping ``[since, until)``, archive first, then the window
        (``valid_to`` None: the price still holds)."""
        found: list[PriceInterval] = []
        boundary = await self.window.boundary()
        if boundary is not None and (since is None or as_utc(since) < boundary):
            for files in await self.window.days():
                found.extend(tables.prices_of(await self._read(files, "prices")))
        state = await self.window.prices()
        raw = await self.redis.zrange(CatalogueStore(self.redis, self.prefix).keys.versions, 0, -1)
        versions = [decode(member, RecordVersion) for member in raw]
        found.extend(price_history.advance(state, versions))
        found.extend(price_history.open_intervals(state))
        return [row for row in found if _overlaps(row.valid_from, row.valid_to, since, until)]

    async def stock_intervals(
        self,
        since: datetime | None = None,
        until: datetime | None = None,
        plan: str | None = None,
        region: str | None = None,
    ) -> list[StockInterval]:
        """Every in-stock interval overlapping ``[since, until)`` (``end`` None: still in)."""
        found: list[StockInterval] = []
        boundary = await self.window.boundary()
        if boundary is not None and (since is None or as_utc(since) < boundary):
            for files in await self.window.days():
                found.extend(tables.stock_intervals_of(await self._read(files, "stock_intervals")))
        for pair, listed in (
            await StockStore(self.redis, self.prefix).intervals(plan, region)
        ).items():
            pair_plan, pair_region = split_pair(pair)
            found.extend(
                StockInterval(plan=pair_plan, region=pair_region, start=i.start, end=i.end)
                for i in listed
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
