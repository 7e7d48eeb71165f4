"""Jobs that fail before any of their code runs, as failed-job and run records.

arq fails some jobs on its own, without calling the job: a payload that is not msgpack (a
pickle planted in Redis), an unknown function, an expired job, tries used up by crashes or
shutdowns. It then stores a result (``{"t": try, "f": function, "a": args, "k": kwargs,
"et": enqueued ms, "st": started ms, "r": error}``) and calls no hook, so the wrapper never sees
them. ``ProjectWorker.finish_failed_job`` hands that result here to record them like any other
failure.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from vultr_scraper_worker.records.failed import FailedJob
from vultr_scraper_worker.records.queue import CRON_PREFIX
from vultr_scraper_worker.records.runs import RunRecord
from vultr_scraper_worker.serialization import describe_payload

_REFUSED = frozenset({"DeserializationError", "RefusedPayload"})


def early_failure(
    job_id: str,
    result: Mapping[str, Any],
    payload: bytes | None,
    *,
    worker_id: str,
    now: float,
) -> tuple[FailedJob, RunRecord]:
    """The records of job ``job_id`` that arq failed with ``result`` (its decoded result, empty
    when unreadable); ``payload`` is the job's raw payload, described when it was refused."""
    error_value = result.get("r")
    if isinstance(error_value, dict):
        error, error_type = str(error_value.get("error")), str(error_value.get("error_type"))
    else:
        error, error_type = str(error_value or ""), "JobFailed"
    function = str(result.get("f") or "<unknown>").removeprefix(CRON_PREFIX)
    retryable = True
    if error_type in _REFUSED:
        error = f"job payload refused, not msgpack ({describe_payload(payload)}); never executed"
        error_type = "RefusedPayload"
        retryable = False
    elif function == "<unknown>":
        retryable = False
    job_try = int(result.get("t") or 1)
    started = float(result.get("st") or now * 1000) / 1000
    enqueued = result.get("et")
    failed = FailedJob(
        id=job_id,
        function=function,
        args=list(result.get("a") or []),
        kwargs=dict(result.get("k") or {}),
        error=error or error_type,
        error_type=error_type,
        tries=job_try,
        enqueued_at=float(enqueued) / 1000 if enqueued else None,
        started_at=started,
        failed_at=now,
        worker=worker_id,
        retryable=retryable,
    )
    run = RunRecord(
        function=function,
        job_id=job_id,
        job_try=job_try,
        start=started,
        end=now,
        duration=0.0,
        outcome="failed",
        error=failed.error,
        error_type=error_type,
        worker=worker_id,
    )
    return failed, run
