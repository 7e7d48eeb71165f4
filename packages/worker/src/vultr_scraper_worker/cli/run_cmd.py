"""``vultr-scraper run JOB``: run one job in this process now and print its result."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import click

from vultr_scraper_jobs.registry import all_jobs, get_job
from vultr_scraper_worker.cli.common import EX_FAILURE, State, fail, print_json
from vultr_scraper_worker.runtime import job_context, open_redis

EX_QUARANTINED = 3


@click.command("run")
@click.argument("job_name", metavar="JOB")
@click.pass_obj
def run(state: State, job_name: str) -> None:
    """Run JOB once in this process, the same code the worker runs, and print its result as JSON.

    Exit status: 0 success, 3 quarantined (data held back, see `changes`), 1 failed.
    """
    try:
        spec = get_job(job_name)
    except KeyError as error:
        fail(str(error.args[0]), 2)
    state.setup_logging()
    loaded = state.loaded()

    async def main() -> dict[str, Any]:
        async with open_redis(loaded) as redis, job_context(loaded, redis) as ctx:
            ctx.update({"job_id": f"cli-{uuid.uuid4().hex[:12]}", "job_try": 1})
            return await spec.function(ctx)

    try:
        result = asyncio.run(main())
    except Exception as error:
        fail(f"{job_name} failed: {error}", EX_FAILURE)
    print_json(result)
    status = result.get("status")
    if status == "quarantined":
        raise SystemExit(EX_QUARANTINED)
    if status != "success":
        raise SystemExit(EX_FAILURE)


def job_names() -> list[str]:
    return sorted(all_jobs())
