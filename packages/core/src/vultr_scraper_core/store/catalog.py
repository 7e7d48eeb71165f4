"""The current catalogue, its version history and the quarantine, committed atomically.

Keys (``p`` = the key prefix):

* ``p:catalog:plans``, ``p:catalog:metal``, ``p:catalog:regions``, ``p:catalog:os``: hashes,
  id -> record JSON. Together they are the current snapshot.
* ``p:catalog:meta``: hash with ``version`` (bumped by every commit), ``revision`` (a random
  token written by every commit, so a reader can tell one snapshot from another even in a
  store that was emptied and filled again; absent before the first commit that wrote it),
  ``fetched_at``, ``committed_at``, ``last_success_at``, ``last_attempt_at``, ``last_status``,
  ``last_reason``.
* ``p:catalog:versions``: sorted set, score = observation time (ms); one member per record
  version of every collection's records (``record`` null = retired / removed). Replaying it
  up to a time gives the catalogue as it was then (``catalogue_at``). Only the recent window
  is kept here: the history job folds older versions into ``p:catalog:base`` and moves them
  to the on-disk archive.
* ``p:catalog:base``: compressed CatalogueBase, the last version (before the window's
  boundary) of every record alive at the boundary; absent until the first move.
* ``p:schema``: hash, endpoint path -> the accepted JSON shape (field -> kinds) for drift checks.
* ``p:catalog:quarantine``: hash with ``info`` (JSON) and ``snapshot`` (compressed JSON).

A commit is one MULTI/EXEC under WATCH of the meta key: readers (who also read in one MULTI)
see the old snapshot or the new one, never a mix; a process killed before EXEC leaves no trace,
and a concurrent commit makes EXEC fail so the caller re-reads and re-diffs.
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any, NamedTuple

import msgspec
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from vultr_scraper_core.models import (
    COLLECTIONS,
    Catalogue,
    FieldCensus,
    Observation,
    Shape,
    same_record,
)
from vultr_scraper_core.store.changes import ChangeEvent, ChangeFeed
from vultr_scraper_core.store.codec import compress, decode, decompress, encode, to_ms
from vultr_scraper_core.store.watched import execute_staged

HISTORY_COLLECTIONS = tuple(COLLECTIONS)  # every collection keeps its record versions


class CatalogueMeta(msgspec.Struct, kw_only=True):
    version: int = 0
    revision: str | None = None  # random per commit: keys caches of the decoded snapshot
    fetched_at: datetime | None = None  # observation time of the current snapshot
    committed_at: datetime | None = None
    last_success_at: datetime | None = None  # last run that ended with the snapshot current
    last_attempt_at: datetime | None = None
    last_status: str | None = None  # "success" or "quarantined"
    last_reason: str | None = None


class CommittedCatalogue(msgspec.Struct, kw_only=True):
    catalogue: Catalogue
    meta: CatalogueMeta
    shapes: dict[str, Shape]  # accepted shapes per endpoint path


class QuarantineInfo(msgspec.Struct, kw_only=True):
    fetched_at: datetime
    quarantined_at: datetime
    reasons: list[str]
    complete: bool  # False: some data is missing, so accepting it retires nothing
    counts: dict[str, int] = {}
    totals: dict[str, int | None] = {}  # meta.total per endpoint
    checks: list[str] = []  # the gate checks that held it back (turnover, lost_prices, ...)

    @property
    def reason(self) -> str:
        return "; ".join(self.reasons)


class FetchedSnapshot(msgspec.Struct, kw_only=True):
    """What one scrape saw, before the gate decides whether it becomes current."""

    catalogue: Catalogue
    fetched_at: datetime
    checked: list[str]  # collections fetched by this run
    incomplete: dict[str, str] = {}  # collection -> why it may lack items
    observations: dict[str, Observation] = {}  # endpoint path -> raw JSON shape seen
    census: dict[str, FieldCensus] = {}  # endpoint path -> how many items carry each field
    totals: dict[str, int | None] = {}  # collection -> meta.total
    requests: int = 0


class PendingSnapshot(msgspec.Struct, kw_only=True):
    info: QuarantineInfo
    snapshot: FetchedSnapshot


class PlanLabels(msgspec.Struct, kw_only=True, frozen=True):
    """The labels of a plan that a stock event carries. Decoded from the stored record
    alone, skipping the rest of it (its region list above all)."""

    type: str | None = None
    gpu_type: str | None = None
    gpu_brand: str | None = None


class PlanSummary(msgspec.Struct, kw_only=True, frozen=True):
    collection: str  # "plans" or "metal"
    labels: PlanLabels


def plan_summaries_of(catalogue: Catalogue, ids: Iterable[str]) -> dict[str, PlanSummary]:
    """``CatalogueStore.plan_summaries`` of a catalogue in memory."""
    summaries: dict[str, PlanSummary] = {}
    for plan_id in ids:
        record = catalogue.plan(plan_id)
        if record is not None:
            summaries[plan_id] = PlanSummary(
                collection="plans" if plan_id in catalogue.plans else "metal",
                labels=PlanLabels(
                    type=record.type,
                    gpu_type=record.gpu_type,
                    gpu_brand=getattr(record, "gpu_brand", None),
                ),
            )
    return summaries


_NULL = msgspec.Raw(b"null")


def _text(value: bytes | str | None) -> str | None:
    if value is None:
        return None
    return value.decode() if isinstance(value, bytes) else value


class RecordVersion(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One version of a plan, metal plan or region, as ``p:catalog:versions`` holds it."""

    collection: str
    id: str
    at: datetime
    commit: int
    record: msgspec.Raw = _NULL  # the record's JSON; null when retired / removed

    @property
    def retired(self) -> bool:
        return bytes(self.record) == b"null"


