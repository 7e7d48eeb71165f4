"""``/jobs/{id}``: one job's function, arguments, tries, outcome, error and schedule tick, with
retry (failed jobs) and abort (queued or running ones, after a confirmation page) for a
logged-in user; and ``POST /api/v1/jobs/{id}/abort``, which asks arq to abort it.

arq aborts through its ``abort`` sorted set (``Job.abort``): a job not started yet is dropped
when a worker picks it up, a running one is cancelled at the worker's next poll. The worker
runs with ``allow_abort_jobs`` for this.
"""

from __future__ import annotations

import re
import statistics
from datetime import datetime
from typing import Any, NamedTuple

from aiohttp import web
from arq.jobs import Job, SerializationError
from loguru import logger
from markupsafe import Markup

from vultr_scraper_core.formats import from_unix
from vultr_scraper_worker.api import charts, reads_jobs
from vultr_scraper_worker.api.auth import Access
from vultr_scraper_worker.api.errors import ApiError
from vultr_scraper_worker.api.params import choice, text
from vultr_scraper_worker.api.routing import Response, Route, json_response
from vultr_scraper_worker.api.state import ApiState, state_of
from vultr_scraper_worker.api.templating import HTML, page
from vultr_scraper_worker.documents.jobs import AbortRequested
from vultr_scraper_worker.records.failed import FailedJob, FailedJobs
from vultr_scraper_worker.records.queue import QueuedJob
from vultr_scraper_worker.records.runs import RUNS_PER_JOB, JobHistory, RunRecord
from vultr_scraper_worker.serialization import deserialize

JOB_ID_PATTERN = r"^[A-Za-z0-9._:-]+$"
_TICK = re.compile(r"^(?P<name>[a-z0-9][a-z0-9_-]*):(?P<ms>[0-9]{12,14})$")
ABORT_WAIT = 2.0  # seconds to wait for a running job to stop before answering


def schedule_tick(job_id: str) -> datetime | None:
    """The cron tick a scheduled job's id names (``<name>:<tick in ms>``), else None."""
    found = _TICK.match(job_id)
    return from_unix(int(found["ms"]) / 1000) if found else None


class JobFacts(NamedTuple):
    queued: QueuedJob | None
    failed: FailedJob | None
    runs: list[RunRecord]  # this job's tries, first first
    function_runs: list[RunRecord]  # the function's recent runs, newest first


async def _job_facts(state: ApiState, job_id: str) -> JobFacts:
    queue = await reads_jobs.queue_status(state, limit=1000)
    queued = next((job for job in queue.jobs if job.id == job_id), None)
    failed = await FailedJobs(state.redis, state.prefix).get(job_id)
    function = queued.function if queued else failed.function if failed else None
    if function is None and (found := _TICK.match(job_id)):
        function = found["name"]
    history = JobHistory(state.redis, state.prefix)
    function_runs = await history.recent(function, RUNS_PER_JOB) if function else []
    recent = function_runs if any(run.job_id == job_id for run in function_runs) else []
    if not recent and function is None:
        recent = await history.recent(None, RUNS_PER_JOB)
    runs = sorted((run for run in recent if run.job_id == job_id), key=lambda run: run.job_try)
    if not function_runs and runs:
        function_runs = await history.recent(runs[-1].function, RUNS_PER_JOB)
    return JobFacts(queued, failed, runs, function_runs)


def _durations_chart(function: str, function_runs: list[RunRecord]) -> Markup | None:
    """How long the function's recent tries took, oldest first: is this one unusual?"""
    durations = [run.duration for run in reversed(function_runs)]
    if len(durations) < 2:
        return None
    return charts.sparkline(
        durations,
        title=f"{function}: duration of its last {len(durations)} tries",
        desc=(
            f"{len(durations)} tries from {min(durations):.2f} to {max(durations):.2f} s, "
            f"median {statistics.median(durations):.2f} s, last {durations[-1]:.2f} s"
        ),
    )


