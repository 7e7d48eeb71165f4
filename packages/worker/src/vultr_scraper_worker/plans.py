"""The jobs a worker serves and when each runs: ``JobPlan`` = a job's spec and its ``Schedule``.

``plan_jobs`` pairs every job of the registry (or of a ``JobSet``, e.g. test jobs) with its
``[schedules.*]`` table, once; the worker, the CLI and the API all take the resulting plans.
A schedule has two readable forms: ``Schedule.describe`` (cron-like, the JSON API) and
``describe_schedule`` (for people). ``job_overview`` joins each plan with its latest records
(last run, last success) and its next tick.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from itertools import pairwise
from typing import Any

import msgspec
from arq.cron import next_cron
from redis.asyncio import Redis

from vultr_scraper_core.config import Config, ScheduleConfig
from vultr_scraper_jobs.registry import JobSpec, all_jobs
from vultr_scraper_worker.records.runs import JobHistory, RunRecord

DEFAULT_TIMEOUT = 300.0  # jobs with neither a [schedules.*] table nor a [worker.timeouts] key
CRON_MICROSECOND = 123_456  # arq's default offset from the top of the second


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
    """Each job with its schedule: explicit ones first, else its ``[schedules.*]`` table, else
    on demand with its ``[worker.timeouts]`` key (``deliver-digest`` -> ``deliver_digest``)."""
    chosen = jobs if jobs is not None else JobSet(list(all_jobs().values()))
    plans: list[JobPlan] = []
    for spec in chosen.specs:
        schedule = chosen.schedules.get(spec.name)
        if schedule is None and spec.schedule:
            table = getattr(config.schedules, spec.schedule, None)
            if not isinstance(table, ScheduleConfig):
                raise KeyError(f"job {spec.name}: no [schedules.{spec.schedule}] table")
            schedule = Schedule.from_config(table)
        if schedule is None:
            schedule = Schedule(timeout=on_demand_timeout(config, spec.name))
        plans.append(JobPlan(spec, schedule))
    return plans


def on_demand_timeout(config: Config, name: str) -> float:
    """The timeout of a job without a schedule: its ``[worker.timeouts]`` key, if it has one."""
    timeout = getattr(config.worker.timeouts, name.replace("-", "_"), None)
    return float(timeout) if isinstance(timeout, int | float) else DEFAULT_TIMEOUT


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


def next_runs(plans: Sequence[JobPlan], now: datetime | None = None) -> dict[str, datetime | None]:
    """Job name -> its next scheduled tick (None when it has no schedule)."""
    current = now or datetime.now(UTC)
    return {plan.name: plan.schedule.next_run(current) for plan in plans}


class JobOverview(msgspec.Struct, kw_only=True):
    """One job for the status page: its schedule, last run, last success and next run."""

    name: str
    description: str
    schedule: str  # e.g. "hour * minute 0,15,30,45 UTC", or "off"
    enabled: bool
    timeout: float
    next_run: datetime | None = None
    last_run: RunRecord | None = None
    last_success: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        document: dict[str, Any] = msgspec.to_builtins(self)
        return document


async def job_overview(
    redis: Redis, key_prefix: str, plans: Sequence[JobPlan], now: datetime | None = None
) -> list[JobOverview]:
    """Every planned job (``plan_jobs``) with its latest records and its next tick."""
    history = JobHistory(redis, key_prefix)
    last_runs = await history.last_runs()
    last_success = await history.last_success()
    current = now or datetime.now(UTC)
    overview: list[JobOverview] = []
    for plan in plans:
        success = last_success.get(plan.name)
        overview.append(
            JobOverview(
                name=plan.name,
                description=plan.spec.description,
                schedule=plan.schedule.describe(),
                enabled=plan.schedule.enabled,
                timeout=plan.schedule.timeout,
                next_run=plan.schedule.next_run(current),
                last_run=last_runs.get(plan.name),
                last_success=datetime.fromtimestamp(success, UTC) if success else None,
            )
        )
    return overview
