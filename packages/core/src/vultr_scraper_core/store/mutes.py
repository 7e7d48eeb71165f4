"""One-off maintenance windows ("mutes") set at run time, e.g. ``vultr-scraper mute api --for 2h``.

Key (``P`` is ``config.redis.key_prefix``): ``P:maintenance:mutes`` HASH target -> JSON ``Mute``.
A target is an endpoint name, ``catalog`` or ``*`` (everything). Setting a target again
replaces its mute; an expired mute is ignored and removed by the next write or ``active`` call.
"""

from __future__ import annotations

from datetime import UTC, datetime

from redis.asyncio import Redis

from vultr_scraper_core.maintenance import Mute
from vultr_scraper_core.store.codec import decode, encode, text


class MuteStore:
    def __init__(self, redis: Redis, prefix: str) -> None:
        self.redis = redis
        self.key = f"{prefix}:maintenance:mutes"

    async def set(self, mute: Mute) -> None:
        await self.redis.hset(self.key, mute.target, encode(mute))  # type: ignore[misc,arg-type]

    async def remove(self, target: str) -> bool:
        return bool(await self.redis.hdel(self.key, target))  # type: ignore[misc]

    async def active(self, now: datetime | None = None) -> list[Mute]:
        """The mutes still in force at ``now``, by target; expired ones are deleted."""
        moment = now or datetime.now(UTC)
        stored = await self.redis.hgetall(self.key)  # type: ignore[misc]
        mutes = {text(field): (raw, decode(raw, Mute)) for field, raw in stored.items()}
        expired = {field: raw for field, (raw, mute) in mutes.items() if mute.until <= moment}
        if expired:
            # Only if still the same value: a mute renewed meanwhile must survive.
            async with self.redis.pipeline(transaction=False) as pipe:
                for field, raw in expired.items():
                    pipe.eval(_DELETE_IF_SAME, 1, self.key, field, raw)
                await pipe.execute()
        found = [mute for field, (_, mute) in mutes.items() if field not in expired]
        return sorted(found, key=lambda mute: mute.target)


# KEYS[1] hash; ARGV[1] field; ARGV[2] the value read.
_DELETE_IF_SAME = """
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then
    return redis.call('HDEL', KEYS[1], ARGV[1])
end
return 0
"""
