"""Where the Redis window starts and which archive files hold each day before it.

Keys (``p`` = the key prefix):

* ``p:history:boundary``: the window's start in ms. Everything observed before it lives in the
  archive, everything from it on in Redis (absent: nothing has been moved yet);
* ``p:history:days``: hash, ``YYYY-MM-DD`` -> DayFiles (the archive files of that day and
  their row counts), for the days of months not yet compacted. Only files listed here or in a
  month's manifest exist for readers: a file written by a move that was killed before it
  committed is an orphan that the next move deletes;
* ``p:history:months``: hash, ``YYYY-MM`` -> the path of that month's manifest, an archive
  file listing the DayFiles of each of its days. Once every day of a month is archived, the
  mover writes the manifest and, in one commit, lists it here and drops the month's days from
  ``p:history:days``: Redis keeps one short entry per archived month instead of one DayFiles
  per archived day, so its bookkeeping does not grow with the archive's age by more than a few
  dozen bytes a month;
* ``p:history:catalog_checkpoints``: sorted set of the days (score: the day's start in ms)
  whose files include a catalogue checkpoint;
* ``p:history:prices``: compressed PriceState, the price of every (plan, region, kind) at the
  boundary and since when (so that an archived price interval has its true start);
* ``p:history:lock``: held by the worker that is moving history (one at a time).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

import msgspec
from redis.asyncio import Redis

from vultr_scraper_core.store.codec import (
    compress,
    decode,
    decompress,
    encode,
    from_ms,
    text,
    to_ms,
)

if TYPE_CHECKING:
    from vultr_scraper_core.history.files import Archive

DAY = timedelta(days=1)
MANIFESTS = "manifests"


class DayFiles(msgspec.Struct, kw_only=True):
    day: str  # YYYY-MM-DD
    files: dict[str, str] = {}  # dataset -> path relative to the archive root
    rows: dict[str, int] = {}  # dataset -> rows in that file


class PriceSince(msgspec.Struct, array_like=True, frozen=True):
    price: str
    since_ms: int


# plan -> "region|price kind" -> the price and since when
PriceState = dict[str, dict[str, PriceSince]]


class HistoryKeys:
    def __init__(self, prefix: str) -> None:
        self.boundary = f"{prefix}:history:boundary"
        self.days = f"{prefix}:history:days"
        self.months = f"{prefix}:history:months"
        self.catalog_checkpoints = f"{prefix}:history:catalog_checkpoints"
        self.prices = f"{prefix}:history:prices"
        self.lock = f"{prefix}:history:lock"


def day_start(moment: datetime) -> datetime:
    return datetime(moment.year, moment.month, moment.day, tzinfo=UTC)


def day_name(moment: datetime | date) -> str:
    return f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}"


def month_name(moment: datetime | date) -> str:
    return f"{moment.year:04d}-{moment.month:02d}"


def parse_day(name: str) -> datetime:
    return datetime.strptime(name, "%Y-%m-%d").replace(tzinfo=UTC)


def manifest_path(month: str, suffix: str) -> str:
    return f"{MANIFESTS}/month={month}/{month}-{suffix}.parquet"


def manifest_table(entries: list[DayFiles]) -> Any:
    """A month's DayFiles as a table: one row per (day, dataset); ``path`` empty when the
    day's dataset had no rows and so no file."""
    import pyarrow as pa

    rows = [
        (entry.day, dataset, entry.files.get(dataset, ""), count)
        for entry in sorted(entries, key=lambda found: found.day)
        for dataset, count in sorted({**dict.fromkeys(entry.files, 0), **entry.rows}.items())
    ]
    return pa.table(
        {
            "day": pa.array([row[0] for row in rows], pa.string()),
            "dataset": pa.array([row[1] for row in rows], pa.string()),
            "path": pa.array([row[2] for row in rows], pa.string()),
            "rows": pa.array([row[3] for row in rows], pa.int64()),
        }
    )


