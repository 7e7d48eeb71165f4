"""The queue side of arq: an ``ArqRedis`` with the project's serialiser and retry policy.

The worker, ``enqueue``, ``retry``, ``run`` and jobs' own ``ctx["enqueue"]`` all go through
``queue_client``, so producers and the worker always agree on msgpack, and a Redis restart of a
few seconds is ridden out by redis-py's retries instead of ending the process.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection
from contextlib import asynccontextmanager
from typing import Any

from arq.connections import ArqRedis
from redis.asyncio import ConnectionPool
from redis.exceptions import WatchError

from vultr_scraper_core.config import LoadedConfig
from vultr_scraper_core.redis import (
    DEFAULT_LOADING_WAIT,
    connection_options,
    connection_pool,
    deadline_options,
)
from vultr_scraper_core.redis_target import RedisTarget, from_url
from vultr_scraper_jobs.context import Enqueue
from vultr_scraper_worker.runtime import ensure_reachable, redis_target
from vultr_scraper_worker.serialization import deserialize, serialize

_WATCH_ATTEMPTS = 3


def queue_client(
    target: RedisTarget | str,
    *,
    queue_name: str,
    password: str | None = None,
    outage_budget: float = 30.0,
    loading_wait: float = DEFAULT_LOADING_WAIT,
) -> ArqRedis:
    """An ``ArqRedis`` for ``target`` (or a ``redis://``, ``rediss://`` or ``unix://`` URL with
    ``password``), connecting lazily. ``loading_wait``: seconds one command waits for a loading
    Redis."""
    if isinstance(target, str):
        target = from_url(target, password=password)
    options = connection_options(outage_budget=outage_budget, loading_wait=loading_wait)
    return _arq_client(connection_pool(target, options), queue_name)


def deadline_client(target: RedisTarget | str, deadline: float, *, queue_name: str) -> ArqRedis:
    """A client to ``target`` whose every call gives up after ``deadline`` seconds, connecting
    or waiting for the answer, and is not retried: for HTTP requests, where a Redis outage must
    be a fast 503. Behind Sentinel, asking the sentinels is bounded by the deadline as well."""
    return _arq_client(connection_pool(target, deadline_options(deadline)), queue_name)


def _arq_client(pool: ConnectionPool, queue_name: str) -> ArqRedis:
    return ArqRedis(
        pool,
        job_serializer=serialize,
        job_deserializer=deserialize,
        default_queue_name=queue_name,
    )


async def close_client(client: ArqRedis) -> None:
    await client.aclose(close_connection_pool=True)


@asynccontextmanager
async def open_queue(
    loaded: LoadedConfig, *, outage_budget: float | None = None, connect_budget: float | None = None
) -> AsyncIterator[ArqRedis]:
    """The configured Redis (or the embedded one, started if needed) as an ``ArqRedis``.

    Commands ride out outages of ``outage_budget`` (default ``worker.redis_outage_budget``);
    with ``connect_budget``, a first PING must answer within that budget (see
    ``runtime.open_redis``)."""
    budget = loaded.config.worker.redis_outage_budget if outage_budget is None else outage_budget
    async with redis_target(loaded) as target:
        if connect_budget is not None:
            await ensure_reachable(target, budget=connect_budget)
        client = queue_client(
            target, queue_name=loaded.config.redis.queue_name, outage_budget=budget
        )
        try:
            yield client
        finally:
            await close_client(client)


async def enqueue_job(
    queue: ArqRedis,
    function: str,
    *args: Any,
    job_id: str | None = None,
    defer_by: float | None = None,
    **kwargs: Any,
) -> str | None:
    """``ArqRedis.enqueue_job`` that rides out a connection drop between WATCH and EXEC.

    redis-py turns such a drop into ``WatchError``; arq only expects it from EXEC. Trying again is
    safe: an id that made it in the first time is then reported as already queued (None).
    """
    for attempt in range(1, _WATCH_ATTEMPTS + 1):
        try:
            job = await queue.enqueue_job(
                function, *args, _job_id=job_id, _defer_by=defer_by, **kwargs
            )
        except WatchError:
            if attempt == _WATCH_ATTEMPTS:
                raise
            continue
        return job.job_id if job is not None else None
    raise AssertionError("unreachable")


def make_enqueue(queue: ArqRedis, known: Collection[str]) -> Enqueue:
    """``ctx["enqueue"]``: queue a follow-up job by its public name."""

    async def enqueue(
        job_name: str, *args: Any, job_id: str | None = None, defer_by: float | None = None
    ) -> str | None:
        if job_name not in known:
            raise KeyError(f"unknown job {job_name!r}; known jobs: {', '.join(sorted(known))}")
        return await enqueue_job(queue, job_name, *args, job_id=job_id, defer_by=defer_by)

    return enqueue