async def job_page(request: web.Request, args: dict[str, Any]) -> web.StreamResponse:
    state = state_of(request)
    job_id = args["id"]
    queued, failed, runs, function_runs = await _job_facts(state, job_id)
    if queued is None and failed is None and not runs:
        raise ApiError(404, f"no job with id {job_id!r} in the queue, the failed jobs or the runs")
    function = queued.function if queued else failed.function if failed else runs[-1].function
    can_write = state.auth.configured and state.auth.authenticated(request)
    return page(
        request,
        "job.html",
        job_id=job_id,
        function=function,
        queued=queued,
        failed=failed,
        runs=runs,
        recent_runs=len(function_runs),
        durations=_durations_chart(function, function_runs),
        tick=schedule_tick(job_id),
        arguments=(queued.args, queued.kwargs)
        if queued
        else (failed.args, failed.kwargs)
        if failed
        else None,
        can_write=can_write,
        confirm=args["confirm"] == "abort",
        aborted=args["aborted"] == "1",
    )


async def abort_job(request: web.Request, args: dict[str, Any]) -> web.StreamResponse:
    state = state_of(request)
    job_id = args["job_id"]
    queued = (await _job_facts(state, job_id)).queued
    if queued is None:
        raise ApiError(404, f"job {job_id!r} is not queued or running")
    job = Job(
        job_id,
        state.redis,
        _queue_name=state.config.redis.queue_name,
        _deserializer=deserialize,  # msgpack, never arq's default pickle
    )
    try:
        aborted = await job.abort(timeout=ABORT_WAIT, poll_delay=0.2)
    except TimeoutError:
        aborted = False  # requested; the worker stops it at its next poll
    except SerializationError as error:
        # The msgpack serializer stores a failed job's exception as a dict, which arq's
        # result() cannot re-raise as CancelledError: read the aborted outcome from it.
        outcome = error.args[0] if error.args else None
        aborted = isinstance(outcome, dict) and outcome.get("error_type") == "CancelledError"
    logger.bind(job_id=job_id, aborted=aborted).info("abort of {} requested over HTTP", job_id)
    if request.content_type == "application/x-www-form-urlencoded" and "text/html" in (
        request.headers.get("Accept", "")
    ):
        return web.Response(status=303, headers={"Location": f"/jobs/{job_id}?aborted=1"})
    return json_response(AbortRequested(job_id=job_id, aborted=aborted), status=202)


ROUTES = [
    Route(
        "GET",
        "/jobs/{id}",
        job_page,
        operation_id="getJobPage",
        summary="One job (HTML): function, arguments, tries, outcome, tick; retry and abort",
        tag="pages",
        html=True,
        reads_token=True,
        params=(
            text(
                "id",
                "Job id",
                pattern=JOB_ID_PATTERN,
                max_length=200,
                location="path",
                example="scrape-catalog:1764300000000",
            ),
            choice("confirm", "abort: ask to confirm aborting the job", ["abort"]),
            choice("aborted", "Notice: an abort was requested", ["1"]),
        ),
        responses={
            200: Response("HTML page", media_type=HTML, schema={"type": "string"}),
            404: Response("No such job", media_type=HTML, schema={"type": "string"}),
        },
    ),
    Route(
        "POST",
        "/api/v1/jobs/{job_id}/abort",
        abort_job,
        operation_id="abortJob",
        summary="Abort a queued or running job (arq's abort)",
        tag="jobs",
        access=Access.WRITE,
        params=(
            text(
                "job_id",
                "Job id",
                pattern=JOB_ID_PATTERN,
                max_length=200,
                location="path",
                example="x:1",
            ),
        ),
        description=(
            "A job not started yet is dropped when a worker picks it up; a running one is "
            "cancelled at the worker's next poll and not retried. `aborted` is true when the "
            f"job had stopped within {ABORT_WAIT:g} s. Form posts from the job page get a 303 "
            "back to it."
        ),
        responses={
            202: Response("Abort requested", struct=AbortRequested),
            303: Response("Form post from the job page: back to it", media_type=None),
            404: Response("Not queued or running"),
        },
    ),
]
