"""Where the Redis window starts and which archive files hold each day before it.

Keys (``p`` = the key prefix):

* ``p:history:boundary``: the window's start in ms. Everything observed before it lives in the
  archive, everything from it on in Redis (absent: nothing has been moved yet);
* ``p:history:days``: hash, ``YYYY-MM-DD`` -> DayFiles (the archive files of that day and
  their row counts). Only files listed here exist for readers: a file written by a move that
  was killed before it committed is an orphan that the next move deletes;
* ``p:history:catalog_checkpoints``: sorted set of the days (score: the day's start in ms)
  whose files include a catalogue checkpoint;
* ``p:history:prices``: compressed PriceState, the price of every (plan, region, kind) at the
  boundary and since when (so that an archived price interval has its true start);
* ``p:history:lock``: held by the worker that is moving history (one at a time).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

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

DAY = timedelta(days=1)


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


class Window:
    """Reads the history keys."""

    def __init__(self, redis: Redis, prefix: str) -> None:
        self.redis = redis
        self.keys = HistoryKeys(prefix)

    async def boundary(self) -> datetime | None:
        raw = await self.redis.get(self.keys.boundary)
        return from_ms(int(text(raw))) if raw else None

    async def day(self, moment: datetime) -> DayFiles | None:
        raw = await self.redis.hget(self.keys.days, day_name(moment))  # type: ignore[misc]
        return decode(raw, DayFiles) if raw else None

    async def days_from(self, first: datetime, last: datetime) -> list[DayFiles | None]:
        """The files of each day from ``first`` through ``last`` (None: not archived), in one
        round trip."""
        names = []
        day = day_start(first)
        while day <= last:
            names.append(day_name(day))
            day += DAY
        if not names:
            return []
        raw = await self.redis.hmget(self.keys.days, names)  # type: ignore[misc]
        return [decode(value, DayFiles) if value else None for value in raw]

    async def days(self) -> list[DayFiles]:
        raw = await self.redis.hgetall(self.keys.days)  # type: ignore[misc]
        found = [decode(value, DayFiles) for value in raw.values()]
        return sorted(found, key=lambda entry: entry.day)

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
