"""Plain JSON documents from the stores' records (times as RFC 3339, money as strings)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgspec

from vultr_scraper_core.store.changes import ChangeEvent
from vultr_scraper_worker.api.reads_jobs import EndpointHealth
from vultr_scraper_worker.records.failed import FailedJob
from vultr_scraper_worker.records.queue import JobOverview, QueuedJob
from vultr_scraper_worker.records.runs import RunRecord


def unix_time(value: float | None) -> datetime | None:
    if value is None:
        return None
    try:
        return datetime.fromtimestamp(value, UTC)
    except (OverflowError, OSError, ValueError):
        return None


def run_doc(run: RunRecord) -> dict[str, Any]:
    return {
        "function": run.function,
        "job_id": run.job_id,
        "job_try": run.job_try,
        "start": unix_time(run.start),
        "end": unix_time(run.end),
        "duration": run.duration,
        "outcome": run.outcome,
        "error": run.error,
        "error_type": run.error_type,
        "summary": run.summary,
    }


def scheduled_doc(job: JobOverview) -> dict[str, Any]:
    return {
        "name": job.name,
        "description": job.description,
        "schedule": job.schedule,
        "enabled": job.enabled,
        "timeout": job.timeout,
        "next_run": job.next_run,
        "last_run": run_doc(job.last_run) if job.last_run else None,
        "last_success": job.last_success,
    }


def queued_doc(job: QueuedJob) -> dict[str, Any]:
    return {
        "id": job.id,
        "function": job.function,
        "state": job.state,
        "due_at": unix_time(job.due_at),
        "enqueued_at": unix_time(job.enqueued_at),
        "tries": job.tries,
        "args": job.args,
        "kwargs": job.kwargs,
    }


def failed_doc(job: FailedJob) -> dict[str, Any]:
    return {
        "id": job.id,
        "function": job.function,
        "args": job.args,
        "kwargs": job.kwargs,
        "error": job.error,
        "error_type": job.error_type,
        "tries": job.tries,
        "enqueued_at": unix_time(job.enqueued_at),
        "started_at": unix_time(job.started_at),
        "failed_at": unix_time(job.failed_at),
        "retryable": job.retryable,
        "retried_as": job.retried_as,
        "retried_at": unix_time(job.retried_at),
    }


def event_doc(event: ChangeEvent) -> dict[str, Any]:
    document: dict[str, Any] = msgspec.to_builtins(event)
    document["kind"] = str(event.kind)
    return document


def endpoint_doc(endpoint: EndpointHealth) -> dict[str, Any]:
    state = endpoint.state
    return {
        "name": endpoint.name,
        "url": endpoint.url,
        "state": state.state,
        "since": state.since,
        "checks": state.checks,
        "failures": state.failures,
        "successes": state.successes,
        "last": msgspec.to_builtins(state.last) if state.last else None,
        "uptime": {
            label: {
                "probes": uptime.probes,
                "successes": uptime.successes,
                "ratio": uptime.ratio,
                "avg_latency_ms": uptime.avg_latency_ms,
            }
            for label, uptime in endpoint.uptime.items()
        },
    }
