"""Failures arq handles before any job code runs are recorded too (in-process burst worker)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from arq.connections import ArqRedis
from arq.utils import timestamp_ms

from vultr_scraper_core.config import LoadedConfig, load_config
from vultr_scraper_worker.enqueue import enqueue_job
from vultr_scraper_worker.plans import JobSet, Schedule, load_job_set
from vultr_scraper_worker.project_worker import ProjectWorker
from vultr_scraper_worker.records.failed import FailedJobs
from vultr_scraper_worker.records.queue import queue_snapshot
from vultr_scraper_worker.records.runs import JobHistory
from vultr_scraper_worker.worker_main import build_worker, serve


def _loaded(redis_url: str, tmp_path: Path) -> LoadedConfig:
    return load_config(
        None,
        environ={
            "VULTR_SCRAPER__REDIS__URL": redis_url,
            "VULTR_SCRAPER__PATHS__STATE_DIR": str(tmp_path),
            "VULTR_SCRAPER__HTTP__LISTEN": "",
            "VULTR_SCRAPER__WORKER__POLL_DELAY": "0.01",
        },
    )


async def test_unknown_function_and_exhausted_tries_are_recorded(
    queue: ArqRedis, redis_url: str, tmp_path: Path
) -> None:
    assert await enqueue_job(queue, "no-such-job", 1, job_id="unknown") == "unknown"
    assert await enqueue_job(queue, "noop", "t:exhausted", job_id="exhausted") == "exhausted"
    await queue.set("arq:retry:exhausted", 3)  # three tries already used up by crashes
    served = await enqueue_job(queue, "noop", "t:fine")
    snapshot = await queue_snapshot(queue, "arq:queue")
    assert sorted(job.function for job in snapshot.queued) == ["no-such-job", "noop", "noop"]

    status = await serve(
        _loaded(redis_url, tmp_path),
        jobs=load_job_set("tests.worker.sample_quiet"),
        burst=True,
        handle_signals=False,
    )

    assert status == 0
    failed = FailedJobs(queue, "vs")
    unknown = await failed.get("unknown")
    assert unknown is not None
    assert (unknown.function, unknown.args, unknown.retryable) == ("no-such-job", [1], True)
    assert "function 'no-such-job' not found" in unknown.error
    exhausted = await failed.get("exhausted")
    assert exhausted is not None
    assert exhausted.error == "max 3 retries exceeded" and exhausted.tries == 4
    assert exhausted.args == ["t:exhausted"]
    assert await queue.llen("t:exhausted:tries") == 0  # type: ignore[misc]
    assert await queue.llen("t:fine:tries") == 1  # type: ignore[misc]
    runs = {run.job_id: run.outcome for run in await JobHistory(queue, "vs").recent(limit=10)}
    assert runs == {"unknown": "failed", "exhausted": "failed", served: "success"}
    assert await queue.zcard("arq:queue") == 0
    assert await queue.zcard("vs:workers") == 0  # the heartbeat is removed on a clean exit


async def test_one_lua_call_claims_due_free_jobs_once(
    queue: ArqRedis, redis_url: str, tmp_path: Path
) -> None:
    loaded = _loaded(redis_url, tmp_path)
    jobs = load_job_set("tests.worker.sample_quiet")
    first, _ = build_worker(loaded, queue, jobs=jobs, handle_signals=False, worker_id="a")
    second, _ = build_worker(loaded, queue, jobs=jobs, handle_signals=False, worker_id="b")
    ids = [str(await enqueue_job(queue, "noop", job_id=f"j{index}")) for index in range(5)]
    await enqueue_job(queue, "noop", job_id="later", defer_by=600)
    await queue.set("arq:in-progress:j1", b"1")  # running elsewhere
    candidates = [*ids, "later"]

    async def claim(worker: ProjectWorker, room: int) -> list[str]:
        # No per-function leases: every job gets the default one (30 s).
        args: list[str | int] = [timestamp_ms(), 30_000, room, 0, *candidates]
        reply = await worker._claim(keys=["arq:queue"], args=args)
        return [item.decode() for item in reply[::2]]

    assert await claim(first, 2) == ["j0", "j2"]  # in order, skipping the running one
    assert await claim(second, 10) == ["j3", "j4"]  # never a claimed, running or deferred job
    assert await claim(first, 10) == []
    assert 0 < await queue.pttl("arq:in-progress:j3") <= 30_000


async def test_the_startup_line_describes_schedules_for_people(
    queue: ArqRedis, redis_url: str, tmp_path: Path, log_records: list[dict[str, Any]]
) -> None:
    quiet = load_job_set("tests.worker.sample_quiet")
    assert quiet is not None
    later = (datetime.now(UTC).hour + 12) % 24  # never due during this short burst run
    every_minute = Schedule(enabled=True, minute=frozenset(range(60)), hour=frozenset({later}))
    jobs = JobSet(quiet.specs, {**quiet.schedules, "noop": every_minute})

    status = await serve(_loaded(redis_url, tmp_path), jobs=jobs, burst=True, handle_signals=False)

    assert status == 0
    start = next(record for record in log_records if "starting with" in record["message"])
    assert start["schedules"]["noop"] == f"every minute in hours {later:02d} UTC"
    assert start["schedules"]["slow"] == "on demand"
    assert "0,1,2" not in str(start["schedules"])
