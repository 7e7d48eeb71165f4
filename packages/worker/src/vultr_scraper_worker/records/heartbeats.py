"""Worker heartbeats: who is running, since when, and how fresh its last sign of life is.

arq's own health key is one string per queue that every worker overwrites. Each worker here
stamps its id into the sorted set ``<prefix>:workers`` with Redis' own clock (so hosts with
skewed clocks still agree on ages), and keeps its details (``WorkerInfo``) in
``<prefix>:worker:<id>`` with a TTL of three intervals. Entries older than a day are dropped on
every beat. ``vultr-scraper check`` reads them; a worker removes its own on a clean exit.
"""

from __future__ import annotations

import os
import socket
import uuid
from typing import cast

import msgspec
from redis.asyncio import Redis

from vultr_scraper_core.store.codec import text

_BEAT_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - 86400)
return tostring(now)
"""
_FORGOTTEN_AFTER = 3  # intervals without a beat before a worker's details expire


class WorkerInfo(msgspec.Struct, kw_only=True):
    """What a worker publishes with each heartbeat."""

    id: str
    host: str
    pid: int
    version: str
    queue: str
    started: float
    health_check_interval: float
    jobs_complete: int = 0
    jobs_failed: int = 0
    jobs_retried: int = 0
    jobs_ongoing: int = 0


class Heartbeat(msgspec.Struct, kw_only=True):
    """One worker's latest heartbeat as read back: ``info`` is None once its details expired
    (or were written by a version this one cannot read)."""

    worker_id: str
    at: float  # Unix time of the beat, by Redis' clock
    info: WorkerInfo | None = None


def new_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


_decode_info = msgspec.msgpack.Decoder(WorkerInfo).decode


def decode_worker_info(raw: bytes | None) -> WorkerInfo | None:
    if raw is None:
        return None
    try:
        return _decode_info(raw)
    except msgspec.DecodeError:
        return None


class Heartbeats:
    """Write and read heartbeats under ``prefix``. ``redis`` is any ``redis.asyncio.Redis``."""

    def __init__(self, redis: Redis, prefix: str) -> None:
        self.redis = redis
        self.index = f"{prefix}:workers"
        self._info_prefix = f"{prefix}:worker:"

    def info_key(self, worker_id: str) -> str:
        return self._info_prefix + worker_id

    async def beat(self, info: WorkerInfo) -> None:
        """Stamp ``info.id`` now (Redis' clock) with ``info`` as its details."""
        ttl_ms = int(max(_FORGOTTEN_AFTER * info.health_check_interval, 10) * 1000)
        await self.redis.eval(  # type: ignore[misc]
            _BEAT_SCRIPT,
            2,
            self.index,
            self.info_key(info.id),
            info.id,
            msgspec.msgpack.encode(info),  # type: ignore[arg-type]
            str(ttl_ms),
        )

    async def forget(self, worker_id: str) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.zrem(self.index, worker_id)
            pipe.delete(self.info_key(worker_id))
            await pipe.execute()

    async def latest(self, limit: int = 50) -> tuple[float, list[Heartbeat]]:
        """Redis' current time and the ``limit`` newest heartbeats, newest first."""
        seconds, micros = cast(tuple[int, int], await self.redis.time())
        now = seconds + micros / 1_000_000
        entries = await self.redis.zrevrange(self.index, 0, limit - 1, withscores=True)
        ids = [text(raw) for raw, _ in entries]
        infos = (
            await self.redis.mget([self.info_key(worker_id) for worker_id in ids]) if ids else []
        )
        return now, [
            Heartbeat(worker_id=worker_id, at=float(score), info=decode_worker_info(raw))
            for worker_id, (_, score), raw in zip(ids, entries, infos, strict=True)
        ]
