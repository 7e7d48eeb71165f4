"""``/api/v1/jobs`` and the job writes (retry, enqueue, abort). Times are RFC 3339 here, where
the job records keep Unix times."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal, cast

import msgspec
from msgspec import Meta

from vultr_scraper_core.formats import from_unix
from vultr_scraper_worker.documents.common import Count
from vultr_scraper_worker.plans import JobOverview
from vultr_scraper_worker.records.failed import FailedJob
from vultr_scraper_worker.records.queue import QueuedJob
from vultr_scraper_worker.records.runs import RunRecord

Outcome = Literal["success", "quarantined", "failed", "retry", "interrupted"]
QueueState = Literal["queued", "deferred", "running"]
# A job's arguments are whatever JSON its function takes: items of any type, said explicitly
# (an array schema without ``items`` stops client generators).
Args = Annotated[list[Any], Meta(extra_json_schema={"items": {}})]
Kwargs = dict[str, Any]


class JobRun(msgspec.Struct, kw_only=True):
    """One try of a job."""

    function: str
    job_id: str
    job_try: int
    start: datetime | None
    end: datetime | None
    duration: Annotated[float, Meta(description="seconds")]
    outcome: Outcome
    error: str | None = None
    error_type: str | None = None
    summary: dict[str, Any] = msgspec.field(default_factory=dict)

    @classmethod
    def of(cls, run: RunRecord) -> JobRun:
        return cls(
            function=run.function,
            job_id=run.job_id,
            job_try=run.job_try,
            start=from_unix(run.start),
            end=from_unix(run.end),
            duration=run.duration,
            outcome=cast(Outcome, run.outcome),
            error=run.error,
            error_type=run.error_type,
            summary=run.summary,
        )


class ScheduledJob(msgspec.Struct, kw_only=True):
    """A job the worker serves: its schedule, last run, last success and next run."""

    name: str
    description: str
    schedule: Annotated[str, Meta(description="cron fields in UTC, or `off`")]
    enabled: bool
    timeout: float
    next_run: datetime | None
    last_run: JobRun | None
    last_success: datetime | None

    @classmethod
    def of(cls, job: JobOverview) -> ScheduledJob:
        return cls(
            name=job.name,
            description=job.description,
            schedule=job.schedule,
            enabled=job.enabled,
            timeout=job.timeout,
            next_run=job.next_run,
            last_run=JobRun.of(job.last_run) if job.last_run else None,
            last_success=job.last_success,
        )


class QueueEntry(msgspec.Struct, kw_only=True):
    """A job on the queue: due, deferred or running."""

    id: str
    function: str
    state: QueueState
    due_at: datetime | None
    enqueued_at: datetime | None
    tries: int
    args: Args = msgspec.field(default_factory=list)
    kwargs: Kwargs = msgspec.field(default_factory=dict)

    @classmethod
    def of(cls, job: QueuedJob) -> QueueEntry:
        return cls(
            id=job.id,
            function=job.function,
            state=cast(QueueState, job.state),
            due_at=from_unix(job.due_at),
            enqueued_at=from_unix(job.enqueued_at),
            tries=job.tries,
            args=job.args,
            kwargs=job.kwargs,
        )


class FailedEntry(msgspec.Struct, kw_only=True):
    """A job that failed for good, with what is needed to retry it."""

    id: str
    function: str
    args: Args = msgspec.field(default_factory=list)
    kwargs: Kwargs = msgspec.field(default_factory=dict)
    error: str
    error_type: str
    tries: int
    enqueued_at: datetime | None = None
    started_at: datetime | None = None
    failed_at: datetime | None
    retryable: bool
    retried_as: str | None = None
    retried_at: datetime | None = None

    @classmethod
    def of(cls, job: FailedJob) -> FailedEntry:
        return cls(
            id=job.id,
            function=job.function,
            args=job.args,
            kwargs=job.kwargs,
            error=job.error,
            error_type=job.error_type,
            tries=job.tries,
            enqueued_at=from_unix(job.enqueued_at),
            started_at=from_unix(job.started_at),
            failed_at=from_unix(job.failed_at),
            retryable=job.retryable,
            retried_as=job.retried_as,
            retried_at=from_unix(job.retried_at),
        )


class QueueSummary(msgspec.Struct, kw_only=True):
    total: Annotated[Count, Meta(description="running included")]
    running: Count
    jobs: list[QueueEntry]


class FailedSummary(msgspec.Struct, kw_only=True):
    count: Count
    jobs: list[FailedEntry]


class JobsOverview(msgspec.Struct, kw_only=True):
    """Scheduled jobs, the queue, failed jobs and recent runs."""

    jobs: list[ScheduledJob]
    queue: QueueSummary
    failed: FailedSummary
    recent: list[JobRun]


class AcceptedJob(msgspec.Struct, kw_only=True):
    """A job put on the queue."""

    job_id: str
    job: str


class RetriedJob(msgspec.Struct, kw_only=True):
    """A failed job enqueued again."""

    job_id: str
    retried_as: str


class AbortRequested(msgspec.Struct, kw_only=True):
    """An abort asked of a queued or running job."""

    job_id: str
    aborted: bool
