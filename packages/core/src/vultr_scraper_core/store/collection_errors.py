"""Why a collection of the catalogue was not updated by the last scrape, until one that is.

Key: ``f"{prefix}:catalog:errors"``, a hash collection -> one sentence (for now only
``databases``: a refused API key). Written by the catalogue job after each scrape: collections
read this time are cleared, those that failed are set. The status page, ``/api/v1/catalog``
and ``/metrics`` show it; it never holds a secret (the job writes the setting's name, not the
key).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from redis.asyncio import Redis


class CollectionErrors:
    def __init__(self, redis: Redis, prefix: str) -> None:
        self.redis = redis
        self.key = f"{prefix}:catalog:errors"

    async def record(self, errors: Mapping[str, str], read: Iterable[str]) -> None:
        """Set ``errors`` and clear the collections in ``read`` (fetched this time), at once."""
        cleared = [name for name in read if name not in errors]
        async with self.redis.pipeline(transaction=True) as pipe:
            if cleared:
                pipe.hdel(self.key, *cleared)
            if errors:
                pipe.hset(self.key, mapping=dict(errors))
            await pipe.execute()

    async def all(self) -> dict[str, str]:
        raw = await self.redis.hgetall(self.key)  # type: ignore[misc]
        return {_text(name): _text(message) for name, message in raw.items()}


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
