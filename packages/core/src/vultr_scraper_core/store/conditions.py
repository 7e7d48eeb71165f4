"""Conditions that last (an endpoint DOWN, a stale catalogue, a quarantined scrape) and what each
alert has said about them, for reminders and recoveries; and the catalogue's own condition.

Keys (``P`` is ``config.redis.key_prefix``):

* ``P:alerts:open``     HASH  ``<alert>|<family>|<subject>`` -> JSON ``OpenCondition``: a
  condition an alert was told about (or held back by maintenance), until it recovers
* ``P:catalog:watch``   HASH  ``stale`` / ``quarantined`` -> ISO time the condition began, as
  last seen by the alert dispatcher (which turns its changes into change events)
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import msgspec
from redis.asyncio import Redis
from redis.exceptions import WatchError

from vultr_scraper_core.store.changes import ChangeEvent, ChangeFeed
from vultr_scraper_core.store.codec import decode, encode, text

Family = Literal["endpoint", "stale", "quarantine"]
CatalogFlag = Literal["stale", "quarantined"]
_WATCH_ATTEMPTS = 20


class OpenCondition(msgspec.Struct, frozen=True, kw_only=True):
    alert: str
    family: Family
    subject: str  # the endpoint name, or "catalog"
    event_id: str  # the change event that opened it (reminders repeat it)
    opened_at: datetime
    sinks: tuple[str, ...]
    notified_at: datetime | None = None  # the last notice sent; None: held back so far
    reminders: int = 0  # reminders sent (a held-back opening sent late counts as one)

    @property
    def field(self) -> str:
        return condition_field(self.alert, self.family, self.subject)


def condition_field(alert: str, family: str, subject: str) -> str:
    return f"{alert}|{family}|{subject}"


class ConditionStore:
    def __init__(self, redis: Redis, prefix: str) -> None:
        self.redis = redis
        self.key = f"{prefix}:alerts:open"
        self.watch_key = f"{prefix}:catalog:watch"

    async def all(self) -> list[OpenCondition]:
        stored = await self.redis.hgetall(self.key)  # type: ignore[misc]
        found = [decode(raw, OpenCondition) for raw in stored.values()]
        return sorted(found, key=lambda item: (item.opened_at, item.field))

    async def put(self, condition: OpenCondition) -> None:
        await self.redis.hset(self.key, condition.field, encode(condition))  # type: ignore[misc,arg-type]

    async def get(self, alert: str, family: str, subject: str) -> OpenCondition | None:
        raw = await self.redis.hget(self.key, condition_field(alert, family, subject))  # type: ignore[misc]
        return decode(raw, OpenCondition) if raw else None

    async def remove(self, fields: list[str]) -> None:
        if fields:
            await self.redis.hdel(self.key, *fields)  # type: ignore[misc]

    # -- the catalogue's own condition ------------------------------------------------------
    async def catalog_flags(self) -> dict[CatalogFlag, datetime]:
        stored = await self.redis.hgetall(self.watch_key)  # type: ignore[misc]
        return {
            text(name): datetime.fromisoformat(text(value))  # type: ignore[misc]
            for name, value in stored.items()
            if text(name) in ("stale", "quarantined")
        }

    async def change_catalog_flags(
        self,
        expected: dict[CatalogFlag, datetime],
        flags: dict[CatalogFlag, datetime],
        events: list[ChangeEvent],
        feed: ChangeFeed,
    ) -> bool:
        """Store ``flags`` and append ``events`` in one transaction, only if the stored flags
        are still ``expected`` (two dispatchers cannot report one change twice)."""
        for _ in range(_WATCH_ATTEMPTS):
            async with self.redis.pipeline(transaction=True) as pipe:
                try:
                    await pipe.watch(self.watch_key)
                    stored = await pipe.hgetall(self.watch_key)  # type: ignore[misc]
                    current = {text(k): text(v) for k, v in stored.items()}
                    if current != {k: v.isoformat() for k, v in expected.items()}:
                        return False
                    pipe.multi()  # type: ignore[no-untyped-call]
                    pipe.delete(self.watch_key)
                    if flags:
                        pipe.hset(
                            self.watch_key, mapping={k: v.isoformat() for k, v in flags.items()}
                        )
                    feed.add_to(pipe, events)
                    await pipe.execute()
                    return True
                except WatchError:
                    continue
        return False
