"""arq ``Worker`` settings built from the configuration and the job plans (``plans``).

Each job is registered under its public name (``scrape-catalog``) with its own timeout,
``max_tries`` and ``keep_result``. A scheduled job also gets a cron entry ``cron:<name>`` in UTC
whose only work is to enqueue the job itself under the id ``<name>:<tick in ms>``. The indirection
keeps every real run a plain arq job, so retries, crash recovery and shutdown behave the same
for scheduled and enqueued runs (arq holds a *cron* job's in-progress key for 60 s after it ends
or is retried, which would delay every retry and every interrupted run by a minute), and a tick
can never run twice: both the cron id and the job id are unique per tick, and results are kept
for ``worker.keep_result`` so a late duplicate enqueue is refused.

``build_worker_settings`` returns a plain mapping of ``arq.worker.Worker`` keyword arguments;
the worker passes it as ``Worker(**settings)``, so a misspelt key is a ``TypeError`` at start
rather than a setting arq silently drops (and a test checks every key against the signature).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC
from typing import Any

from arq.connections import ArqRedis
from arq.cron import CronJob, cron
from arq.worker import Function, func
from loguru import logger

from vultr_scraper_core.config import Config
from vultr_scraper_worker.enqueue import enqueue_job
from vultr_scraper_worker.plans import CRON_MICROSECOND, JobPlan
from vultr_scraper_worker.records.queue import CRON_PREFIX
from vultr_scraper_worker.serialization import deserialize, serialize
from vultr_scraper_worker.wrapper import JobRunner

TRAMPOLINE_TIMEOUT = 30.0

Hook = Callable[[dict[Any, Any]], Awaitable[None]]


def _trampoline(plan: JobPlan, queue_name: str) -> Callable[..., Awaitable[dict[str, Any]]]:
    """The cron entry of ``plan``: enqueue ``plan.name`` once for this tick."""

    async def tick(ctx: dict[Any, Any]) -> dict[str, Any]:
        cron_id = str(ctx.get("job_id", ""))
        job_id = cron_id.removeprefix(CRON_PREFIX)
        queued = await enqueue_job(ctx["redis"], plan.name, job_id=job_id, _queue_name=queue_name)
        log = logger.bind(function=plan.name, job_id=job_id, cron_id=cron_id)
        if queued is None:
            log.debug("scheduled run already queued or done")
        else:
            log.debug("scheduled run enqueued")
        return {"status": "success", "enqueued": queued is not None, "job_id": job_id}

    tick.__qualname__ = tick.__name__ = f"tick[{plan.name}]"
    return tick


def build_worker_settings(
    config: Config,
    plans: Sequence[JobPlan],
    *,
    runner: JobRunner,
    redis_pool: ArqRedis,
    on_startup: Hook | None = None,
    on_shutdown: Hook | None = None,
    burst: bool = False,
    handle_signals: bool = True,
) -> dict[str, Any]:
    """Keyword arguments for ``arq.worker.Worker`` serving ``plans`` through ``runner`` (which
    must be ``timed_by_arq``); every key is one of its parameters."""
    worker = config.worker
    if not plans:
        raise ValueError("no jobs to serve: the job registry is empty")
    keep_result = worker.keep_result
    functions: list[Function] = [
        func(
            runner.wrap(plan.spec, plan.schedule.timeout),  # type: ignore[arg-type]
            name=plan.name,
            timeout=plan.schedule.timeout,  # enforced by arq, reported by the wrapper
            max_tries=worker.max_tries,
            keep_result=keep_result,
        )
        for plan in plans
    ]
    cron_jobs: list[CronJob] = [
        cron(
            _trampoline(plan, config.redis.queue_name),  # type: ignore[arg-type]
            name=CRON_PREFIX + plan.name,
            hour=set(plan.schedule.hour) if plan.schedule.hour is not None else None,
            minute=set(plan.schedule.minute) if plan.schedule.minute is not None else None,
            second=set(plan.schedule.second),
            microsecond=CRON_MICROSECOND,
            unique=True,
            run_at_startup=False,
            timeout=TRAMPOLINE_TIMEOUT,
            # arq's cron defaults are max_tries=1 and keep_result=0: a kept result is what makes
            # a late second enqueue of the same tick fail.
            max_tries=worker.max_tries,
            keep_result=keep_result,
        )
        for plan in plans
        if plan.schedule.enabled
    ]
    settings: dict[str, Any] = {
        "functions": functions,
        "cron_jobs": cron_jobs,
        "queue_name": config.redis.queue_name,
        "redis_pool": redis_pool,
        "burst": burst,
        "handle_signals": handle_signals,
        "on_startup": on_startup,
        "on_shutdown": on_shutdown,
        "job_completion_wait": worker.job_completion_wait,
        "max_jobs": worker.max_jobs,
        "job_timeout": max(plan.schedule.timeout for plan in plans),
        "keep_result": keep_result,
        "poll_delay": worker.poll_delay,
        "max_tries": worker.max_tries,
        "health_check_interval": worker.health_check_interval,
        "retry_jobs": True,
        "allow_abort_jobs": True,  # the job page's abort (arq's Job.abort)
        "job_serializer": serialize,
        "job_deserializer": deserialize,
        "timezone": UTC,
        "log_results": False,  # the wrapper logs outcomes; arq's repr of results is noise
    }
    return settings
