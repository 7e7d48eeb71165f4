"""Job history and failed-job records: bounded, readable, retryable."""

from __future__ import annotations

import asyncio

import pytest
from arq.connections import ArqRedis
from arq.constants import job_key_prefix

from vultr_scraper_worker.records.failed import AlreadyRetried, FailedJob, FailedJobs, RetryRefused
from vultr_scraper_worker.records.runs import JobHistory, RunRecord, summarise
from vultr_scraper_worker.serialization import deserialize

PREFIX = "t"


def _run(function: str, index: int, outcome: str = "success") -> RunRecord:
    return RunRecord(
        function=function,
        job_id=f"{function}-{index}",
        job_try=1,
        start=1000.0 + index,
        end=1000.5 + index,
        duration=0.5,
        outcome=outcome,
    )


def _failed(job_id: str, at: float, **fields: object) -> FailedJob:
    values: dict[str, object] = {
        "id": job_id,
        "function": "sample",
        "args": ["a", 1],
        "kwargs": {"k": True},
        "error": "boom",
        "error_type": "ValueError",
        "tries": 3,
        "failed_at": at,
    }
    values.update(fields)
    return FailedJob(**values)  # type: ignore[arg-type]


async def test_history_is_bounded_per_job_and_merges_newest_first(queue: ArqRedis) -> None:
    history = JobHistory(queue, PREFIX, keep=3)
    for index in range(5):
        await history.record(_run("a", index))
    await history.record(_run("b", 10, outcome="failed"))
    assert [run.job_id for run in await history.recent("a", limit=10)] == ["a-4", "a-3", "a-2"]
    assert [run.job_id for run in await history.recent(limit=2)] == ["b-10", "a-4"]
    assert await history.functions() == ["a", "b"]
    last = await history.last_runs()
    assert (last["a"].job_id, last["b"].outcome) == ("a-4", "failed")
    assert await history.last_success() == {"a": 1004.5}
    assert await queue.llen(f"{PREFIX}:jobs:runs:a") == 3  # type: ignore[misc]


async def test_empty_history(queue: ArqRedis) -> None:
    history = JobHistory(queue, PREFIX)
    assert await history.recent() == []
    assert await history.recent(limit=0) == []
    assert await history.last_runs() == {}
    assert await history.last_success() == {}


def test_summary_keeps_scalars_and_counts_collections() -> None:
    summary = summarise({"status": "success", "updated": 4, "plans": [1, 2], "ok": True, "x": None})
    assert summary == {"status": "success", "updated": 4, "plans": "<2 items>", "ok": True,
                       "x": None}  # fmt: skip
    assert summarise("text") == {"value": "text"}


async def test_failed_records_list_newest_first_and_stay_bounded(queue: ArqRedis) -> None:
    failed = FailedJobs(queue, PREFIX, keep=3)
    for index in range(5):
        await failed.add(_failed(f"job-{index}", 100.0 + index))
    assert await failed.count() == 3
    assert [record.id for record in await failed.list()] == ["job-4", "job-3", "job-2"]
    assert await failed.get("job-0") is None
    assert await queue.hlen(f"{PREFIX}:jobs:failed") == 3  # type: ignore[misc]
    record = await failed.get("job-4")
    assert record is not None and record.args == ["a", 1] and record.kwargs == {"k": True}


async def test_retry_enqueues_with_the_original_arguments(queue: ArqRedis) -> None:
    failed = FailedJobs(queue, PREFIX)
    await failed.add(_failed("job-1", 100.0))
    new_id = await failed.retry("job-1", queue)
    assert new_id.startswith("retry-")
    raw = await queue.get(job_key_prefix + new_id)
    assert raw is not None
    job = deserialize(raw)
    assert (job["f"], job["a"], job["k"]) == ("sample", ["a", 1], {"k": True})
    assert await queue.zscore("arq:queue", new_id) is not None
    record = await failed.get("job-1")
    assert record is not None and record.retried_as == new_id and record.retried_at is not None


async def test_retry_refusals(queue: ArqRedis) -> None:
    failed = FailedJobs(queue, PREFIX)
    with pytest.raises(RetryRefused, match="no failed job"):
        await failed.retry("nope", queue)
    await failed.add(_failed("refused", 100.0, retryable=False, function="<unknown>"))
    with pytest.raises(RetryRefused, match="cannot be retried"):
        await failed.retry("refused", queue)
    assert await queue.zcard("arq:queue") == 0


async def test_a_failed_record_is_retried_once_and_its_retry_has_its_own_record(
    queue: ArqRedis,
) -> None:
    failed = FailedJobs(queue, PREFIX)
    await failed.add(_failed("job-1", 100.0))
    new_id = await failed.retry("job-1", queue)
    with pytest.raises(AlreadyRetried, match=f"job job-1 was already retried as {new_id}") as info:
        await failed.retry("job-1", queue)
    assert info.value.retried_as == new_id
    assert await queue.zcard("arq:queue") == 1
    # The retried job failed as well: its own record can be retried (once).
    await failed.add(_failed(new_id, 200.0))
    again = await failed.retry(new_id, queue)
    assert again != new_id and await queue.zcard("arq:queue") == 2
    with pytest.raises(AlreadyRetried, match=again):
        await failed.retry(new_id, queue)


async def test_concurrent_retries_of_one_record_enqueue_one_job(queue: ArqRedis) -> None:
    failed = FailedJobs(queue, PREFIX)
    await failed.add(_failed("job-1", 100.0))
    outcomes = await asyncio.gather(
        *(failed.retry("job-1", queue) for _ in range(8)), return_exceptions=True
    )
    enqueued = [outcome for outcome in outcomes if isinstance(outcome, str)]
    refused = [outcome for outcome in outcomes if isinstance(outcome, AlreadyRetried)]
    assert len(enqueued) == 1 and len(refused) == 7
    assert {error.retried_as for error in refused} == set(enqueued)
    assert await queue.zcard("arq:queue") == 1
    record = await failed.get("job-1")
    assert record is not None and record.retried_as == enqueued[0]


async def test_a_retry_that_could_not_enqueue_leaves_the_record_retryable(
    queue: ArqRedis,
) -> None:
    class Broken(Exception):
        pass

    class BrokenQueue:
        async def enqueue_job(self, *args: object, **kwargs: object) -> None:
            raise Broken

    failed = FailedJobs(queue, PREFIX)
    await failed.add(_failed("job-1", 100.0))
    with pytest.raises(Broken):
        await failed.retry("job-1", BrokenQueue())  # type: ignore[arg-type]
    new_id = await failed.retry("job-1", queue)
    assert await queue.zscore("arq:queue", new_id) is not None
