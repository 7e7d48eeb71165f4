"""``/api/v1/jobs``: schedule, queue, failed jobs and recent runs; retry and enqueue."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from aiohttp import web
from loguru import logger

from vultr_scraper_worker.api import reads_jobs
from vultr_scraper_worker.api.auth import Access
from vultr_scraper_worker.api.params import integer, text
from vultr_scraper_worker.api.routing import Response, Route, json_response
from vultr_scraper_worker.api.state import state_of
from vultr_scraper_worker.documents.jobs import (
    AcceptedJob,
    FailedEntry,
    FailedSummary,
    JobRun,
    JobsOverview,
    QueueEntry,
    QueueSummary,
    RetriedJob,
    ScheduledJob,
)
from vultr_scraper_worker.plans import JobPlan

JOB_ID_PATTERN = r"^[A-Za-z0-9._:-]+$"
JOB_NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]*$"
# Param.choices of the enqueue route's name: the document lists the jobs this worker enqueues.
ENQUEUEABLE = "enqueueable_jobs"


def parameter_choices(plans: list[JobPlan]) -> dict[str, list[str]]:
    """The run-time values of this area's parameters, for the OpenAPI document."""
    return {ENQUEUEABLE: reads_jobs.enqueueable(plans)}


async def list_jobs(request: web.Request, args: dict[str, Any]) -> web.StreamResponse:
    state = state_of(request)
    limit = args["limit"]
    jobs = await reads_jobs.scheduled_jobs(state)
    queue = await reads_jobs.queue_status(state, limit)
    failed_count, failed = await reads_jobs.failed_jobs(state, limit)
    recent = await reads_jobs.recent_runs(state, limit)
    return json_response(
        JobsOverview(
            jobs=[ScheduledJob.of(job) for job in jobs],
            queue=QueueSummary(
                total=queue.total,
                running=len(queue.running),
                jobs=[QueueEntry.of(job) for job in queue.jobs],
            ),
            failed=FailedSummary(count=failed_count, jobs=[FailedEntry.of(job) for job in failed]),
            recent=[JobRun.of(run) for run in recent],
        )
    )


async def retry_job(request: web.Request, args: dict[str, Any]) -> web.StreamResponse:
    state = state_of(request)
    job_id = args["job_id"]
    new_id = await reads_jobs.retry_failed(state, job_id)
    logger.bind(job_id=job_id, retried_as=new_id).info("failed job {} retried over HTTP", job_id)
    return _accepted(request, RetriedJob(job_id=job_id, retried_as=new_id), f"retried={new_id}")


async def enqueue_job(request: web.Request, args: dict[str, Any]) -> web.StreamResponse:
    state = state_of(request)
    name = args["name"]
    job_id = await reads_jobs.enqueue(state, name)
    logger.bind(job_id=job_id, function=name).info("{} enqueued over HTTP", name)
    return _accepted(request, AcceptedJob(job_id=job_id, job=name), f"enqueued={job_id}")


def _accepted(
    request: web.Request, document: AcceptedJob | RetriedJob, note: str
) -> web.StreamResponse:
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
        responses={200: Response("Job overview", struct=JobsOverview)},
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
            202: Response("Enqueued again", struct=RetriedJob),
            303: _REDIRECT,
            404: Response("No failed job with this id"),
            409: Response(
                "The job cannot be retried: it was already retried (the message names the "
                "job it was retried as), or its payload was unreadable",
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
            replace(
                text(
                    "name",
                    "A job that takes no arguments, e.g. scrape-catalog (the enum lists this "
                    "worker's)",
                    pattern=JOB_NAME_PATTERN,
                    max_length=100,
                    location="path",
                    example="scrape-catalog",
                ),
                choices=ENQUEUEABLE,
            ),
        ),
        description=(
            "Returns the new job's id. A job that needs arguments (deliver-notification) is "
            "refused with 400: enqueue it with `vultr-scraper enqueue NAME ARGS...`." + _FORM_NOTE
        ),
        responses={
            202: Response("Enqueued", struct=AcceptedJob),
            303: _REDIRECT,
            404: Response("No job with this name"),
        },
    ),
]
