"""The real jobs in this process on the test's Redis, their follow-ups on a real arq queue."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from arq.connections import ArqRedis
from redis.asyncio import Redis

from vultr_scraper_core.config import Config, Secrets
from vultr_scraper_core.http import HttpClient, create_session
from vultr_scraper_jobs.context import make_context
from vultr_scraper_jobs.registry import all_jobs
from vultr_scraper_worker.enqueue import close_client, make_enqueue, queue_client


async def _no_sleep(_: float) -> None:
    return None


@asynccontextmanager
async def jobs_on_queue(
    config: Config, redis: Redis, redis_url: str
) -> AsyncIterator[tuple[dict[str, Any], ArqRedis]]:
    """A job ``ctx`` whose ``enqueue`` writes to arq's queue (as the worker's does), and that
    queue; HTTP retries are real but do not wait."""
    queue = queue_client(redis_url, queue_name=config.redis.queue_name)
    try:
        async with create_session(config.client) as session:
            ctx = make_context(
                config=config,
                secrets=Secrets(),
                redis=redis,
                http=HttpClient(session, config.client, sleep=_no_sleep),
                enqueue=make_enqueue(queue, list(all_jobs())),
            )
            yield ctx, queue
    finally:
        await close_client(queue)
