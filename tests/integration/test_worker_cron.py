"""Two worker processes on one Redis: every cron tick runs exactly once."""

from __future__ import annotations

from collections import Counter
from itertools import pairwise
from pathlib import Path

import pytest

from tests.worker.processes import (
    SCHEDULED_JOBS,
    WorkerProcess,
    eventually,
    queue_for,
    worker_env,
    workers,
)
from tests.worker.sample_jobs import TICK_KEY

pytestmark = pytest.mark.slow
TICKS = 4


async def test_two_workers_run_each_tick_once(redis_url: str, tmp_path: Path) -> None:
    env = worker_env(redis_url, tmp_path / "state")
    first = WorkerProcess(env, tmp_path, name="first", jobs_module=SCHEDULED_JOBS)
    second = WorkerProcess(env, tmp_path, name="second", jobs_module=SCHEDULED_JOBS)
    async with queue_for(redis_url) as queue:
        with workers(first, second):
            await first.wait_ready()
            await second.wait_ready()
            # Only ticks scheduled after both workers were polling count.
            seconds, _ = await queue.time()
            both_ready_ms = seconds * 1000

            async def ticks() -> list[str]:
                raw = await queue.lrange(TICK_KEY, 0, -1)  # type: ignore[misc]
                return [item.decode() for item in raw]

            def counted(ids: list[str]) -> list[str]:
                return [job_id for job_id in ids if int(job_id.split(":")[1]) > both_ready_ms]

            async def enough() -> bool:
                return len(set(counted(await ticks()))) >= TICKS

            await eventually(enough, message=lambda: first.output() + second.output())
            await eventually(lambda: _settled(first, second), message="workers idle")

        ids = await ticks()
    assert all(job_id.startswith("tick:") for job_id in ids)
    duplicates = {job_id: count for job_id, count in Counter(ids).items() if count > 1}
    assert duplicates == {}
    window = sorted(int(job_id.split(":")[1]) for job_id in counted(ids))
    assert len(window) >= TICKS
    # Consecutive ticks, 2 s apart: none skipped, none doubled.
    assert [later - earlier for earlier, later in pairwise(window)] == [2000] * (len(window) - 1)
    # Each run appears in exactly one worker's log.
    ran_by_first = {line["job_id"] for line in first.events("job.end", function="tick")}
    ran_by_second = {line["job_id"] for line in second.events("job.end", function="tick")}
    assert ran_by_first.isdisjoint(ran_by_second)
    assert ran_by_first | ran_by_second == set(ids)


async def _settled(*processes: WorkerProcess) -> bool:
    """No job of any process has started without ending."""
    for process in processes:
        starts = {(line["job_id"], line["try"]) for line in process.events("job.start")}
        ends = {(line["job_id"], line["try"]) for line in process.events("job.end")}
        if starts - ends:
            return False
    return True
