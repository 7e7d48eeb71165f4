"""A compressed archive of raw Vultr responses, deduplicated by content hash.

Derived data can be rebuilt from it when the parser improves, and a schema-drift report can be
checked against the exact bytes. Keys (``p`` = the key prefix):

* ``p:archive:index``: sorted set, score = fetch time (ms), member = ArchivedResponse JSON;
* ``p:archive:body:<sha256>``: the zlib-compressed body;
* ``p:archive:bodies``: sorted set, sha256 -> the last time (ms) any response had that body.

Identical bodies (the normal case between two scrapes) are stored once. ``prune`` drops index
entries older than the cutoff and bodies no newer response refers to.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime

import msgspec
from redis.asyncio import Redis
from redis.exceptions import WatchError

from vultr_scraper_core.store.codec import compress, decode, decompress, encode, text, to_ms

# Response headers worth keeping (the rest is transport noise).
KEPT_HEADERS = ("content-type", "date", "etag", "last-modified", "retry-after", "x-request-id")


class RawResponse(msgspec.Struct, frozen=True, kw_only=True):
    url: str
    status: int
    headers: dict[str, str]
    body: bytes
    fetched_at: datetime


class ArchivedResponse(msgspec.Struct, frozen=True, kw_only=True):
    url: str
    status: int
    fetched_at: datetime
    sha256: str
    size: int
    headers: dict[str, str] = {}


class PruneResult(msgspec.Struct, kw_only=True):
    responses: int = 0
    bodies: int = 0


class RawArchive:
    def __init__(self, redis: Redis, prefix: str) -> None:
        self.redis = redis
        self.index = f"{prefix}:archive:index"
        self.bodies = f"{prefix}:archive:bodies"
        self.body_prefix = f"{prefix}:archive:body:"

    async def put(self, responses: Sequence[RawResponse]) -> int:
        """Archive ``responses``; returns how many bodies were new."""
        if not responses:
            return 0
        digests = [hashlib.sha256(response.body).hexdigest() for response in responses]
        unique = dict(zip(digests, responses, strict=True))
        async with self.redis.pipeline(transaction=True) as pipe:
            # SET NX inside the MULTI: a body pruned a moment ago is written again.
            for digest, response in unique.items():
                pipe.set(self.body_prefix + digest, compress(response.body), nx=True)
            for digest, response in zip(digests, responses, strict=True):
                when = to_ms(response.fetched_at)
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
                pipe.zadd(self.index, {encode(entry): when})
                pipe.zadd(self.bodies, {digest: when}, gt=True)
            results = await pipe.execute()
        return sum(1 for created in results[: len(unique)] if created)

    async def entries(
        self, since: datetime | None = None, limit: int = 100
    ) -> list[ArchivedResponse]:
        """Archived responses, oldest first."""
        low = to_ms(since) if since is not None else "-inf"
        raw = await self.redis.zrangebyscore(self.index, low, "+inf", start=0, num=limit)
        return [decode(member, ArchivedResponse) for member in raw]

    async def body(self, sha256: str) -> bytes | None:
        data = await self.redis.get(self.body_prefix + sha256)
        return decompress(data) if data else None

    async def prune(self, older_than: datetime) -> PruneResult:
        """Forget responses fetched before ``older_than`` and bodies only they used."""
        cutoff = f"({to_ms(older_than)}"
        while True:
            async with self.redis.pipeline(transaction=True) as pipe:
                # WATCH: a concurrent put that refers to a stale body again makes EXEC fail.
                await pipe.watch(self.bodies)
                stale = [
                    text(digest) for digest in await pipe.zrangebyscore(self.bodies, "-inf", cutoff)
                ]
                pipe.multi()  # type: ignore[no-untyped-call]
                pipe.zremrangebyscore(self.index, "-inf", cutoff)
                if stale:
                    pipe.delete(*(self.body_prefix + digest for digest in stale))
                    pipe.zrem(self.bodies, *stale)
                try:
                    results = await pipe.execute()
                except WatchError:
                    continue
            return PruneResult(responses=int(results[0]), bodies=len(stale))