def manifest_days(table: Any) -> dict[str, DayFiles]:
    """The inverse of ``manifest_table``: day name -> DayFiles."""
    found: dict[str, DayFiles] = {}
    columns = [table.column(name).to_pylist() for name in ("day", "dataset", "path", "rows")]
    for day, dataset, path, rows in zip(*columns, strict=True):
        entry = found.setdefault(day, DayFiles(day=day, files={}, rows={}))
        entry.rows[dataset] = rows
        if path:
            entry.files[dataset] = path
    return found


class Window:
    """Reads the history keys (and the months' manifests from ``archive``: a window with no
    archive raises ``ArchiveError`` when asked about a compacted month)."""

    def __init__(self, redis: Redis, prefix: str, archive: Archive | None = None) -> None:
        self.redis = redis
        self.keys = HistoryKeys(prefix)
        self.archive = archive

    async def boundary(self) -> datetime | None:
        raw = await self.redis.get(self.keys.boundary)
        return from_ms(int(text(raw))) if raw else None

    async def day(self, moment: datetime) -> DayFiles | None:
        name = day_name(moment)
        raw = await self.redis.hget(self.keys.days, name)  # type: ignore[misc]
        if raw:
            return decode(raw, DayFiles)
        return (await self._from_manifests([name])).get(name)

    async def days_from(self, first: datetime, last: datetime) -> list[DayFiles | None]:
        """The files of each day from ``first`` through ``last`` (None: not archived), in one
        round trip (two when a compacted month is among them)."""
        names = []
        day = day_start(first)
        while day <= last:
            names.append(day_name(day))
            day += DAY
        if not names:
            return []
        raw = await self.redis.hmget(self.keys.days, names)  # type: ignore[misc]
        missing = [name for name, value in zip(names, raw, strict=True) if not value]
        compacted = await self._from_manifests(missing) if missing else {}
        return [
            decode(value, DayFiles) if value else compacted.get(name)
            for name, value in zip(names, raw, strict=True)
        ]

    async def days(self) -> list[DayFiles]:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hgetall(self.keys.days)
            pipe.hgetall(self.keys.months)
            raw, months = await pipe.execute()
        found: dict[str, DayFiles] = {}
        for path in months.values():
            found.update(await self._manifest(text(path)))
        for value in raw.values():
            entry = decode(value, DayFiles)
            found[entry.day] = entry
        return [found[name] for name in sorted(found)]

    async def months(self) -> dict[str, str]:
        """Compacted month -> its manifest's path."""
        raw = await self.redis.hgetall(self.keys.months)  # type: ignore[misc]
        return {text(month): text(path) for month, path in raw.items()}

    async def _from_manifests(self, names: list[str]) -> dict[str, DayFiles]:
        months = sorted({name[:7] for name in names})
        paths = await self.redis.hmget(self.keys.months, months)  # type: ignore[misc]
        found: dict[str, DayFiles] = {}
        for path in paths:
            if path:
                found.update(await self._manifest(text(path)))
        return {name: found[name] for name in names if name in found}

    async def _manifest(self, path: str) -> dict[str, DayFiles]:
        if self.archive is None:
            from vultr_scraper_core.history.files import ArchiveError

            raise ArchiveError(
                "history before the Redis window is in the archive, which is not configured"
            )
        found: dict[str, DayFiles] = await asyncio.to_thread(
            self.archive.read_decoded, path, manifest_days
        )
        return found

    async def catalog_checkpoint_before(self, moment: datetime) -> datetime | None:
        found = await self.redis.zrevrangebyscore(
            self.keys.catalog_checkpoints, to_ms(moment), "-inf", start=0, num=1
        )
        return parse_day(text(found[0])) if found else None

    async def prices(self) -> PriceState:
        raw = await self.redis.get(self.keys.prices)
        return decode_prices(raw) if raw else {}


def encode_prices(state: PriceState) -> bytes:
    return compress(encode(state))


def decode_prices(raw: bytes) -> PriceState:
    return decode(decompress(raw), PriceState)
