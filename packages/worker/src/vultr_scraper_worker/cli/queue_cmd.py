"""``vultr-scraper worker``, ``enqueue``, ``jobs``, ``retry`` and ``check``."""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import click

from vultr_scraper_worker.cli.common import (
    State,
    fail,
    fail_on_redis,
    json_option,
    print_json,
    print_table,
    with_redis,
)
from vultr_scraper_worker.exit_status import ExitStatus

if TYPE_CHECKING:
    from arq.connections import ArqRedis
    from redis.asyncio import Redis

    from vultr_scraper_core.config import LoadedConfig
    from vultr_scraper_worker.plans import JobPlan
    from vultr_scraper_worker.records.heartbeats import Heartbeat

T = TypeVar("T")

jobs_module_option = click.option(
    "--jobs-module",
    hidden=True,
    help="Serve the jobs of this module (JOBS, SCHEDULES) instead of the registry's (tests).",
)


def register(group: click.Group) -> None:
    for command in (worker, enqueue, jobs, retry, check):
        group.add_command(command)


def parse_arg(text: str) -> Any:
    """A job argument from the command line: a JSON value if it parses, else the text."""
    import msgspec

    try:
        return msgspec.json.decode(text)
    except msgspec.DecodeError:
        return text


def check_arguments(plan: JobPlan, values: Sequence[Any]) -> None:
    """Exit 2 when JOB's function cannot take ``values`` (it would only fail in the worker)."""
    import inspect

    try:
        signature = inspect.signature(plan.spec.function)
    except (TypeError, ValueError):
        return
    try:
        signature.bind({}, *values)
    except TypeError:
        parameters = list(signature.parameters.values())[1:]
        wanted = " ".join(
            parameter.name.upper()
            if parameter.default is inspect.Parameter.empty
            else f"[{parameter.name.upper()}]"
            for parameter in parameters
            if parameter.kind not in (inspect.Parameter.VAR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
        )
        fail(
            f"job {plan.name!r} takes {wanted or 'no arguments'}, got {len(values)} argument(s)",
            ExitStatus.USAGE,
        )


def _plans(loaded: LoadedConfig, jobs_module: str | None) -> list[JobPlan]:
    from vultr_scraper_worker.plans import load_job_set, plan_jobs

    return plan_jobs(loaded.config, load_job_set(jobs_module))


def _with_queue(loaded: LoadedConfig, action: Callable[[ArqRedis], Awaitable[T]]) -> T:
    """Run ``action`` against the queue; Redis being unreachable exits with status 69."""
    import asyncio

    from redis.exceptions import RedisError

    from vultr_scraper_core.embedded_redis import EmbeddedRedisError
    from vultr_scraper_worker.enqueue import open_queue
    from vultr_scraper_worker.runtime import CLI_OUTAGE_BUDGET

    async def main() -> T:
        async with open_queue(loaded, outage_budget=CLI_OUTAGE_BUDGET) as queue:
            return await action(queue)

    try:
        return asyncio.run(main())
    except (RedisError, OSError, EmbeddedRedisError) as error:
        fail_on_redis(error)


@click.command("worker", short_help="Run the worker (cron, queue, HTTP) until SIGTERM.")
@click.option("--burst", is_flag=True, help="Exit once the queue is empty (for tests and batch).")
@jobs_module_option
@click.pass_obj
def worker(state: State, burst: bool, jobs_module: str | None) -> None:
    """Run the worker: scheduled jobs, the queue and retries, until SIGTERM.

    Logs are JSON lines on stdout. Exit status: 0 after SIGTERM/SIGINT (running jobs get
    worker.job_completion_wait seconds, then run again on the next worker), 69 when Redis stays
    unreachable longer than worker.redis_outage_budget, 1 on an unexpected error, 78 on a
    configuration error.
    """
    from vultr_scraper_worker.plans import load_job_set
    from vultr_scraper_worker.worker_main import run_worker

    loaded = state.loaded()
    state.setup_logging(to_stderr=False)
    sys.exit(run_worker(loaded, jobs=load_job_set(jobs_module), burst=burst))


@click.command("enqueue", short_help="Put a job on the queue for the worker.")
@click.argument("job_name", metavar="JOB")
@click.argument("args", nargs=-1, metavar="[ARG]...")
@click.option("--job-id", help="Job id (a job with this id already queued is not added twice).")
@click.option(
    "--defer",
    metavar="SECONDS",
    type=click.FloatRange(min=0),
    help="Run no earlier than this many seconds from now.",
)
@json_option
@jobs_module_option
@click.pass_obj
def enqueue(
    state: State,
    job_name: str,
    args: tuple[str, ...],
    job_id: str | None,
    defer: float | None,
    as_json: bool,
    jobs_module: str | None,
) -> None:
    """Put JOB on the queue for the worker and print its job id.

    ARGs are JSON values (plain text otherwise). Exit status: 0 queued, 1 a job with --job-id
    is already queued, running or recently done, 2 unknown job or wrong arguments, 69 Redis
    unavailable.
    """
    from vultr_scraper_worker.enqueue import enqueue_job

    loaded = state.loaded()
    plans = {plan.name: plan for plan in _plans(loaded, jobs_module)}
    if job_name not in plans:
        fail(
            f"unknown job {job_name!r}; known jobs: {', '.join(plans) or '(none)'}",
            ExitStatus.USAGE,
        )
    values = [parse_arg(arg) for arg in args]
    check_arguments(plans[job_name], values)

    async def action(queue: ArqRedis) -> str | None:
        return await enqueue_job(queue, job_name, *values, job_id=job_id, defer_by=defer)

    queued = _with_queue(loaded, action)
    if as_json:
        print_json({"job": job_name, "job_id": queued or job_id, "enqueued": queued is not None})
    elif queued is not None:
        click.echo(queued)
    if queued is None:
        fail(f"job id {job_id} is already queued, running or recently done", ExitStatus.FAILURE)


@click.command("jobs", short_help="Queued, running, failed and recent jobs; schedules.")
@click.option(
    "--limit", type=click.IntRange(min=1), default=20, show_default=True, help="Rows per section."
)
@json_option
@jobs_module_option
@click.pass_obj
def jobs(state: State, limit: int, as_json: bool, jobs_module: str | None) -> None:
    """Queued and running jobs, failed jobs with their errors, recent runs and schedules."""
    from vultr_scraper_worker.plans import describe_schedule, job_overview
    from vultr_scraper_worker.records.failed import FailedJobs
    from vultr_scraper_worker.records.queue import queue_snapshot
    from vultr_scraper_worker.records.runs import JobHistory

    loaded = state.loaded()
    config = loaded.config
    plans = _plans(loaded, jobs_module)
    prefix = config.redis.key_prefix

    async def action(queue: ArqRedis) -> dict[str, Any]:
        snapshot = await queue_snapshot(queue, config.redis.queue_name, limit=limit * 5)
        failed = FailedJobs(queue, prefix)
        return {
            "queue_total": snapshot.total,
            "queued": [job.to_dict() for job in snapshot.queued[:limit]],
            "running": [job.to_dict() for job in snapshot.running[:limit]],
            "failed_total": await failed.count(),
            "failed": [record.to_dict() for record in await failed.list(limit)],
            "recent": [
                run.to_dict() for run in await JobHistory(queue, prefix).recent(None, limit)
            ],
            "schedules": [item.to_dict() for item in await job_overview(queue, prefix, plans)],
        }

    document = _with_queue(loaded, action)
    if as_json:
        print_json(document)
        return
    readable = {plan.name: describe_schedule(plan.schedule) for plan in plans}
    for item in document["schedules"]:
        item["schedule"] = readable.get(item["name"], item["schedule"])
    _print_jobs(document)


def _print_jobs(document: dict[str, Any]) -> None:
    from vultr_scraper_core.formats import format_unix

    def section(title: str) -> None:
        click.echo(f"\n{title}")

    click.echo(f"QUEUE: {document['queue_total']} job(s), running ones included")
    section("Running")
    print_table(
        [
            {
                "id": job["id"],
                "function": job["function"],
                "try": job["tries"],
                "lease_left": _seconds(job.get("lease_expires_in")),
                "args": _args(job),
            }
            for job in document["running"]
        ],
        ["id", "function", "try", "lease_left", "args"],
    )
    section("Queued")
    print_table(
        [
            {
                "id": job["id"],
                "function": job["function"],
                "state": job["state"],
                "due": format_unix(job["due_at"]),
                "tries": job["tries"],
                "args": _args(job),
            }
            for job in document["queued"]
        ],
        ["id", "function", "state", "due", "tries", "args"],
    )
    section(f"Failed ({document['failed_total']} recorded; `vultr-scraper retry ID` re-runs one)")
    print_table(
        [
            {
                "id": record["id"],
                "function": record["function"],
                "tries": record["tries"],
                "failed_at": format_unix(record["failed_at"]),
                "retried_as": record.get("retried_as"),
                "error": _clip(f"{record['error_type']}: {record['error']}"),
            }
            for record in document["failed"]
        ],
        ["id", "function", "tries", "failed_at", "retried_as", "error"],
    )
    section("Recent runs")
    print_table(
        [
            {
                "ended": format_unix(run["end"]),
                "function": run["function"],
                "job_id": run["job_id"],
                "try": run["job_try"],
                "duration": f"{run['duration']:.2f}s",
                "outcome": run["outcome"],
                "detail": _clip(run.get("error") or _summary(run.get("summary") or {}), 60),
            }
            for run in document["recent"]
        ],
        ["ended", "function", "job_id", "try", "duration", "outcome", "detail"],
    )
    section("Jobs")
    print_table(
        [
            {
                "job": item["name"],
                "schedule": item["schedule"],
                "last_run": format_unix(item["last_run"]["end"]) if item.get("last_run") else None,
                "outcome": item["last_run"]["outcome"] if item.get("last_run") else None,
                "last_success": _shown(item.get("last_success")),
                "next_run": _shown(item.get("next_run")),
            }
            for item in document["schedules"]
        ],
        ["job", "schedule", "last_run", "outcome", "last_success", "next_run"],
    )


def _shown(value: str | None) -> str | None:
    """A time from the JSON document (RFC 3339 text) as the table shows times."""
    from datetime import datetime

    from vultr_scraper_core.formats import format_time

    return format_time(datetime.fromisoformat(value)) if value else None


def _seconds(value: float | None) -> str | None:
    return None if value is None else f"{value:.0f}s"


def _args(job: dict[str, Any]) -> str:
    import msgspec

    parts = [msgspec.json.encode(arg).decode() for arg in job.get("args") or []]
    parts += [
        f"{key}={msgspec.json.encode(value).decode()}"
        for key, value in (job.get("kwargs") or {}).items()
    ]
    return _clip(" ".join(parts), 40) or "-"


def _summary(summary: dict[str, Any]) -> str:
    """``updated=7 added=7 ...``: the result's counts (its status is the OUTCOME column)."""
    return " ".join(
        f"{key}={value}"
        for key, value in summary.items()
        if key != "status" and not (isinstance(value, str) and value.startswith("<"))
    )


def _clip(text: str, width: int = 80) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


@click.command("retry", short_help="Re-enqueue a failed job with its arguments.")
@click.argument("job_id", metavar="ID")
@json_option
@click.pass_obj
def retry(state: State, job_id: str, as_json: bool) -> None:
    """Enqueue failed job ID again with its original arguments (see `vultr-scraper jobs`).

    A failed job is retried at most once; if the new job fails too, it gets its own failed
    record to retry. Exit status: 0 enqueued (prints the new job id), 1 no such failed job, not
    retryable, or already retried (the message names the job it was retried as), 69 Redis
    unavailable.
    """
    from vultr_scraper_worker.records.failed import FailedJobs, RetryRefused

    loaded = state.loaded()
    config = loaded.config

    async def action(queue: ArqRedis) -> str:
        failed = FailedJobs(queue, config.redis.key_prefix)
        return await failed.retry(job_id, queue, queue_name=config.redis.queue_name)

    try:
        new_id = _with_queue(loaded, action)
    except RetryRefused as error:
        fail(str(error), ExitStatus.FAILURE)
    if as_json:
        print_json({"failed_job_id": job_id, "job_id": new_id})
    else:
        click.echo(new_id)


@click.command("check", short_help="Exit 0 if a worker heartbeat is fresh, else 69.")
@click.option(
    "--max-age",
    metavar="SECONDS",
    type=click.FloatRange(min=0, min_open=True),
    help="Oldest acceptable heartbeat in seconds [default: 2 x worker.health_check_interval + 5].",
)
@json_option
@click.pass_obj
def check(state: State, max_age: float | None, as_json: bool) -> None:
    """Exit 0 if a worker heartbeat is fresh, else 69 with the reason (for probes and systemd)."""
    import msgspec

    from vultr_scraper_core.config import state_dir
    from vultr_scraper_core.embedded_redis import EmbeddedRedis, answers_ping
    from vultr_scraper_core.formats import format_unix
    from vultr_scraper_worker.records.heartbeats import Heartbeats

    loaded = state.loaded()
    config = loaded.config
    limit = max_age if max_age is not None else 2 * config.worker.health_check_interval + 5

    def report(ok: bool, reason: str, workers: list[dict[str, Any]]) -> None:
        if as_json:
            print_json({"ok": ok, "reason": reason, "max_age": limit, "workers": workers})
        else:
            if ok:
                click.echo(f"OK: {reason}")
            if workers:
                rows = [
                    {**row, "age": f"{row['age']:.0f}s", "started": format_unix(row.get("started"))}
                    for row in workers
                ]
                print_table(rows, ["id", "age", "fresh", "started", "jobs_complete", "jobs_failed"])
        if not ok:
            fail(reason, ExitStatus.UNAVAILABLE)

    if not (config.redis.url or config.redis.sentinels):
        server = EmbeddedRedis(state_dir(config))
        if not answers_ping(server.socket):
            report(False, f"no worker running: the embedded Redis at {server.socket} is down", [])
            return

    async def action(redis: Redis) -> tuple[float, list[Heartbeat]]:
        return await Heartbeats(redis, config.redis.key_prefix).latest()

    now, beats = with_redis(loaded, action)
    workers: list[dict[str, Any]] = []
    for beat in beats:
        age = max(0.0, now - beat.at)
        row: dict[str, Any] = {"id": beat.worker_id, "age": round(age, 1), "fresh": age <= limit}
        row["last_heartbeat"] = format_unix(beat.at)
        if beat.info is not None:
            row.update(msgspec.to_builtins(beat.info))
            row["id"] = beat.worker_id
        workers.append(row)
    fresh = [row for row in workers if row["fresh"]]
    if fresh:
        newest = fresh[0]
        report(True, f"worker {newest['id']} heartbeat {newest['age']:.0f} s ago", workers)
    elif workers:
        report(
            False,
            f"no fresh worker heartbeat: newest is {workers[0]['age']:.0f} s old "
            f"(limit {limit:g} s)",
            workers,
        )
    else:
        report(False, "no worker heartbeat recorded in Redis", workers)
