"""Process-level resources shared by the worker and one-shot CLI commands.

``open_redis`` gives the configured Redis, or the private embedded one: it reuses an embedded
server already running for the same state directory (a worker), else starts one and owns it.
``job_context`` builds the ``ctx`` mapping every job expects (see ``vultr_scraper_jobs.context``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

from redis.asyncio import Redis

from vultr_scraper_core.config import LoadedConfig, state_dir
from vultr_scraper_core.embedded_redis import EmbeddedRedis, answers_ping
from vultr_scraper_core.http import HttpClient, create_session
from vultr_scraper_core.redis import connect
from vultr_scraper_jobs.context import Enqueue


@asynccontextmanager
async def redis_url(loaded: LoadedConfig, *, persistent: bool = True) -> AsyncIterator[str]:
    """The Redis URL to use, starting (and later stopping) an embedded server if needed."""
    if loaded.config.redis.url:
        yield loaded.config.redis.url
        return
    server = EmbeddedRedis(state_dir(loaded.config), persistent=persistent)
    if answers_ping(server.socket):
        yield server.url  # someone else (a running worker) owns it
        return
    async with server:
        yield server.url


@asynccontextmanager
async def open_redis(loaded: LoadedConfig) -> AsyncIterator[Redis]:
    async with redis_url(loaded) as url:
        client = connect(
            url,
            password=loaded.secrets.redis_password,
            outage_budget=loaded.config.worker.redis_outage_budget,
        )
        try:
            yield client
        finally:
            await client.aclose()


@asynccontextmanager
async def job_context(
    loaded: LoadedConfig,
    redis: Redis,
    *,
    enqueue: Enqueue | None = None,
    extra: dict[str, Any] | None = None,
) -> AsyncIterator[dict[str, Any]]:
    """The ctx mapping for jobs, with one HTTP session for its whole lifetime."""
    async with AsyncExitStack() as stack:
        session = await stack.enter_async_context(create_session(loaded.config.client))
        ctx: dict[str, Any] = {
            "config": loaded.config,
            "secrets": loaded.secrets,
            "redis": redis,
            "http": HttpClient(session, loaded.config.client),
            "enqueue": enqueue if enqueue is not None else _enqueue_unavailable,
        }
        ctx.update(extra or {})
        yield ctx


async def _enqueue_unavailable(job_name: str, *args: Any, job_id: str | None = None) -> str | None:
    raise RuntimeError(f"cannot enqueue {job_name}: no queue in this context")