class CatalogueBase(msgspec.Struct, kw_only=True):
    """Where the window starts: the last version of every record alive at ``at``."""

    at: datetime
    versions: list[RecordVersion] = []


def latest_versions(versions: Iterable[RecordVersion]) -> dict[tuple[str, str], RecordVersion]:
    """(collection, id) -> the last of ``versions`` for that record, retired ones included."""
    ordered = sorted(versions, key=lambda entry: (entry.at, entry.commit))
    return {(entry.collection, entry.id): entry for entry in ordered}


def catalogue_of(versions: Iterable[RecordVersion]) -> Catalogue:
    """The catalogue that ``versions`` leave: the last version of each record, unless retired;
    only those are decoded in full."""
    state: dict[str, dict[str, Any]] = {name: {} for name in HISTORY_COLLECTIONS}
    for (collection, record_id), entry in latest_versions(versions).items():
        if not entry.retired:
            state[collection][record_id] = decode(entry.record, COLLECTIONS[collection])
    return Catalogue(**state)


class StoredPast(NamedTuple):
    """The stored base and the versions up to a time: the catalogue as it was then."""

    raw_base: bytes | None
    versions: list[bytes]

    def replay(self) -> Catalogue:
        base = decode_base(self.raw_base) if self.raw_base else None
        versions = [decode(member, RecordVersion) for member in self.versions]
        return catalogue_of([*(base.versions if base else []), *versions])

    def digest(self) -> bytes:
        """Equal for equal stored bytes: the same catalogue, whichever Redis it came from."""
        hashed = hashlib.blake2b(self.raw_base or b"", digest_size=16)
        for member in self.versions:
            hashed.update(len(member).to_bytes(8, "big"))
            hashed.update(member)
        return hashed.digest()


def fold_base(
    base: CatalogueBase | None, versions: Iterable[RecordVersion], at: datetime
) -> CatalogueBase:
    """``base`` advanced to ``at`` by ``versions`` (all older than ``at``): retired records go."""
    latest = latest_versions([*(base.versions if base else []), *versions])
    alive = [entry for entry in latest.values() if not entry.retired]
    return CatalogueBase(
        at=at, versions=sorted(alive, key=lambda entry: (entry.collection, entry.id))
    )


def encode_base(base: CatalogueBase) -> bytes:
    return compress(encode(base))


def decode_base(raw: bytes) -> CatalogueBase:
    return decode(decompress(raw), CatalogueBase)


class CatalogueKeys:
    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.collections = {name: f"{prefix}:catalog:{name}" for name in COLLECTIONS}
        self.meta = f"{prefix}:catalog:meta"
        self.versions = f"{prefix}:catalog:versions"
        self.base = f"{prefix}:catalog:base"
        self.schema = f"{prefix}:schema"
        self.quarantine = f"{prefix}:catalog:quarantine"


