"""arq ``Worker`` settings built from the configuration, for every job in the registry.

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

import importlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from itertools import pairwise
from typing import Any

from arq.connections import ArqRedis
from arq.cron import CronJob, cron, next_cron
from arq.worker import Function, func
from loguru import logger

from vultr_scraper_core.config import Config, LoadedConfig, ScheduleConfig
from vultr_scraper_core.http import Backoff
from vultr_scraper_jobs.registry import JobSpec, all_jobs
from vultr_scraper_worker.enqueue import enqueue_job
from vultr_scraper_worker.records.runs import HistoryBuffer
from vultr_scraper_worker.serialization import deserialize, serialize
from vultr_scraper_worker.wrapper import JobRunner

DEFAULT_TIMEOUT = 300.0  # jobs without a [schedules.*] table
CRON_MICROSECOND = 123_456  # arq's default offset from the top of the second
TRAMPOLINE_TIMEOUT = 30.0
CRON_PREFIX = "cron:"

Hook = Callable[[dict[Any, Any]], Awaitable[None]]


@dataclass(frozen=True)
class Schedule:
    """When a job runs by itself (UTC cron fields; None = every) and how long it may take."""

    enabled: bool = False
    minute: frozenset[int] | None = None
    hour: frozenset[int] | None = None
    second: frozenset[int] = frozenset({0})
    timeout: float = DEFAULT_TIMEOUT

    @classmethod
    def from_config(cls, table: ScheduleConfig) -> Schedule:
        return cls(
            enabled=table.enabled,
            minute=frozenset(table.minute) or None,
            hour=frozenset(table.hour) or None,
            timeout=table.timeout,
        )

    def describe(self) -> str:
        if not self.enabled:
            return "off"

        def part(values: frozenset[int] | None, unit: str) -> str:
            return (
                f"{unit} *" if values is None else f"{unit} " + ",".join(map(str, sorted(values)))
            )

        fields = [part(self.hour, "hour"), part(self.minute, "minute")]
        if self.second != frozenset({0}):
            fields.append(part(self.second, "second"))
        return " ".join(fields) + " UTC"

    def next_run(self, after: datetime) -> datetime | None:
        """The next tick strictly after ``after`` (aware, UTC), as arq computes it."""
        if not self.enabled:
            return None
        return next_cron(
            after.astimezone(UTC),
            hour=set(self.hour) if self.hour is not None else None,
            minute=set(self.minute) if self.minute is not None else None,
            second=set(self.second),
            microsecond=CRON_MICROSECOND,
        )


def _spread(values: frozenset[int]) -> int | None:
    """The step of values evenly spread over 0..59 (``{0, 15, 30, 45}`` -> 15), else None."""
    ordered = sorted(values)
    if len(ordered) < 2:
        return None
    step = ordered[1] - ordered[0]
    if all(b - a == step for a, b in pairwise(ordered)) and step * len(ordered) == 60:
        return step
    return None


def _minutes(values: frozenset[int]) -> str:
    ordered = sorted(values)
    if len(ordered) == 60:
        return "every minute"
    step = _spread(values)
    if step is not None:
        start = f" from :{ordered[0]:02d}" if ordered[0] else ""
        return f"every {step} min{start}"
    return "at " + ", ".join(f":{minute:02d}" for minute in ordered)


def describe_schedule(schedule: Schedule) -> str:
    """``every 15 min``, ``daily at 03:07 UTC``, ``on demand``: for people (all times UTC).

    The one readable form of a schedule: the worker's startup log, ``vultr-scraper jobs`` and
    the status page all use it (``Schedule.describe`` is the cron-like form of the JSON API).
    """
    if not schedule.enabled:
        return "on demand"
    minutes = schedule.minute if schedule.minute is not None else frozenset(range(60))
    if schedule.second != frozenset({0}):
        step = _spread(schedule.second)
        if step is not None and len(minutes) == 60 and schedule.hour is None:
            return f"every {step} s"
        seconds = ", ".join(str(second) for second in sorted(schedule.second))
        return f"{describe_schedule(replace(schedule, second=frozenset({0})))} at seconds {seconds}"
    if schedule.hour is None:
        text = _minutes(minutes)
        return "hourly " + text if text.startswith("at ") else text
    hours = sorted(schedule.hour)
    if len(hours) == 1 and len(minutes) == 1:
        return f"daily at {hours[0]:02d}:{min(minutes):02d} UTC"
    return f"{_minutes(minutes)} in hours {', '.join(f'{hour:02d}' for hour in hours)} UTC"


@dataclass(frozen=True)
class JobPlan:
    spec: JobSpec
    schedule: Schedule

    @property
    def name(self) -> str:
        return self.spec.name


@dataclass(frozen=True)
class JobSet:
    """The jobs a worker serves, with their schedules (usually the registry's)."""

    specs: Sequence[JobSpec]
    schedules: Mapping[str, Schedule] = field(default_factory=dict)


def plan_jobs(config: Config, jobs: JobSet | None = None) -> list[JobPlan]:
    """Each job with its schedule: explicit ones first, else its ``[schedules.*]`` table."""
    chosen = jobs if jobs is not None else JobSet(list(all_jobs().values()))
    plans: list[JobPlan] = []
    for spec in chosen.specs:
        schedule = chosen.schedules.get(spec.name)
        if schedule is None and spec.schedule:
            table = getattr(config.schedules, spec.schedule, None)
            if not isinstance(table, ScheduleConfig):
                raise KeyError(f"job {spec.name}: no [schedules.{spec.schedule}] table")
            schedule = Schedule.from_config(table)
        plans.append(JobPlan(spec, schedule or Schedule()))
    return plans


def load_job_set(module_name: str | None) -> JobSet | None:
    """The jobs of ``module_name`` (``JOBS`` list, optional ``SCHEDULES`` mapping), or None.

    A hidden CLI option uses this to serve other jobs than the registry's, e.g. test jobs.
    """
    if not module_name:
        return None
    module = importlib.import_module(module_name)
    specs = list(module.JOBS)
    schedules = dict(getattr(module, "SCHEDULES", {}))
    return JobSet(specs, schedules)


def make_backoff(loaded: LoadedConfig) -> Backoff:
    config = loaded.config
    return Backoff(
        base=config.worker.retry_backoff_base,
        cap=config.worker.retry_backoff_cap,
        max_attempts=config.worker.max_tries,
        retry_after_cap=max(config.client.retry_after_cap, config.worker.retry_backoff_cap),
    )


def make_runner(
    loaded: LoadedConfig,
    worker_id: str | None = None,
    *,
    buffer: HistoryBuffer | None = None,
    timed_by_arq: bool = False,
) -> JobRunner:
    """The job runner; ``timed_by_arq`` for the worker, where arq keeps each job's time."""
    return JobRunner(
        max_tries=loaded.config.worker.max_tries,
        backoff=make_backoff(loaded),
        key_prefix=loaded.config.redis.key_prefix,
        worker_id=worker_id,
        buffer=buffer,
        timed_by_arq=timed_by_arq,
    )


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
    loaded: LoadedConfig,
    *,
    redis_pool: ArqRedis,
    jobs: JobSet | None = None,
    runner: JobRunner | None = None,
    on_startup: Hook | None = None,
    on_shutdown: Hook | None = None,
    burst: bool = False,
    handle_signals: bool = True,
) -> dict[str, Any]:
    """Keyword arguments for ``arq.worker.Worker``; every key is one of its parameters."""
    config = loaded.config
    worker = config.worker
    plans = plan_jobs(config, jobs)
    if not plans:
        raise ValueError("no jobs to serve: the job registry is empty")
    runner = runner or make_runner(loaded, timed_by_arq=True)
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
        "allow_abort_jobs": False,
        "job_serializer": serialize,
        "job_deserializer": deserialize,
        "timezone": UTC,
        "log_results": False,  # the wrapper logs outcomes; arq's repr of results is noise
    }
    return settings


def next_runs(plans: Sequence[JobPlan], now: datetime | None = None) -> dict[str, datetime | None]:
    """Job name -> its next scheduled tick (None when it has no schedule)."""
    current = now or datetime.now(UTC)
    return {plan.name: plan.schedule.next_run(current) for plan in plans}
