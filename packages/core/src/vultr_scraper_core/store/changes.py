"""The change feed: one append-only Redis stream of typed events with old and new values.

Key: ``f"{prefix}:changes"``. Each entry has the fields ``kind``, ``subject`` and ``event`` (the
ChangeEvent as JSON). The stream id (``"<ms>-<seq>"``) is the event's ``id``: assigned by Redis
on append, stable, sortable, and usable as a pagination cursor. ``since`` / ``until`` filters
use that id's time (the commit time); ``at`` is when the change was observed, which for an
accepted quarantine can be earlier.

Values: ``old`` / ``new`` are plain JSON. Money is the exact decimal text Vultr published
(``"7.5"``, ``"0.007"``); whole records (plan added / retired) are JSON objects.
The feed is never trimmed: it is the history.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Sequence
from datetime import datetime
from typing import Any

import msgspec
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from vultr_scraper_core.store.codec import as_utc, decode, encode, text, to_ms
from vultr_scraper_core.store.kinds import (
    EventKind as EventKind,
)  # re-exported for the feed's users

_BATCH = 500


class ChangeEvent(msgspec.Struct, frozen=True, kw_only=True):
    kind: str
    at: datetime  # UTC-aware: when the change was observed
    subject: str  # plan id / region id / endpoint name / endpoint path for drift
    id: str = ""  # the stream id, assigned on append
    region: str | None = None
    field: str | None = None  # price kind, spec field, "in_stock", drifting field
    old: Any = None
    new: Any = None
    detail: dict[str, Any] = {}


def _field(fields: dict[Any, Any], name: str) -> Any:
    return fields.get(name.encode(), fields.get(name))


class ChangeFeed:
    """``id_clock`` (ms since the epoch), when given, sets the time part of appended ids
    instead of Redis' clock: for simulations and tests that replay history at its own times
    (ids must still grow)."""

    def __init__(
        self, redis: Redis, prefix: str, id_clock: Callable[[], int] | None = None
    ) -> None:
        self.redis = redis
        self.key = f"{prefix}:changes"
        self.id_clock = id_clock

    def add_to(self, pipe: Pipeline, events: Sequence[ChangeEvent]) -> None:
        """Queue one XADD per event on ``pipe`` (a MULTI pipeline: atomic with the rest)."""
        for event in events:
            stored = msgspec.structs.replace(event, id="", at=as_utc(event.at))
            pipe.xadd(
                self.key,
                {"kind": str(event.kind), "subject": event.subject, "event": encode(stored)},
                id=f"{self.id_clock()}-*" if self.id_clock is not None else "*",
            )

    async def append(self, events: Sequence[ChangeEvent]) -> list[str]:
        """Append ``events`` atomically; returns their ids in order."""
        if not events:
            return []
        async with self.redis.pipeline(transaction=True) as pipe:
            self.add_to(pipe, events)
            ids = await pipe.execute()
        return [text(entry_id) for entry_id in ids]

    async def read(
        self,
        *,
        after: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        kinds: Collection[str] | None = None,
        subject: str | None = None,
        limit: int = 100,
    ) -> list[ChangeEvent]:
        """Events in ascending id order. ``after`` is an exclusive id cursor, ``since``
        inclusive and ``until`` exclusive (both on the id's time)."""
        start = "-"
        if since is not None:
            start = f"{to_ms(since)}-0"
        if after and (since is None or _id_key(after) >= _id_key(start)):
            start = f"({after}"
        end = f"({to_ms(until)}-0" if until is not None else "+"
        return await self._collect(
            lambda bound: self.redis.xrange(self.key, min=bound, max=end, count=_BATCH),
            start,
            limit,
            kinds,
            subject,
        )

    async def latest(
        self,
        limit: int = 20,
        kinds: Collection[str] | None = None,
        subject: str | None = None,
        before: str | None = None,
    ) -> list[ChangeEvent]:
        """The newest ``limit`` events (of ``kinds``, about ``subject``; older than the id
        ``before``, exclusive, when given), newest first."""
        if before is not None and _id_key(before) == (0, 0):
            return []  # nothing precedes the first possible id (Redis refuses "(0-0")
        return await self._collect(
            lambda bound: self.redis.xrevrange(self.key, max=bound, min="-", count=_BATCH),
            f"({before}" if before else "+",
            limit,
            kinds,
            subject,
        )

    async def _collect(
        self,
        entries_from: Callable[[str], Awaitable[list[tuple[Any, Any]]]],
        bound: str,
        limit: int,
        kinds: Collection[str] | None,
        subject: str | None,
    ) -> list[ChangeEvent]:
        """Up to ``limit`` events (of ``kinds``, about ``subject``) in the order of
        ``entries_from``, which reads up to ``_BATCH`` stream entries from ``bound`` on; each
        further batch starts after the last id read."""
        found: list[ChangeEvent] = []
        while len(found) < limit:
            batch = await entries_from(bound)
            for entry_id, fields in batch:
                event = self._decode(entry_id, fields, kinds, subject)
                if event is not None:
                    found.append(event)
                    if len(found) >= limit:
                        break
            if len(batch) < _BATCH:
                break
            bound = f"({text(batch[-1][0])}"
        return found

    async def count(self) -> int:
        return int(await self.redis.xlen(self.key))

    @staticmethod
    def _decode(
        entry_id: bytes | str,
        fields: dict[Any, Any],
        kinds: Collection[str] | None,
        subject: str | None,
    ) -> ChangeEvent | None:
        kind = _field(fields, "kind")
        if kinds is not None and (kind is None or text(kind) not in kinds):
            return None
        if subject is not None and text(_field(fields, "subject") or b"") != subject:
            return None
        event = decode(_field(fields, "event"), ChangeEvent)
        return msgspec.structs.replace(event, id=text(entry_id))


def _id_key(stream_id: str) -> tuple[int, int]:
    """Sort key of a stream id (``"-"`` and ``"<ms>"`` forms included)."""
    if stream_id in {"-", ""}:
        return (-1, -1)
    ms, _, seq = stream_id.partition("-")
    return (int(ms), int(seq or 0))