def _decode_collection(name: str, raw: dict[Any, Any]) -> dict[str, Any]:
    record_type = COLLECTIONS[name]
    return {_text(key) or "": decode(value, record_type) for key, value in raw.items()}


def _decode_meta(raw: dict[Any, Any]) -> CatalogueMeta:
    fields = {_text(key): _text(value) for key, value in raw.items()}
    data = {key: value for key, value in fields.items() if value}
    return msgspec.convert(data, CatalogueMeta, strict=False)


class CatalogueTx:
    """One optimistic transaction: ``current`` was read under WATCH; stage, then ``execute``."""

    def __init__(self, store: CatalogueStore, pipe: Pipeline, current: CommittedCatalogue):
        self.store = store
        self.pipe = pipe
        self.current = current
        self.staged = False

    def commit(
        self,
        new: Catalogue,
        events: Sequence[ChangeEvent],
        *,
        fetched_at: datetime,
        committed_at: datetime,
        shapes: dict[str, Shape],
    ) -> int:
        """Stage ``new`` as the current snapshot with its events; returns the new version."""
        keys = self.store.keys
        old = self.current.catalogue
        version = self.current.meta.version + 1
        self._begin()
        pipe = self.pipe
        for name, key in keys.collections.items():
            before: dict[str, Any] = getattr(old, name)
            after: dict[str, Any] = getattr(new, name)
            changed = {
                record_id: record
                for record_id, record in after.items()
                if record_id not in before or not same_record(before[record_id], record)
            }
            removed = [record_id for record_id in before if record_id not in after]
            if changed:
                pipe.hset(key, mapping={rid: encode(rec) for rid, rec in changed.items()})
            if removed:
                pipe.hdel(key, *removed)
            if name in HISTORY_COLLECTIONS:
                versions = [
                    RecordVersion(
                        collection=name,
                        id=record_id,
                        at=fetched_at,
                        commit=version,
                        record=msgspec.Raw(encode(record)) if record is not None else _NULL,
                    )
                    for record_id, record in [
                        *changed.items(),
                        *((record_id, None) for record_id in removed),
                    ]
                ]
                if versions:
                    score = to_ms(fetched_at)
                    pipe.zadd(keys.versions, {encode(entry): score for entry in versions})
        ChangeFeed(self.store.redis, keys.prefix, self.store.id_clock).add_to(pipe, events)
        if shapes:
            pipe.hset(keys.schema, mapping={path: encode(shape) for path, shape in shapes.items()})
        stamp = committed_at.isoformat()
        pipe.hset(
            keys.meta,
            mapping={
                "version": version,
                "revision": uuid.uuid4().hex,
                "fetched_at": fetched_at.isoformat(),
                "committed_at": stamp,
                "last_success_at": stamp,
                "last_attempt_at": stamp,
                "last_status": "success",
                "last_reason": "",
            },
        )
        pipe.delete(keys.quarantine)  # a good snapshot supersedes any pending one
        return version

    def quarantine(self, pending: PendingSnapshot) -> None:
        """Stage ``pending`` as the quarantined snapshot (replacing an older one)."""
        keys = self.store.keys
        self._begin()
        self.pipe.hset(
            keys.quarantine,
            mapping={
                "info": encode(pending.info),
                "snapshot": compress(encode(pending)),
            },
        )
        self.pipe.hset(
            keys.meta,
            mapping={
                "last_attempt_at": pending.info.quarantined_at.isoformat(),
                "last_status": "quarantined",
                "last_reason": pending.info.reason,
            },
        )

    def _begin(self) -> None:
        if not self.staged:
            self.pipe.multi()  # type: ignore[no-untyped-call]
            self.staged = True

    async def execute(self) -> bool:
        """True if applied; False if another writer committed first (re-read and retry)."""
        return await execute_staged(self.pipe, self.staged)


