"""What a job finds in arq's ``ctx``, typed.

The worker (and ``vultr-scraper run``) put these keys into ``ctx`` before any job runs:

* ``config``: the validated ``Config``; ``secrets``: the ``Secrets`` read from files;
* ``redis``: a ``redis.asyncio.Redis`` (arq's ``ArqRedis`` in the worker);
* ``http``: the shared ``HttpClient`` (one session, one rate limit, one retry policy);
* ``enqueue``: ``async enqueue(job_name, *args, job_id=None, defer_by=None)`` to queue a
  follow-up job (``defer_by`` seconds from now);
* ``job_id`` and ``job_try``: set by arq for each run (``run`` uses ``cli-<uuid>`` and 1).

Tests build the same mapping with ``make_context`` and await job functions directly.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from redis.asyncio import Redis

from vultr_scraper_core.config import Config, Secrets
from vultr_scraper_core.http import HttpClient


class Enqueue(Protocol):
    def __call__(
        self, job_name: str, *args: Any, job_id: str | None = None, defer_by: float | None = None
    ) -> Awaitable[str | None]: ...


@dataclass(frozen=True)
class JobDeps:
    config: Config
    secrets: Secrets
    redis: Redis
    http: HttpClient
    enqueue: Enqueue
    job_id: str
    job_try: int


def deps(ctx: Mapping[str, Any]) -> JobDeps:
    """The typed view of ``ctx``; a missing key is a programming error and says which."""
    missing = [key for key in ("config", "secrets", "redis", "http", "enqueue") if key not in ctx]
    if missing:
        raise KeyError(f"job context lacks {', '.join(missing)}")
    return JobDeps(
        config=ctx["config"],
        secrets=ctx["secrets"],
        redis=ctx["redis"],
        http=ctx["http"],
        enqueue=ctx["enqueue"],
        job_id=str(ctx.get("job_id", "")),
        job_try=int(ctx.get("job_try", 1)),
    )


async def _refuse_enqueue(
    job_name: str, *args: Any, job_id: str | None = None, defer_by: float | None = None
) -> str | None:
    raise RuntimeError(f"this context cannot enqueue jobs (asked for {job_name})")


def make_context(
    *,
    config: Config,
    secrets: Secrets,
    redis: Redis,
    http: HttpClient,
    enqueue: Enqueue | None = None,
    job_id: str = "test",
    job_try: int = 1,
) -> dict[str, Any]:
    """A ctx mapping as the worker builds it, for tests and one-shot runs."""
    return {
        "config": config,
        "secrets": secrets,
        "redis": redis,
        "http": http,
        "enqueue": enqueue if enqueue is not None else _refuse_enqueue,
        "job_id": job_id,
        "job_try": job_try,
    }


JobFunction = Callable[..., Awaitable[dict[str, Any]]]
