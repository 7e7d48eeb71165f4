"""Failed jobs, recorded by the project because arq keeps no failed list.

A record is written when a job fails for good: a permanent error, a transient one on its last
try, a result with ``status: failed``, a job that ran out of tries by being interrupted, a job
whose payload was refused (not msgpack) or whose function is unknown. Records live in
``<prefix>:jobs:failed`` (hash id -> record) with ``<prefix>:jobs:failed:index`` (sorted by the
time of failure), bounded to the newest ``keep``. ``retry`` re-enqueues a job with its original
arguments under a new id and notes that id on the record. A record is retried at most once:
``retry`` first claims it with ``HSETNX <prefix>:jobs:failed:retried <id> <new id>``, so of two
concurrent retries exactly one enqueues a job and the other is refused with the id it was
retried as. When the retried job fails in turn, it gets its own record, which can be retried.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import msgspec
from arq.connections import ArqRedis
from redis.asyncio import Redis

from vultr_scraper_core.text import mask_urls

KEEP_FAILED = 1000


class FailedJob(msgspec.Struct, kw_only=True, omit_defaults=True):
    id: str  # the arq job id
    function: str  # the public job name ("<unknown>" when the payload was refused)
    args: list[Any] = msgspec.field(default_factory=list)
    kwargs: dict[str, Any] = msgspec.field(default_factory=dict)
    error: str
    error_type: str
    tries: int
    enqueued_at: float | None = None  # Unix times
    started_at: float | None = None
    failed_at: float
    worker: str | None = None
    retryable: bool = True  # False: the payload could not be read, so there is nothing to re-run
    retried_as: str | None = None
    retried_at: float | None = None

    def to_dict(self) -> dict[str, Any]:
        document: dict[str, Any] = msgspec.to_builtins(self)
        return document


class RetryRefused(Exception):
    """``retry ID`` cannot proceed; the message says why."""


class AlreadyRetried(RetryRefused):
    """The failed record was retried before; ``retried_as`` is the job it was retried as."""

    def __init__(self, job_id: str, retried_as: str) -> None:
        super().__init__(
            f"job {job_id} was already retried as {retried_as}; "
            f"if that job failed too, retry its own failed record"
        )
        self.job_id = job_id
        self.retried_as = retried_as


_encode = msgspec.msgpack.Encoder(enc_hook=str).encode
_decoder = msgspec.msgpack.Decoder(FailedJob)


def _decode(raw: bytes) -> FailedJob:
    """A record as every reader shows it: with the passwords of the URLs its error quotes
    masked, also in records written before errors were masked when stored."""
    record = _decoder.decode(raw)
    error = mask_urls(record.error)
    return record if error == record.error else msgspec.structs.replace(record, error=error)


class FailedJobs:
    def __init__(self, redis: Redis, prefix: str, *, keep: int = KEEP_FAILED) -> None:
        self.redis = redis
        self.records_key = f"{prefix}:jobs:failed"
        self.index_key = f"{prefix}:jobs:failed:index"
        self.retried_key = f"{prefix}:jobs:failed:retried"  # hash id -> the id it was retried as
        self.keep = keep

    async def add(self, record: FailedJob) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(self.records_key, record.id, _encode(record))  # type: ignore[arg-type]
            pipe.zadd(self.index_key, {record.id: record.failed_at})
            pipe.hdel(self.retried_key, record.id)  # a new failure under this id: retryable
            pipe.zcard(self.index_key)
            *_, count = await pipe.execute()
        if int(count) > self.keep:
            await self._trim(int(count) - self.keep)

    async def _trim(self, excess: int) -> None:
        oldest = await self.redis.zrange(self.index_key, 0, excess - 1)
        if oldest:
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.zrem(self.index_key, *oldest)
                pipe.hdel(self.records_key, *oldest)
                pipe.hdel(self.retried_key, *oldest)
                await pipe.execute()

    async def list(self, limit: int = 50) -> list[FailedJob]:
        """Newest first."""
        if limit <= 0:
            return []
        ids = await self.redis.zrevrange(self.index_key, 0, limit - 1)
        if not ids:
            return []
        raw = await self.redis.hmget(self.records_key, ids)  # type: ignore[misc]
        records: list[FailedJob] = []
        for item in raw:
            if item is None:
                continue
            try:
                records.append(_decode(item))
            except msgspec.DecodeError:
                continue
        return records

    async def count(self) -> int:
        return int(await self.redis.zcard(self.index_key))

    async def get(self, job_id: str) -> FailedJob | None:
        raw = await self.redis.hget(self.records_key, job_id)  # type: ignore[misc]
        if raw is None:
            return None
        try:
            return _decode(raw)
        except msgspec.DecodeError:
            return None

    async def retry(self, job_id: str, queue: ArqRedis, *, queue_name: str | None = None) -> str:
        """Enqueue the failed job again with its original arguments; return the new job id."""
        record = await self.get(job_id)
        if record is None:
            raise RetryRefused(f"no failed job with id {job_id!r}")
        if not record.retryable:
            raise RetryRefused(
                f"job {job_id} cannot be retried: {record.error} "
                f"(enqueue the job again by name with `vultr-scraper enqueue`)"
            )
        if record.retried_as:
            raise AlreadyRetried(job_id, record.retried_as)
        new_id = f"retry-{uuid.uuid4().hex[:16]}"
        # The claim is the atomic step: of two concurrent retries, only one sets the marker.
        if not await self.redis.hsetnx(self.retried_key, job_id, new_id):  # type: ignore[misc]
            claimed = await self.redis.hget(self.retried_key, job_id)  # type: ignore[misc]
            raise AlreadyRetried(job_id, _text(claimed) if claimed else "another job")
        try:
            job = await queue.enqueue_job(
                record.function,
                *record.args,
                _job_id=new_id,
                _queue_name=queue_name,
                **record.kwargs,
            )
            if job is None:  # pragma: no cover - a fresh random id cannot exist already
                raise RetryRefused(f"could not enqueue {new_id}: id already taken")
        except BaseException:
            # Nothing was enqueued: release the claim so the record can be retried later.
            await self.redis.hdel(self.retried_key, job_id)  # type: ignore[misc]
            raise
        updated = msgspec.structs.replace(record, retried_as=new_id, retried_at=time.time())
        await self.redis.hset(self.records_key, job_id, _encode(updated))  # type: ignore[misc, arg-type]
        return new_id


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
