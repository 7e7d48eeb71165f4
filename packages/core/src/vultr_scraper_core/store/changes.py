"""The change feed: one append-only Redis stream of typed events with old and new values.

Key: ``f"{prefix}:changes"``. Each entry has the fields ``kind``, ``subject`` and ``event`` (the
ChangeEvent as JSON). The stream id (``"<ms>-<seq>"``) is the event's ``id``: assigned by Redis
on append, stable, sortable, and usable as a pagination cursor. ``since`` / ``until`` filters
use that id's time (the commit time); ``at`` is when the change was observed, which for an
accepted quarantine can be earlier.

Values: ``old`` / ``new`` are plain JSON. Money is the exact decimal text Vultr published
(``"7.5"``, ``"0.007"``); whole records (plan added / retired) are JSON objects.
Redis holds the window of recent history; the history mover trims older entries (moved to the
archive) with ``trim_to``. Each event's id is also written to its subject's index
(``subject_index``), so that the events about one plan are read without scanning the feed.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from datetime import datetime
from typing import Any

import msgspec
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from vultr_scraper_core.store.codec import as_utc, decode, encode, text, to_ms
from vultr_scraper_core.store.kinds import (
    EventKind as EventKind,
)  # re-exported for the feed's users
from vultr_scraper_core.store.subject_index import SubjectIndex

_BATCH = 500
_PER_SCRIPT = 1000  # events per append script call (its arguments are held in memory at once)


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
        self.index = SubjectIndex(redis, self.key)

    def add_to(self, pipe: Pipeline, events: Sequence[ChangeEvent]) -> None:
        """Queue appending ``events`` and indexing them by subject on ``pipe`` (a MULTI
        pipeline: atomic with the rest): one script call per ``_PER_SCRIPT`` events, each
        returning the ids it assigned."""
        id_spec = f"{self.id_clock()}-*" if self.id_clock is not None else "*"
        entries = [
            (
                str(event.kind),
                event.subject,
                encode(msgspec.structs.replace(event, id="", at=as_utc(event.at))),
            )
            for event in events
        ]
        for offset in range(0, len(entries), _PER_SCRIPT):
            self.index.add_to(pipe, id_spec, entries[offset : offset + _PER_SCRIPT])

    def trim_to(self, pipe: Pipeline, min_id: str) -> None:
        """Queue dropping every event older than the id ``min_id``, and its index entry."""
        self.index.trim_to(pipe, min_id)

    async def append(self, events: Sequence[ChangeEvent]) -> list[str]:
        """Append ``events`` atomically; returns their ids in order."""
        if not events:
            return []
        async with self.redis.pipeline(transaction=True) as pipe:
            self.add_to(pipe, events)
            replies = await pipe.execute()
        return [text(entry_id) for reply in replies for entry_id in reply]

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
        return await self._collect(False, start, end, limit, kinds, subject)

    async def latest(
        self,
        limit: int = 20,
        kinds: Collection[str] | None = None,
        subject: str | None = None,
        before: str | None = None,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[ChangeEvent]:
        """The newest ``limit`` events (of ``kinds``, about ``subject``; older than the id
        ``before``, exclusive, when given; recorded at or after ``since`` and before ``until``,
        on the id's time), newest first."""
        if until is not None:
            bound = f"{max(to_ms(until), 0)}-0"
            if before is None or _id_key(bound) < _id_key(before):
                before = bound
        if before is not None and _id_key(before) == (0, 0):
            return []  # nothing precedes the first possible id (Redis refuses "(0-0")
        end = f"{to_ms(since)}-0" if since is not None and to_ms(since) > 0 else "-"
        return await self._collect(
            True, f"({before}" if before else "+", end, limit, kinds, subject
        )

    async def _collect(
        self,
        reverse: bool,
        start: str,
        end: str,
        limit: int,
        kinds: Collection[str] | None,
        subject: str | None,
    ) -> list[ChangeEvent]:
        """Up to ``limit`` events (of ``kinds``, about ``subject``) from ``start`` to ``end``
        (stream range bounds; newest first if ``reverse``). About one subject, the subject's
        index is read (while it is built), else the feed is scanned ``_BATCH`` entries at a
        time; each further batch starts after the last id read."""
        command = "XREVRANGE" if reverse else "XRANGE"
        indexed = subject is not None
        found: list[ChangeEvent] = []
        while len(found) < limit:
            batch: list[tuple[Any, Any]] | None = None
            if subject is not None and indexed:
                # Every entry is about the subject: only kinds (and trimmed ids) drop any.
                wanted = _BATCH if kinds is not None else limit - len(found)
                reply = await self.index.entries(subject, command, start, end, wanted)
                if reply is None:
                    indexed = False  # not built (yet): scan the feed
                else:
                    read, last, batch = reply
                    exhausted = read < wanted
            if batch is None:
                if reverse:
                    batch = await self.redis.xrevrange(self.key, max=start, min=end, count=_BATCH)
                else:
                    batch = await self.redis.xrange(self.key, min=start, max=end, count=_BATCH)
                last = text(batch[-1][0]) if batch else ""
                exhausted = len(batch) < _BATCH
            for entry_id, fields in batch:
                event = self._decode(entry_id, fields, kinds, subject)
                if event is not None:
                    found.append(event)
                    if len(found) >= limit:
                        break
            if exhausted:
                break
            start = f"({last}"
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
