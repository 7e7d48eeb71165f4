"""A compressed archive of raw Vultr responses, deduplicated by content hash.

Derived data can be rebuilt from it when the parser improves, and a schema-drift report can be
checked against the exact bytes. Keys (``p`` = the key prefix):

* ``p:archive:index``: sorted set, score = first fetch time (ms), member = ArchivedResponse
  JSON: one entry per URL each time its body (or status) changes, not one per fetch;
* ``p:archive:latest``: hash, URL -> Latest (the URL's current entry and when that body was
  last fetched); an entry that is replaced gets its ``last_seen`` written into it;
* ``p:archive:body:<sha256>``: the zlib-compressed body (level ``BODY_LEVEL``; bodies written
  at another level, level 6 before, read the same);
* ``p:archive:bodies``: sorted set, sha256 -> the last time (ms) any response had that body.

Identical bodies (the normal case between two scrapes) are stored once and indexed once.
``prune`` drops entries first fetched before the cutoff (a URL's current entry only once it was
also last seen before it) and bodies no newer response refers to.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime

import msgspec
from redis.asyncio import Redis
from redis.exceptions import WatchError

from vultr_scraper_core.store.codec import (
    compress,
    decode,
    decompress,
    encode,
    from_ms,
    text,
    to_ms,
)

# Response headers worth keeping (the rest is transport noise).
KEPT_HEADERS = ("content-type", "date", "etag", "last-modified", "retry-after", "x-request-id")

# zlib level of archived bodies: every changed body is compressed inside the job that fetched
# it (330 availability answers per run at ten times today's catalogue), and level 4 costs about
# a quarter of level 6's CPU there for bodies 10-25 % larger (docs/performance.md).
BODY_LEVEL = 4


class RawResponse(msgspec.Struct, frozen=True, kw_only=True):
    url: str
    status: int
    headers: dict[str, str]
    body: bytes
    fetched_at: datetime


class ArchivedResponse(msgspec.Struct, frozen=True, kw_only=True):
    url: str
    status: int
    fetched_at: datetime  # the first fetch that returned this body
    sha256: str
    size: int
    headers: dict[str, str] = {}  # those of the first fetch
    last_seen: datetime | None = None  # the last fetch that returned it


class Latest(msgspec.Struct, array_like=True, frozen=True):
    """A URL's current entry: its index member and score, and the last fetch of that body."""

    member: bytes
    score_ms: int
    last_seen_ms: int


class PruneResult(msgspec.Struct, kw_only=True):
    responses: int = 0
    bodies: int = 0