class CatalogueStore:
    def __init__(
        self, redis: Redis, prefix: str, id_clock: Callable[[], int] | None = None
    ) -> None:
        self.redis = redis
        self.keys = CatalogueKeys(prefix)
        self.id_clock = id_clock  # see ChangeFeed

    async def load(self) -> CommittedCatalogue:
        """The current snapshot, read in one MULTI (never half of a commit)."""
        async with self.redis.pipeline(transaction=True) as pipe:
            self._queue_reads(pipe)
            results = await pipe.execute()
        return self._decode_reads(results)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[CatalogueTx]:
        async with self.redis.pipeline(transaction=True) as pipe:
            await pipe.watch(self.keys.meta)
            # After WATCH the pipeline runs commands at once; the reads are consistent because
            # any commit in between changes the meta key and makes our EXEC fail.
            raw: list[Any] = [
                await pipe.hgetall(key)  # type: ignore[misc]
                for key in (*self.keys.collections.values(), self.keys.meta, self.keys.schema)
            ]
            yield CatalogueTx(self, pipe, self._decode_reads(raw))

    async def region_ids(self) -> set[str]:
        """The ids of the current snapshot's regions (no record decoded)."""
        keys = await self.redis.hkeys(self.keys.collections["regions"])  # type: ignore[misc]
        return {_text(key) or "" for key in keys}

    async def plan_summaries(self, ids: Iterable[str]) -> dict[str, PlanSummary]:
        """Plan id -> its summary, for the ``ids`` that are cloud or metal plans of the
        current snapshot (read in one MULTI; a cloud plan wins, as in ``Catalogue.plan``)."""
        wanted = sorted(set(ids))
        if not wanted:
            return {}
        names = ("metal", "plans")
        async with self.redis.pipeline(transaction=True) as pipe:
            for name in names:
                pipe.hmget(self.keys.collections[name], wanted)
            found = await pipe.execute()
        summaries: dict[str, PlanSummary] = {}
        for name, values in zip(names, found, strict=True):
            for plan_id, value in zip(wanted, values, strict=True):
                if value is not None:
                    summaries[plan_id] = PlanSummary(
                        collection=name, labels=decode(value, PlanLabels)
                    )
        return summaries

    async def mark_attempt(self, at: datetime) -> None:
        await self.redis.hset(self.keys.meta, "last_attempt_at", at.isoformat())  # type: ignore[misc]

    async def meta(self) -> CatalogueMeta:
        return _decode_meta(await self.redis.hgetall(self.keys.meta))  # type: ignore[misc]

    async def pending(self) -> PendingSnapshot | None:
        data = await self.redis.hget(self.keys.quarantine, "snapshot")  # type: ignore[misc]
        return decode(decompress(data), PendingSnapshot) if data else None

    async def quarantine_info(self) -> QuarantineInfo | None:
        data = await self.redis.hget(self.keys.quarantine, "info")  # type: ignore[misc]
        return decode(data, QuarantineInfo) if data else None

    async def discard_quarantine(self) -> bool:
        return bool(await self.redis.delete(self.keys.quarantine))

    async def counts(self) -> dict[str, int]:
        async with self.redis.pipeline(transaction=True) as pipe:
            for key in self.keys.collections.values():
                pipe.hlen(key)
            lengths = await pipe.execute()
        return dict(zip(self.keys.collections, map(int, lengths), strict=True))

    async def catalogue_at(self, at: datetime) -> Catalogue:
        """Every collection as it was at ``at`` (the OS list from the first commit that
        recorded its versions on)."""
        # Decoding the base and the window can take a while: keep it off the loop.
        return await asyncio.to_thread((await self.past_at(at)).replay)

    async def past_at(self, at: datetime) -> StoredPast:
        """What ``catalogue_at(at)`` is built from, as stored, read in one MULTI."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.get(self.keys.base)
            pipe.zrangebyscore(self.keys.versions, "-inf", to_ms(at))
            raw_base, raw = await pipe.execute()
        return StoredPast(raw_base, raw)

    async def base(self) -> CatalogueBase | None:
        raw = await self.redis.get(self.keys.base)
        return decode_base(raw) if raw else None

    def _queue_reads(self, pipe: Pipeline) -> None:
        for key in self.keys.collections.values():
            pipe.hgetall(key)
        pipe.hgetall(self.keys.meta)
        pipe.hgetall(self.keys.schema)

    def _decode_reads(self, results: list[Any]) -> CommittedCatalogue:
        names = list(self.keys.collections)
        collections = {
            name: _decode_collection(name, raw) for name, raw in zip(names, results, strict=False)
        }
        meta = _decode_meta(results[len(names)])
        shapes = {
            _text(path) or "": decode(shape, dict[str, list[str]])
            for path, shape in results[len(names) + 1].items()
        }
        return CommittedCatalogue(catalogue=Catalogue(**collections), meta=meta, shapes=shapes)
