"""Start and stop the HTTP server inside the worker process (called from the worker's hooks).

``[http] listen`` is ``HOST:PORT`` (``127.0.0.1:8080``, ``[::1]:8080``, ``:8080`` for every
interface, port 0 for any free port) or ``unix:/path/to.sock``; empty disables the server. It is
parsed (and validated when the configuration is loaded) by ``vultr_scraper_core.config``.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from arq.connections import ArqRedis
from loguru import logger
from redis.asyncio import Redis

from vultr_scraper_core.config import ListenAddress, parse_listen
from vultr_scraper_worker.api.app import create_app
from vultr_scraper_worker.api.auth import Authenticator
from vultr_scraper_worker.api.state import ApiState
from vultr_scraper_worker.plans import plan_jobs
from vultr_scraper_worker.serialization import deserialize, serialize


@dataclass
class HttpServerHandle:
    runner: web.AppRunner
    app: web.Application
    url: str  # http://host:port (the bound port when 0 was asked for) or unix:/path


def build_state(ctx: Mapping[str, Any]) -> ApiState:
    """The API's view of the worker's ctx: ``config``, ``secrets``, ``redis`` (the worker's
    connection pool), optional ``job_plans`` (default: the registry's) and ``started_at``."""
    config = ctx["config"]
    secrets = ctx["secrets"]
    redis: Redis = ctx["redis"]
    # The worker's connection pool, with the project's msgpack serialiser for retry/enqueue.
    queue = ArqRedis(
        redis.connection_pool,
        job_serializer=serialize,
        job_deserializer=deserialize,
        default_queue_name=config.redis.queue_name,
    )
    return ApiState(
        config=config,
        secrets=secrets,
        redis=queue,
        started_at=ctx.get("started_at") or datetime.now(UTC),
        auth=Authenticator(secrets.http_token, protect_reads=config.http.protect_reads),
        # The worker passes the jobs it serves (they can differ from the registry's).
        plans=list(ctx.get("job_plans") or plan_jobs(config)),
    )


async def start_http_server(ctx: Mapping[str, Any]) -> HttpServerHandle | None:
    """Serve the API on ``[http] listen``; None when it is empty. Raises on a bad address or a
    port that cannot be bound (the caller logs it and keeps the worker running)."""
    listen = parse_listen(ctx["config"].http.listen)
    if listen is None:
        logger.info("HTTP server disabled ([http] listen is empty)")
        return None
    app = create_app(build_state(ctx))
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    try:
        site: web.BaseSite
        if listen.path is not None:
            _remove_stale_socket(listen.path)
            site = web.UnixSite(runner, listen.path)
        else:
            site = web.TCPSite(runner, listen.host, listen.port, reuse_address=True)
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    url = _bound_url(runner, listen)
    logger.bind(url=url).info("HTTP server listening on {}", url)
    return HttpServerHandle(runner=runner, app=app, url=url)


def _remove_stale_socket(path: str) -> None:
    """A socket file left behind by a killed worker would make the bind fail."""
    if os.path.exists(path) and stat.S_ISSOCK(os.stat(path).st_mode):
        os.unlink(path)


def _bound_url(runner: web.AppRunner, listen: ListenAddress) -> str:
    if listen.path is not None:
        return f"unix:{listen.path}"
    for address in runner.addresses:
        if isinstance(address, tuple) and len(address) >= 2:
            host, port = str(address[0]), int(address[1])
            shown = f"[{host}]" if ":" in host else host
            return f"http://{shown}:{port}"
    return f"http://{listen.host or '0.0.0.0'}:{listen.port}"


async def stop_http_server(handle: HttpServerHandle | None) -> None:
    """Stop accepting, let requests in flight finish (briefly), release the socket."""
    if handle is None:
        return
    await handle.runner.cleanup()
    logger.info("HTTP server stopped")
