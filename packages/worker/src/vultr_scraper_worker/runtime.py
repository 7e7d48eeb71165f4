"""Process-level resources shared by the worker and one-shot CLI commands.

``open_redis`` gives the configured Redis (one server, or a primary found through Sentinel),
or the private embedded one: it reuses an embedded
server already running for the same state directory (a worker), else starts one and owns it.
The caller chooses how long commands ride out an outage (``outage_budget``) and, optionally,
how long Redis may take to answer at all (``connect_budget``).
``job_context`` builds the ``ctx`` mapping every job expects (see ``vultr_scraper_jobs.context``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import TYPE_CHECKING, Any

from redis.asyncio import Redis

from vultr_scraper_core.config import LoadedConfig, state_dir
from vultr_scraper_core.embedded_redis import EmbeddedRedis, answers_ping
from vultr_scraper_core.redis import connect
from vultr_scraper_core.redis_target import RedisTarget, target_from_config

if TYPE_CHECKING:
    from vultr_scraper_jobs.context import Enqueue

# One-shot commands give up on an unreachable Redis quickly (about 1.5 s) with exit status 69.
CLI_OUTAGE_BUDGET = 0.5


@asynccontextmanager
async def redis_url(loaded: LoadedConfig, *, persistent: bool = True) -> AsyncIterator[str]:
    """The Redis URL to use, starting (and later stopping) an embedded server if needed
    (``redis.url`` may be a ``redis+sentinel://`` URL; see ``redis_target``)."""
    if loaded.config.redis.url:
        yield loaded.config.redis.url
        return
    server = EmbeddedRedis(state_dir(loaded.config), persistent=persistent)
    if answers_ping(server.socket):
        yield server.url  # someone else (a running worker) owns it
        return
    async with server:
        yield server.url


def uses_embedded(loaded: LoadedConfig) -> bool:
    """Neither ``redis.url`` nor ``redis.sentinels``: the private redis-server is used."""
    return not (loaded.config.redis.url or loaded.config.redis.sentinels)


@asynccontextmanager
async def redis_target(
    loaded: LoadedConfig, *, persistent: bool = True
) -> AsyncIterator[RedisTarget]:
    """Where the configured Redis is (a URL, or Sentinel), or the embedded server, started
    (and later stopped) if needed."""
    redis = loaded.config.redis
    if redis.sentinels:
        yield target_from_config(redis, loaded.secrets, "")
        return
    async with redis_url(loaded, persistent=persistent) as url:
        yield target_from_config(redis, loaded.secrets, url)


async def ensure_reachable(target: RedisTarget | str, *, budget: float) -> None:
    """PING ``target`` with a client that gives up after ``budget`` seconds of retries (about
    ``budget`` + 1 s in all); raises redis' ConnectionError (or OSError) if Redis is down."""
    probe = connect(target, outage_budget=budget)
    try:
        await probe.ping()
    finally:
        await probe.aclose()


@asynccontextmanager
async def open_redis(
    loaded: LoadedConfig, *, outage_budget: float, connect_budget: float | None = None
) -> AsyncIterator[Redis]:
    """A Redis client whose commands ride out an outage of ``outage_budget`` seconds: the
    worker's ``worker.redis_outage_budget`` for long work, ``CLI_OUTAGE_BUDGET`` for one-shot
    queries. With ``connect_budget``, a first PING must answer within that budget, so a command
    that would otherwise ride out a long outage still fails fast when Redis is down at start."""
    async with redis_target(loaded) as target:
        if connect_budget is not None:
            await ensure_reachable(target, budget=connect_budget)
        client = connect(target, outage_budget=outage_budget)
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
    # Here, not at the top: read commands open Redis through this module and never need
    # aiohttp (about a fifth of a second of CPU to import).
    from vultr_scraper_core.http import HttpClient, create_session

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


async def _enqueue_unavailable(
    job_name: str, *args: Any, job_id: str | None = None, defer_by: float | None = None
) -> str | None:
    raise RuntimeError(f"cannot enqueue {job_name}: no queue in this context")
