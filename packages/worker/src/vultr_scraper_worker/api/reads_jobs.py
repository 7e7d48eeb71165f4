"""The one module that reads (and, for retry and enqueue, writes) the other packages' stores.

Handlers, the status page, the feed and the metrics all go through these functions, so each
piece of state is read one way: the change feed (``store.changes``), the catalogue queries
(``store.queries``), endpoint health (``store.health``), job history, failed jobs and the
schedule (``records``, ``settings``) and arq's own queue keys.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from datetime import UTC, datetime

from vultr_scraper_core.config import mask_url
from vultr_scraper_core.store.changes import ChangeEvent, ChangeFeed
from vultr_scraper_core.store.health import EndpointState, HealthStore, Uptime
from vultr_scraper_jobs.health import configured_endpoints
from vultr_scraper_worker.api.errors import ApiError
from vultr_scraper_worker.api.state import ApiState
from vultr_scraper_worker.enqueue import enqueue_job
from vultr_scraper_worker.records.failed import FailedJob, FailedJobs, RetryRefused
from vultr_scraper_worker.records.queue import (
    JobOverview,
    QueueSnapshot,
    job_overview,
    queue_snapshot,
)
from vultr_scraper_worker.records.runs import JobHistory, RunRecord
from vultr_scraper_worker.records.stats import JobStats, parse_stats, stats_key
from vultr_scraper_worker.settings import JobPlan

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
QUEUE_LIST_LIMIT = 100


# -- jobs -----------------------------------------------------------------------------------


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


async def job_stats(state: ApiState) -> JobStats:
    raw = await state.redis.hgetall(stats_key(state.prefix))  # type: ignore[misc]
    return parse_stats(raw)


# -- changes --------------------------------------------------------------------------------


async def read_changes(
    state: ApiState,
    *,
    after: str | None,
    since: datetime | None,
    until: datetime | None,
    kinds: list[str],
    subject: str | None,
    limit: int,
) -> list[ChangeEvent]:
    if until is not None and until <= EPOCH:
        return []  # nothing was recorded before 1970; Redis refuses negative ids
    if since is not None and since <= EPOCH:
        since = None
    feed = ChangeFeed(state.redis, state.prefix)
    return await feed.read(
        after=after, since=since, until=until, kinds=kinds or None, subject=subject, limit=limit
    )


async def latest_changes(state: ApiState, limit: int, kinds: list[str]) -> list[ChangeEvent]:
    return await ChangeFeed(state.redis, state.prefix).latest(limit=limit, kinds=kinds or None)


async def change_count(state: ApiState) -> int:
    return await ChangeFeed(state.redis, state.prefix).count()


# -- endpoint health ------------------------------------------------------------------------

UPTIME_WINDOWS = {"24h": 24, "7d": 24 * 7, "30d": 24 * 30}


@dataclass
class EndpointHealth:
    name: str
    url: str | None  # credentials masked; None: no longer configured, still in the store
    state: EndpointState
    uptime: dict[str, Uptime]  # window ("24h", "7d", "30d") -> uptime


async def endpoint_health(state: ApiState, now: datetime | None = None) -> list[EndpointHealth]:
    """Every endpoint the health job probes (the built-in ``vultr-api`` one included) and every
    one still in the store, with its state and uptime windows."""
    store = HealthStore(state.redis, state.prefix)
    configured = {
        endpoint.name: mask_url(endpoint.url) for endpoint in configured_endpoints(state.config)
    }
    names = sorted(set(configured) | set(await store.known()))
    states = await store.states(names)
    windows = {
        label: await store.uptime(names, hours, now) for label, hours in UPTIME_WINDOWS.items()
    }
    return [
        EndpointHealth(
            name=name,
            url=configured.get(name),
            state=states[name],
            uptime={label: found[name] for label, found in windows.items()},
        )
        for name in names
    ]
