"""``/api/v1/jobs``: schedule, queue, failed jobs and recent runs; retry and enqueue."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from loguru import logger

from vultr_scraper_core.formats import from_unix
from vultr_scraper_worker.api import reads_jobs, schemas
from vultr_scraper_worker.api.auth import Access
from vultr_scraper_worker.api.params import integer, text
from vultr_scraper_worker.api.routing import Response, Route, json_response
from vultr_scraper_worker.api.state import state_of
from vultr_scraper_worker.plans import JobOverview
from vultr_scraper_worker.records.failed import FailedJob
from vultr_scraper_worker.records.queue import QueuedJob
from vultr_scraper_worker.records.runs import RunRecord

JOB_ID_PATTERN = r"^[A-Za-z0-9._:-]+$"
JOB_NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]*$"


# The JSON documents of this area: times as RFC 3339.


def run_doc(run: RunRecord) -> dict[str, Any]:
    return {
        "function": run.function,
        "job_id": run.job_id,
        "job_try": run.job_try,
        "start": from_unix(run.start),
        "end": from_unix(run.end),
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
        "due_at": from_unix(job.due_at),
        "enqueued_at": from_unix(job.enqueued_at),
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
        "enqueued_at": from_unix(job.enqueued_at),
        "started_at": from_unix(job.started_at),
        "failed_at": from_unix(job.failed_at),
        "retryable": job.retryable,
        "retried_as": job.retried_as,
        "retried_at": from_unix(job.retried_at),
    }


async def list_jobs(request: web.Request, args: dict[str, Any]) -> web.StreamResponse:
    state = state_of(request)
    limit = args["limit"]
    jobs = await reads_jobs.scheduled_jobs(state)
    queue = await reads_jobs.queue_status(state, limit)
    failed_count, failed = await reads_jobs.failed_jobs(state, limit)
    recent = await reads_jobs.recent_runs(state, limit)
    return json_response(
        {
            "jobs": [scheduled_doc(job) for job in jobs],
            "queue": {
                "total": queue.total,
                "running": len(queue.running),
                "jobs": [queued_doc(job) for job in queue.jobs],
            },
            "failed": {"count": failed_count, "jobs": [failed_doc(job) for job in failed]},
            "recent": [run_doc(run) for run in recent],
        }
    )


async def retry_job(request: web.Request, args: dict[str, Any]) -> web.StreamResponse:
    state = state_of(request)
    job_id = args["job_id"]
    new_id = await reads_jobs.retry_failed(state, job_id)
    logger.bind(job_id=job_id, retried_as=new_id).info("failed job {} retried over HTTP", job_id)
    return _accepted(request, {"job_id": job_id, "retried_as": new_id}, f"retried={new_id}")


async def enqueue_job(request: web.Request, args: dict[str, Any]) -> web.StreamResponse:
    state = state_of(request)
    name = args["name"]
    job_id = await reads_jobs.enqueue(state, name)
    logger.bind(job_id=job_id, function=name).info("{} enqueued over HTTP", name)
    return _accepted(request, {"job_id": job_id, "job": name}, f"enqueued={job_id}")


def _accepted(request: web.Request, document: dict[str, Any], note: str) -> web.StreamResponse:
    """202 with JSON for API clients; a redirect back to the status page for its forms."""
    if request.content_type == "application/x-www-form-urlencoded" and _wants_html(request):
        return web.Response(status=303, headers={"Location": f"/?{note}#jobs"})
    return json_response(document, status=202)


def _wants_html(request: web.Request) -> bool:
    accept = request.headers.get("Accept", "")
    return "text/html" in accept


_LIMIT = integer(
    "limit",
    "How many recent runs, queued jobs and failed jobs to list",
    minimum=1,
    maximum=200,
    default=20,
)
_FORM_NOTE = (
    " The status page posts an empty form with its login cookie and gets a 303 redirect back "
    "to `/`; API clients get 202 with a JSON document."
)
_REDIRECT = Response("Form post from the status page: back to it", media_type=None)

ROUTES = [
    Route(
        "GET",
        "/api/v1/jobs",
        list_jobs,
        operation_id="listJobs",
        summary="Scheduled jobs (last and next run), the queue, failed jobs and recent runs",
        tag="jobs",
        params=(_LIMIT,),
        responses={200: Response("Job overview", schema=schemas.JOBS)},
    ),
    Route(
        "POST",
        "/api/v1/jobs/{job_id}/retry",
        retry_job,
        operation_id="retryFailedJob",
        summary="Enqueue a failed job again with its original arguments",
        tag="jobs",
        access=Access.WRITE,
        params=(
            text(
                "job_id",
                "The id of a failed job (from GET /api/v1/jobs)",
                pattern=JOB_ID_PATTERN,
                max_length=200,
                location="path",
                example="scrape-catalog:1764300000000",
            ),
        ),
        description=(
            "Returns the new job's id. A failed job is retried at most once: a second retry of "
            "the same record answers 409 naming the job it was retried as (if that job failed "
            "too, retry its own failed record)." + _FORM_NOTE
        ),
        responses={
            202: Response("Enqueued again", schema=schemas.RETRIED_JOB),
            303: _REDIRECT,
            404: Response(
                "No failed job with this id", schema={"$ref": "#/components/schemas/Error"}
            ),
            409: Response(
                "The job cannot be retried: it was already retried (the message names the "
                "job it was retried as), or its payload was unreadable",
                schema={"$ref": "#/components/schemas/Error"},
            ),
        },
    ),
    Route(
        "POST",
        "/api/v1/jobs/{name}/enqueue",
        enqueue_job,
        operation_id="enqueueJob",
        summary="Put a job on the queue now, by name",
        tag="jobs",
        access=Access.WRITE,
        params=(
            text(
                "name",
                "A job name, e.g. scrape-catalog (GET /api/v1/jobs lists them)",
                pattern=JOB_NAME_PATTERN,
                max_length=100,
                location="path",
                example="scrape-catalog",
            ),
        ),
        description="Returns the new job's id." + _FORM_NOTE,
        responses={
            202: Response("Enqueued", schema=schemas.ACCEPTED_JOB),
            303: _REDIRECT,
            404: Response("No job with this name", schema={"$ref": "#/components/schemas/Error"}),
        },
    ),
]
