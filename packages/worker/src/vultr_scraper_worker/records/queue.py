"""What is queued and running, read from arq's own keys (``vultr-scraper jobs``, the API).

No ``KEYS``: the queue is one sorted set read with ``ZRANGE`` (bounded); per-job details come
from the job, in-progress and retry keys of those ids.
"""

from __future__ import annotations

import time
from typing import Any

import msgspec
from arq.constants import in_progress_key_prefix, job_key_prefix, retry_key_prefix
from redis.asyncio import Redis

from vultr_scraper_core.store.codec import text
from vultr_scraper_worker.serialization import RefusedPayload, deserialize

# A schedule's tick is the arq cron job ``cron:<job>`` (see ``settings``); it only enqueues
# the job itself.
CRON_PREFIX = "cron:"


class QueuedJob(msgspec.Struct, kw_only=True):
    id: str
    function: str
    state: str  # "queued" (due), "deferred" (due later) or "running"
    due_at: float  # Unix time
    enqueued_at: float | None = None
    tries: int = 0  # starts so far
    args: list[Any] = msgspec.field(default_factory=list)
    kwargs: dict[str, Any] = msgspec.field(default_factory=dict)
    lease_expires_in: float | None = None  # running: seconds until a crashed run is retried

    def to_dict(self) -> dict[str, Any]:
        document: dict[str, Any] = msgspec.to_builtins(self)
        return document


class QueueSnapshot(msgspec.Struct, kw_only=True):
    total: int  # every id in the queue, running ones included
    jobs: list[QueuedJob]

    @property
    def queued(self) -> list[QueuedJob]:
        return [job for job in self.jobs if job.state != "running"]

    @property
    def running(self) -> list[QueuedJob]:
        return [job for job in self.jobs if job.state == "running"]


async def queue_snapshot(redis: Redis, queue_name: str, limit: int = 100) -> QueueSnapshot:
    """The first ``limit`` jobs of the queue by due time, running ones marked."""
    async with redis.pipeline(transaction=False) as pipe:
        pipe.zcard(queue_name)
        pipe.zrange(queue_name, 0, max(limit, 1) - 1, withscores=True)
        total, entries = await pipe.execute()
    if not entries:
        return QueueSnapshot(total=int(total), jobs=[])
    async with redis.pipeline(transaction=False) as pipe:
        for raw_id, _score in entries:
            job_id = text(raw_id)
            pipe.get(job_key_prefix + job_id)
            pipe.pttl(in_progress_key_prefix + job_id)
            pipe.get(retry_key_prefix + job_id)
        replies = await pipe.execute()
    now_ms = time.time() * 1000
    jobs: list[QueuedJob] = []
    for index, (raw_id, score) in enumerate(entries):
        payload, lease_ms, tries = replies[3 * index : 3 * index + 3]
        job_id = text(raw_id)
        running = lease_ms is not None and int(lease_ms) != -2  # -2: no in-progress key
        state = "running" if running else ("deferred" if score > now_ms else "queued")
        job = QueuedJob(
            id=job_id,
            function="<missing>",
            state=state,
            due_at=float(score) / 1000,
            tries=int(tries or 0),
            lease_expires_in=int(lease_ms) / 1000 if running and int(lease_ms) >= 0 else None,
        )
        if payload is not None:
            try:
                data = deserialize(payload)
            except RefusedPayload:
                job.function = "<refused: not msgpack>"
            else:
                job.function = str(data.get("f", "<unknown>")).removeprefix(CRON_PREFIX)
                if str(data.get("f", "")).startswith(CRON_PREFIX):
                    job.function = f"{job.function} (schedule tick)"
                job.args = list(data.get("a") or [])
                job.kwargs = dict(data.get("k") or {})
                enqueued = data.get("et")
                job.enqueued_at = float(enqueued) / 1000 if enqueued else None
        jobs.append(job)
    return QueueSnapshot(total=int(total), jobs=jobs)