class RawArchive:
    def __init__(self, redis: Redis, prefix: str) -> None:
        self.redis = redis
        self.index = f"{prefix}:archive:index"
        self.latest = f"{prefix}:archive:latest"
        self.bodies = f"{prefix}:archive:bodies"
        self.body_prefix = f"{prefix}:archive:body:"

    async def put(self, responses: Sequence[RawResponse]) -> int:
        """Archive ``responses`` (in fetch order); returns how many bodies were new. A response
        whose URL returned the same status and body last time only moves that entry's
        ``last_seen``."""
        if not responses:
            return 0
        digests = [hashlib.sha256(response.body).hexdigest() for response in responses]
        unique = dict(zip(digests, responses, strict=True))
        urls = sorted({response.url for response in responses})
        while True:
            async with self.redis.pipeline(transaction=True) as pipe:
                # WATCH: two workers archiving the same URL at once must not both index it.
                await pipe.watch(self.latest)
                raw = await pipe.hmget(self.latest, urls)  # type: ignore[misc]
                latest = {
                    url: decode(value, Latest)
                    for url, value in zip(urls, raw, strict=True)
                    if value is not None
                }
                # Bodies a URL's current entry holds exist and are not stale (prune drops one
                # only with its entry, which the WATCH sees): an unchanged body, the common
                # case, is neither compressed nor written again.
                held = {decode(entry.member, ArchivedResponse).sha256 for entry in latest.values()}
                fresh = [
                    (digest, response) for digest, response in unique.items() if digest not in held
                ]
                changed = self._advance(latest, responses, digests)
                pipe.multi()  # type: ignore[no-untyped-call]
                # SET NX inside the MULTI: a body pruned a moment ago is written again.
                for digest, response in fresh:
                    pipe.set(
                        self.body_prefix + digest, compress(response.body, BODY_LEVEL), nx=True
                    )
                pipe.zadd(self.bodies, _last_uses(digests, responses), gt=True)
                removed, added = _net_index_changes(changed)
                if removed:
                    pipe.zrem(self.index, *removed)
                if added:
                    pipe.zadd(self.index, added)
                pipe.hset(
                    self.latest, mapping={url: encode(entry) for url, entry in latest.items()}
                )
                try:
                    results = await pipe.execute()
                except WatchError:
                    continue
            return sum(1 for created in results[: len(fresh)] if created)

    @staticmethod
    def _advance(
        latest: dict[str, Latest], responses: Sequence[RawResponse], digests: list[str]
    ) -> list[tuple[bytes | None, tuple[bytes, int]]]:
        """Apply ``responses`` to ``latest``; the index changes as (member to remove, (member
        to add, score)). A replaced entry is rewritten with its ``last_seen``."""
        changes: list[tuple[bytes | None, tuple[bytes, int]]] = []
        for digest, response in zip(digests, responses, strict=True):
            when = to_ms(response.fetched_at)
            current = latest.get(response.url)
            if current is not None:
                held = decode(current.member, ArchivedResponse)
                if held.sha256 == digest and held.status == response.status:
                    seen = max(current.last_seen_ms, when)
                    latest[response.url] = Latest(current.member, current.score_ms, seen)
                    continue
                closed = msgspec.structs.replace(held, last_seen=from_ms(current.last_seen_ms))
                changes.append((current.member, (encode(closed), current.score_ms)))
            entry = ArchivedResponse(
                url=response.url,
                status=response.status,
                fetched_at=response.fetched_at,
                sha256=digest,
                size=len(response.body),
                headers={
                    name: value
                    for name, value in response.headers.items()
                    if name.lower() in KEPT_HEADERS
                },
            )
            member = encode(entry)
            changes.append((None, (member, when)))
            latest[response.url] = Latest(member, when, when)
        return changes

    async def entries(
        self, since: datetime | None = None, limit: int = 100
    ) -> list[ArchivedResponse]:
        """Archived responses, oldest first (first fetch), each with its ``last_seen``."""
        low = to_ms(since) if since is not None else "-inf"
        raw = await self.redis.zrangebyscore(self.index, low, "+inf", start=0, num=limit)
        found = [decode(member, ArchivedResponse) for member in raw]
        urls = sorted({entry.url for entry in found if entry.last_seen is None})
        if not urls:
            return found
        values = await self.redis.hmget(self.latest, urls)  # type: ignore[misc]
        current = {
            url: decode(value, Latest) for url, value in zip(urls, values, strict=True) if value
        }
        return [
            msgspec.structs.replace(entry, last_seen=from_ms(current[entry.url].last_seen_ms))
            if entry.last_seen is None and entry.url in current
            else entry
            for entry in found
        ]

    async def body(self, sha256: str) -> bytes | None:
        data = await self.redis.get(self.body_prefix + sha256)
        return decompress(data) if data else None

    async def prune(self, older_than: datetime) -> PruneResult:
        """Forget responses fetched before ``older_than`` (a URL's current one only when it was
        also last seen before then) and bodies only they used."""
        cutoff_ms = to_ms(older_than)
        cutoff = f"({cutoff_ms}"
        while True:
            async with self.redis.pipeline(transaction=True) as pipe:
                # WATCH: a concurrent put that refers to a stale body again makes EXEC fail.
                await pipe.watch(self.bodies, self.latest)
                stale = [
                    text(digest) for digest in await pipe.zrangebyscore(self.bodies, "-inf", cutoff)
                ]
                latest = {
                    text(url): decode(value, Latest)
                    for url, value in (await pipe.hgetall(self.latest)).items()  # type: ignore[misc]
                }
                before = await pipe.zcount(self.index, "-inf", cutoff)
                gone = [url for url, entry in latest.items() if entry.last_seen_ms < cutoff_ms]
                kept = {
                    entry.member: entry.score_ms
                    for entry in latest.values()
                    if entry.last_seen_ms >= cutoff_ms and entry.score_ms < cutoff_ms
                }
                pipe.multi()  # type: ignore[no-untyped-call]
                pipe.zremrangebyscore(self.index, "-inf", cutoff)
                if kept:
                    pipe.zadd(self.index, kept)
                if gone:
                    pipe.hdel(self.latest, *gone)
                if stale:
                    pipe.delete(*(self.body_prefix + digest for digest in stale))
                    pipe.zrem(self.bodies, *stale)
                try:
                    await pipe.execute()
                except WatchError:
                    continue
            return PruneResult(responses=int(before) - len(kept), bodies=len(stale))


def _last_uses(digests: Sequence[str], responses: Sequence[RawResponse]) -> dict[str, int]:
    """Body digest -> the latest fetch (ms) that returned it, for one ZADD GT."""
    last: dict[str, int] = {}
    for digest, response in zip(digests, responses, strict=True):
        when = to_ms(response.fetched_at)
        if when > last.get(digest, when - 1):
            last[digest] = when
    return last


def _net_index_changes(
    changes: Sequence[tuple[bytes | None, tuple[bytes, int]]],
) -> tuple[list[bytes], dict[bytes, int]]:
    """The index changes of ``_advance`` (in order) as one ZREM and one ZADD: a member added
    and removed again within the batch (one URL fetched twice in it) is neither."""
    removed: list[bytes] = []
    added: dict[bytes, int] = {}
    for gone, (member, score) in changes:
        if gone is not None and added.pop(gone, None) is None:
            removed.append(gone)
        added[member] = score
    return removed, added
