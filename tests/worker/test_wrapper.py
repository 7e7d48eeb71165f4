"""The job wrapper: log lines, retry classification with backoff, failed records, history."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from arq.worker import Retry
from redis.asyncio import Redis

from vultr_scraper_core.http import Backoff, PermanentHttpError, TransientHttpError
from vultr_scraper_core.redis import connect
from vultr_scraper_jobs.registry import JobSpec
from vultr_scraper_worker.records.failed import FailedJobs
from vultr_scraper_worker.records.runs import JobHistory
from vultr_scraper_worker.wrapper import JobRunner, JobTimeout, run_inline

PREFIX = "t"
BACKOFF = Backoff(base=1.0, cap=8.0, max_attempts=3, retry_after_cap=60.0)


def _runner(max_tries: int = 3, *, timed_by_arq: bool = False) -> JobRunner:
    return JobRunner(
        max_tries=max_tries,
        backoff=BACKOFF,
        key_prefix=PREFIX,
        worker_id="w1",
        timed_by_arq=timed_by_arq,
    )


def _ctx(redis: Redis, job_try: int = 1, job_id: str = "job-1") -> dict[str, Any]:
    enqueued = datetime(2026, 1, 1, tzinfo=UTC)
    return {"redis": redis, "job_id": job_id, "job_try": job_try, "enqueue_time": enqueued}


def _spec(function: Callable[..., Awaitable[Any]], name: str = "sample") -> JobSpec:
    return JobSpec(name, function, "test job")


async def _ok(ctx: dict[str, Any], *args: Any) -> dict[str, Any]:
    return {"status": "success", "updated": 3, "args": list(args), "note": "x" * 500}


async def _transient(ctx: dict[str, Any], *args: Any, **kwargs: Any) -> dict[str, Any]:
    raise TransientHttpError("Service Unavailable", url="http://x/", status=503)


async def _limited(ctx: dict[str, Any]) -> dict[str, Any]:
    raise TransientHttpError("Too Many Requests", url="http://x/", status=429, retry_after=7)


async def _permanent(ctx: dict[str, Any], *args: Any) -> dict[str, Any]:
    raise PermanentHttpError("Forbidden", url="http://x/", status=403)


async def _bug(ctx: dict[str, Any]) -> dict[str, Any]:
    raise KeyError("missing")


async def _slow(ctx: dict[str, Any]) -> dict[str, Any]:
    await asyncio.sleep(5)
    return {"status": "success"}


def _ends(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [record for record in records if record.get("event") == "job.end"]


async def test_success_logs_start_and_end_and_records_the_run(
    redis: Redis, log_records: list[dict[str, Any]]
) -> None:
    result = await _runner().execute(_spec(_ok), 10, _ctx(redis), ("a",), {})
    assert result["updated"] == 3
    start = [record for record in log_records if record.get("event") == "job.start"]
    assert len(start) == 1
    assert (start[0]["job_id"], start[0]["function"], start[0]["try"]) == ("job-1", "sample", 1)
    (end,) = _ends(log_records)
    assert end["outcome"] == "success" and end["duration"] >= 0
    assert end["result"]["updated"] == 3
    history = JobHistory(redis, PREFIX)
    (run,) = await history.recent("sample")
    assert (run.outcome, run.job_try, run.worker) == ("success", 1, "w1")
    assert run.summary["args"] == "<1 items>" and len(run.summary["note"]) == 200
    assert "sample" in await history.last_success()
    assert await FailedJobs(redis, PREFIX).count() == 0


async def test_transient_error_becomes_retry_with_growing_backoff(
    redis: Redis, log_records: list[dict[str, Any]]
) -> None:
    delays = []
    for job_try in (1, 2):
        with pytest.raises(Retry) as raised:
            await _runner().execute(_spec(_transient), 10, _ctx(redis, job_try), (), {})
        assert isinstance(raised.value.__cause__, TransientHttpError)
        delays.append((raised.value.defer_score or 0) / 1000)
    # Half fixed, half jitter: try 1 waits 0.5-1 s, try 2 waits 1-2 s.
    assert 0.5 <= delays[0] <= 1.0 <= delays[1] <= 2.0
    ends = _ends(log_records)
    assert [end["outcome"] for end in ends] == ["retry", "retry"]
    assert "503" in ends[0]["error"] and ends[0]["error_type"] == "TransientHttpError"
    assert [run.outcome for run in await JobHistory(redis, PREFIX).recent("sample")] == [
        "retry",
        "retry",
    ]
    assert await FailedJobs(redis, PREFIX).count() == 0


async def test_retry_after_is_honoured(redis: Redis) -> None:
    with pytest.raises(Retry) as raised:
        await _runner().execute(_spec(_limited), 10, _ctx(redis), (), {})
    assert (raised.value.defer_score or 0) >= 7000


async def test_transient_error_on_the_last_try_fails_with_a_record(
    redis: Redis, log_records: list[dict[str, Any]]
) -> None:
    with pytest.raises(TransientHttpError):
        await _runner().execute(_spec(_transient), 10, _ctx(redis, job_try=3), ("x",), {"k": 1})
    (end,) = _ends(log_records)
    assert end["outcome"] == "failed"
    record = await FailedJobs(redis, PREFIX).get("job-1")
    assert record is not None
    assert (record.function, record.args, record.kwargs, record.tries) == ("sample", ["x"],
                                                                          {"k": 1}, 3)  # fmt: skip
    assert record.error_type == "TransientHttpError" and "503" in record.error
    assert record.enqueued_at == datetime(2026, 1, 1, tzinfo=UTC).timestamp()
    assert record.started_at is not None and record.started_at <= record.failed_at


@pytest.mark.parametrize("function", [_permanent, _bug])
async def test_permanent_errors_fail_at_once(
    redis: Redis, function: Callable[..., Awaitable[Any]]
) -> None:
    with pytest.raises((PermanentHttpError, KeyError)):
        await _runner().execute(_spec(function), 10, _ctx(redis), (), {})
    record = await FailedJobs(redis, PREFIX).get("job-1")
    assert record is not None and record.tries == 1


async def test_a_job_over_its_timeout_is_a_transient_failure(redis: Redis) -> None:
    with pytest.raises(Retry) as raised:
        await _runner().execute(_spec(_slow), 0.05, _ctx(redis), (), {})
    assert isinstance(raised.value.__cause__, JobTimeout)
    with pytest.raises(JobTimeout, match=r"timeout of 0\.05 s"):
        await _runner().execute(_spec(_slow), 0.05, _ctx(redis, job_try=3), (), {})
    record = await FailedJobs(redis, PREFIX).get("job-1")
    assert record is not None and record.error_type == "JobTimeout"


async def test_cancellation_is_logged_as_interrupted_and_propagates(
    redis: Redis, log_records: list[dict[str, Any]]
) -> None:
    task = asyncio.create_task(_runner().execute(_spec(_slow), 10, _ctx(redis), (), {}))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    (end,) = _ends(log_records)
    assert end["outcome"] == "interrupted"
    (run,) = await JobHistory(redis, PREFIX).recent("sample")
    assert run.outcome == "interrupted"
    assert await FailedJobs(redis, PREFIX).count() == 0


@pytest.mark.parametrize("stopping", [False, True])
async def test_when_arq_keeps_the_time_a_cancellation_is_its_timeout_unless_stopping(
    redis: Redis, log_records: list[dict[str, Any]], stopping: bool
) -> None:
    runner = _runner(timed_by_arq=True)
    runner.stopping = stopping
    task = asyncio.create_task(runner.execute(_spec(_slow), 0.05, _ctx(redis), (), {}))
    await asyncio.sleep(0.1)  # past the timeout: only arq's cancel ends the try
    assert not task.done()
    task.cancel()
    await asyncio.wait([task])
    (run,) = await JobHistory(redis, PREFIX).recent("sample")
    if stopping:
        assert task.cancelled()
        assert run.outcome == "interrupted"
    else:
        retry = task.exception()
        assert isinstance(retry, Retry) and isinstance(retry.__cause__, JobTimeout)
        assert (run.outcome, run.error_type) == ("retry", "JobTimeout")
    (end,) = _ends(log_records)
    assert end["outcome"] == run.outcome


async def test_when_arq_keeps_the_time_a_cancellation_turned_into_an_error_is_a_timeout(
    redis: Redis,
) -> None:
    async def cleans_up_badly(ctx: dict[str, Any]) -> dict[str, Any]:
        try:
            await asyncio.sleep(5)
        finally:
            raise RuntimeError("cleanup failed")  # what some job code does on cancellation
        return {"status": "success"}

    runner = _runner(timed_by_arq=True)
    task = asyncio.create_task(runner.execute(_spec(cleans_up_badly), 0.05, _ctx(redis), (), {}))
    await asyncio.sleep(0.05)
    task.cancel()
    await asyncio.wait([task])
    retry = task.exception()
    assert isinstance(retry, Retry) and isinstance(retry.__cause__, JobTimeout)
    (run,) = await JobHistory(redis, PREFIX).recent("sample")
    assert (run.outcome, run.error_type) == ("retry", "JobTimeout")


async def test_when_arq_keeps_the_time_a_cancelled_error_not_aimed_at_the_try_is_no_timeout(
    redis: Redis,
) -> None:
    async def awaits_a_cancelled_future(ctx: dict[str, Any]) -> dict[str, Any]:
        future = asyncio.get_running_loop().create_future()
        future.cancel()  # by someone else: this try itself was never cancelled
        await future
        return {"status": "success"}

    runner = _runner(timed_by_arq=True)
    with pytest.raises(asyncio.CancelledError):
        await runner.execute(_spec(awaits_a_cancelled_future), 60, _ctx(redis), (), {})
    (run,) = await JobHistory(redis, PREFIX).recent("sample")
    assert run.outcome == "interrupted"


async def test_records_being_written_when_arqs_deadline_passes_are_finished(
    redis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    add = FailedJobs.add

    async def slow_add(self: FailedJobs, record: Any) -> None:
        await asyncio.sleep(0.2)  # Redis being slow just as the deadline passes
        await add(self, record)

    monkeypatch.setattr(FailedJobs, "add", slow_add)

    async def reports(ctx: dict[str, Any]) -> dict[str, Any]:
        return {"status": "failed", "error": "upstream said no"}

    runner = _runner(timed_by_arq=True)
    task = asyncio.create_task(runner.execute(_spec(reports), 60, _ctx(redis), (), {}))
    await asyncio.sleep(0.05)  # the job has returned; its failed-job record is being written
    task.cancel()  # arq's timeout
    result = await task  # arq waits for the cancelled job and takes its outcome
    assert result["status"] == "failed"
    record = await FailedJobs(redis, PREFIX).get("job-1")
    assert record is not None and record.error == "upstream said no"
    (run,) = await JobHistory(redis, PREFIX).recent("sample")
    assert run.outcome == "failed"


def test_only_a_runner_timed_by_arq_wraps_jobs_for_arq() -> None:
    with pytest.raises(ValueError, match="timed_by_arq"):
        _runner().wrap(_spec(_ok), 10)


async def test_status_failed_is_a_failure_without_an_exception(redis: Redis) -> None:
    async def reports(ctx: dict[str, Any]) -> dict[str, Any]:
        return {"status": "failed", "error": "upstream said no"}

    result = await _runner().execute(_spec(reports), 10, _ctx(redis), (), {})
    assert result["status"] == "failed"
    record = await FailedJobs(redis, PREFIX).get("job-1")
    assert record is not None and record.error == "upstream said no"
    assert "sample" not in await JobHistory(redis, PREFIX).last_success()


async def test_quarantined_is_recorded_but_not_a_success(redis: Redis) -> None:
    async def quarantined(ctx: dict[str, Any]) -> dict[str, Any]:
        return {"status": "quarantined"}

    await _runner().execute(_spec(quarantined), 10, _ctx(redis), (), {})
    history = JobHistory(redis, PREFIX)
    assert (await history.last_runs())["sample"].outcome == "quarantined"
    assert await history.last_success() == {}
    assert await FailedJobs(redis, PREFIX).count() == 0


async def test_bookkeeping_failures_never_change_the_outcome(
    log_records: list[dict[str, Any]],
) -> None:
    dead = connect("redis://127.0.0.1:9/0", outage_budget=0)  # nothing listens on port 9
    try:
        result = await _runner().execute(_spec(_ok), 10, _ctx(dead), (), {})
        assert result["status"] == "success"
        with pytest.raises(PermanentHttpError):
            await _runner().execute(_spec(_permanent), 10, _ctx(dead), (), {})
    finally:
        await dead.aclose()
    warnings = [record["message"] for record in log_records if record["level"] == "WARNING"]
    assert "could not write the job history" in warnings
    assert "could not write the failed-job record" in warnings


async def test_run_inline_retries_in_process_with_the_same_backoff(redis: Redis) -> None:
    calls: list[int] = []

    async def flaky(ctx: dict[str, Any]) -> dict[str, Any]:
        calls.append(ctx["job_try"])
        if len(calls) < 3:
            raise TransientHttpError("Bad Gateway", url="http://x/", status=502)
        return {"status": "success"}

    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    ctx = _ctx(redis, job_id="cli-1")
    result = await run_inline(_runner(), _spec(flaky), 10, ctx, sleep=sleep)
    assert result == {"status": "success"}
    assert calls == [1, 2, 3]
    assert 0.5 <= slept[0] <= 1.0 <= slept[1] <= 2.0
    runs = await JobHistory(redis, PREFIX).recent("sample")
    assert [(run.job_id, run.job_try, run.outcome) for run in runs] == [
        ("cli-1", 3, "success"),
        ("cli-1", 2, "retry"),
        ("cli-1", 1, "retry"),
    ]


async def test_run_inline_gives_up_after_max_tries(redis: Redis) -> None:
    async def sleep(seconds: float) -> None:
        return None

    with pytest.raises(TransientHttpError):
        await run_inline(_runner(), _spec(_transient), 10, _ctx(redis), sleep=sleep)
    record = await FailedJobs(redis, PREFIX).get("job-1")
    assert record is not None and record.tries == 3


def test_arq_keeps_its_failure_line_only_for_failures_not_logged_already() -> None:
    import logging

    from vultr_scraper_worker.worker_main import _LoggedFailureFilter
    from vultr_scraper_worker.wrapper import LOGGED_MARK

    def record(error: BaseException) -> logging.LogRecord:
        return logging.LogRecord(
            "arq.worker", logging.ERROR, __file__, 1, "! failed", (), (type(error), error, None)
        )

    logged, unexpected = RuntimeError("HTTP 403"), RuntimeError("a bug")
    setattr(logged, LOGGED_MARK, True)
    keep = _LoggedFailureFilter()
    assert keep.filter(record(unexpected)) is True
    assert keep.filter(record(logged)) is False
