"""``vultr-scraper run JOB``: run one job in this process now and print its result.

It goes through the worker's own wrapper (``wrapper.run_inline``): the same start and end log
lines (on stderr here), the same timeout, the same transient-error retries with the same
backoff up to ``worker.max_tries``, and the same history and failed-job records.
"""

from __future__ import annotations

from typing import Any

import click

from vultr_scraper_worker.cli.common import (
    State,
    fail,
    fail_on_redis,
    human_logs,
    log_format_option,
    one_line,
    print_json,
    quiet_option,
)
from vultr_scraper_worker.cli.queue_cmd import check_arguments, jobs_module_option, parse_arg
from vultr_scraper_worker.exit_status import ExitStatus, for_job_status


@click.command("run", short_help="Run one job now in this process and print its result.")
@click.argument("job_name", metavar="JOB")
@click.argument("args", nargs=-1, metavar="[ARG]...")
@log_format_option
@quiet_option
@jobs_module_option
@click.pass_obj
def run(
    state: State,
    job_name: str,
    args: tuple[str, ...],
    log_format: str,
    quiet: bool,
    jobs_module: str | None,
) -> None:
    """Run JOB once in this process, the same code the worker runs, and print its result as
    one JSON document on stdout.

    JOB is scrape-catalog, scrape-availability, check-health, ... (`vultr-scraper jobs` lists
    them). Progress (job start and end, retries) goes to stderr. Transient failures are retried
    here with the worker's backoff, up to worker.max_tries. ARGs are JSON values (plain text
    otherwise).

    Exit status: 0 success, 1 failed, 2 unknown job or wrong arguments, 3 quarantined (data
    held back, see `vultr-scraper quarantine`), 69 Redis unavailable, 78 configuration error.
    """
    import asyncio
    import os
    import socket
    import uuid

    from redis.exceptions import RedisError

    from vultr_scraper_core.embedded_redis import EmbeddedRedisError
    from vultr_scraper_worker.enqueue import make_enqueue, open_queue
    from vultr_scraper_worker.plans import load_job_set, plan_jobs
    from vultr_scraper_worker.runtime import CLI_OUTAGE_BUDGET, job_context
    from vultr_scraper_worker.wrapper import JobRunner, run_inline

    loaded = state.loaded()
    plans = {plan.name: plan for plan in plan_jobs(loaded.config, load_job_set(jobs_module))}
    if job_name not in plans:
        fail(
            f"unknown job {job_name!r}; known jobs: {', '.join(plans) or '(none)'}",
            ExitStatus.USAGE,
        )
    plan = plans[job_name]
    values = tuple(parse_arg(arg) for arg in args)
    check_arguments(plan, values)
    state.setup_logging(human=human_logs(log_format), level="WARNING" if quiet else None)
    runner = JobRunner.from_config(
        loaded.config, worker_id=f"cli:{socket.gethostname()}:{os.getpid()}"
    )

    async def main() -> Any:
        async with (
            # A short budget to reach Redis at all (exit 69 in about 1.5 s when it is down);
            # once connected, the job rides out outages like the worker does.
            open_queue(loaded, connect_budget=CLI_OUTAGE_BUDGET) as queue,
            job_context(loaded, queue, enqueue=make_enqueue(queue, list(plans))) as ctx,
        ):
            ctx["job_id"] = f"cli-{uuid.uuid4().hex[:12]}"
            return await run_inline(runner, plan.spec, plan.schedule.timeout, ctx, values)

    try:
        result = asyncio.run(main())
    except (RedisError, EmbeddedRedisError) as error:
        fail_on_redis(error)
    except Exception as error:
        fail(f"{job_name} failed: {one_line(str(error))}", ExitStatus.FAILURE)
    print_json(result)
    status = for_job_status(result.get("status") if isinstance(result, dict) else None)
    if status is not ExitStatus.OK:
        raise SystemExit(status)
