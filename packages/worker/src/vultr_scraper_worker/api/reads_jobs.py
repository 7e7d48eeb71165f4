"""Jobs as the API, the status page and the metrics see them: plans, records, queue; retry and
enqueue (the only writes the HTTP server makes).

With ``reads_catalog`` and ``reads_health``, the only modules of the API that read the other
packages' stores, so each piece of state is read one way.
"""

from __future__ import annotations

import inspect
from datetime import datetime

from vultr_scraper_core.store.deliveries import DeliveryLedger
from vultr_scraper_worker.api.errors import ApiError
from vultr_scraper_worker.api.state import ApiState
from vultr_scraper_worker.enqueue import enqueue_job
from vultr_scraper_worker.plans import JobOverview, JobPlan, job_overview
from vultr_scraper_worker.records.failed import FailedJob, FailedJobs, RetryRefused
from vultr_scraper_worker.records.queue import QueueSnapshot, queue_snapshot
from vultr_scraper_worker.records.runs import JobHistory, RunRecord
from vultr_scraper_worker.records.stats import JobStats, read_stats

QUEUE_LIST_LIMIT = 100


def job_plans(state: ApiState) -> list[JobPlan]:
    return state.plans


def job_names(state: ApiState) -> list[str]:
    return [plan.name for plan in job_plans(state)]


def needs_arguments(plan: JobPlan) -> bool:
    """Whether the job's function takes required arguments besides ``ctx`` (the API and the
    page enqueue jobs without arguments; such a job would only fail)."""
    try:
        parameters = list(inspect.signature(plan.spec.function).parameters.values())[1:]
    except (TypeError, ValueError):
        return False
    return any(
        parameter.default is inspect.Parameter.empty
        and parameter.kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
        for parameter in parameters
    )


def enqueueable(plans: list[JobPlan]) -> list[str]:
    """The jobs ``POST /api/v1/jobs/{name}/enqueue`` accepts: those needing no arguments."""
    return [plan.name for plan in plans if not needs_arguments(plan)]


async def scheduled_jobs(state: ApiState, now: datetime | None = None) -> list[JobOverview]:
    """Every job the worker serves, with schedule, last run, last success and next run."""
    return await job_overview(state.redis, state.prefix, job_plans(state), now)


async def recent_runs(state: ApiState, limit: int) -> list[RunRecord]:
    return await JobHistory(state.redis, state.prefix).recent(limit=limit)


async def queue_status(state: ApiState, limit: int = QUEUE_LIST_LIMIT) -> QueueSnapshot:
    return await queue_snapshot(state.redis, state.config.redis.queue_name, limit)


async def failed_jobs(state: ApiState, limit: int) -> tuple[int, list[FailedJob]]:
    store = FailedJobs(state.redis, state.prefix)
    return await store.count(), await store.list(limit)


async def retry_failed(state: ApiState, job_id: str) -> str:
    store = FailedJobs(state.redis, state.prefix)
    if await store.get(job_id) is None:
        raise ApiError(404, f"no failed job with id {job_id!r}")
    try:
        return await store.retry(job_id, state.redis, queue_name=state.config.redis.queue_name)
    except RetryRefused as refused:
        raise ApiError(409, str(refused)) from None


async def enqueue(state: ApiState, name: str) -> str:
    plans = {plan.name: plan for plan in job_plans(state)}
    if name not in plans:
        known = ", ".join(plans) or "(none)"
        raise ApiError(404, f"unknown job {name!r}; known jobs: {known}")
    if needs_arguments(plans[name]):
        raise ApiError(
            400,
            f"job {name!r} needs arguments, which this endpoint does not take "
            f"(use `vultr-scraper enqueue {name} ARGS...`)",
        )
    job_id = await enqueue_job(state.redis, name, _queue_name=state.config.redis.queue_name)
    if job_id is None:  # pragma: no cover - a random id is never taken
        raise ApiError(409, f"{name} is already queued")
    return job_id


async def pending_deliveries(state: ApiState) -> dict[str, int]:
    """Notification deliveries waiting for their next attempt, by sink: every configured sink
    (0 when none), and any other sink a delivery is still pending for."""
    pending = await DeliveryLedger(state.redis, state.prefix).pending_per_sink()
    return {sink.name: 0 for sink in state.config.sinks} | pending


async def job_stats(state: ApiState) -> JobStats:
    return await read_stats(state.redis, state.prefix)
