"""The one wrapper around every job function, in the worker and in ``vultr-scraper run``.

For each try it logs a start line and an end line (job id, function, try, duration, outcome,
error), turns a try that outlives the job's timeout into a transient ``JobTimeout``, and
classifies errors once:

* transient (``vultr_scraper_core.http.is_transient``: connection errors, timeouts, 429, 5xx),
  with tries left: ``arq.Retry(defer=...)`` using capped exponential backoff with jitter
  (``worker.retry_backoff_base`` / ``retry_backoff_cap``), at least the server's ``Retry-After``;
* anything else, or the last try: the job fails now, and a failed-job record is written.

Every try is recorded in the job history. Recording never raises: a Redis hiccup while writing
history is logged and the job's own outcome stands.

Who keeps the time: in the worker (a runner built with ``timed_by_arq``), arq does: its
``wait_for`` around every job, with the job's own timeout, so a try carries one timer, not two.
arq cancels a running job at its timeout, when the worker shuts down, or when it is aborted
(arq's ``Job.abort``, e.g. from the job page). The worker sets ``JobRunner.stopping`` before any
job sees a shutdown, and arq lists an aborted job in ``aborting_tasks`` (``JobRunner.aborting``)
before it resumes: an aborted try is recorded as ``aborted`` and passed on to arq as the
CancelledError that finishes it without a retry. Any other try whose task was cancelled while
not stopping has run out of time, whatever the job's code made of the cancellation. The try's
own records are still written when the deadline passes while they are being written; arq waits
for the cancelled job and takes what it returns or raises. ``vultr-scraper run`` has no arq:
there ``execute`` sets the deadline itself.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Collection, Mapping
from datetime import datetime
from typing import Any

from arq.worker import Retry
from loguru import logger
from redis.asyncio import Redis

from vultr_scraper_core.config import Config
from vultr_scraper_core.http import Backoff, is_transient, retry_after_of
from vultr_scraper_core.logs import log_line
from vultr_scraper_core.redis_faults import is_redis_fault, redis_cause
from vultr_scraper_core.text import mask_urls
from vultr_scraper_jobs.registry import JobSpec
from vultr_scraper_worker.records.failed import FailedJob, FailedJobs
from vultr_scraper_worker.records.runs import HistoryBuffer, JobHistory, RunRecord, summarise

_ERROR_TEXT = 500
_RECORD_TIMEOUT = 5.0  # seconds a best-effort write may take while the job is being cancelled
_STATUSES = ("success", "quarantined", "failed")
# Set on an error whose failed try this wrapper has logged at ERROR already, so the worker can
# drop arq's own copy of the failure (a second ERROR line, with a traceback).
LOGGED_MARK = "_vultr_scraper_failure_logged"


def already_logged(error: BaseException | None) -> bool:
    return bool(getattr(error, LOGGED_MARK, False))


JobCoroutine = Callable[..., Awaitable[Any]]


class JobTimeout(TimeoutError):
    """The job ran longer than its configured timeout (a transient failure)."""


class JobTry:
    """One try of one job: what ran, with which arguments, which try it is and since when.

    Built once when the try starts; every log line, run record and failed-job record about the
    try is made from it, so the helpers below take the try instead of its nine values.
    """

    __slots__ = ("args", "clock", "ctx", "fields", "job_id", "kwargs", "number", "spec", "started")

    def __init__(
        self,
        spec: JobSpec,
        ctx: dict[Any, Any],
        args: tuple[Any, ...] | list[Any],
        kwargs: Mapping[str, Any],
    ) -> None:
        self.spec = spec
        self.ctx = ctx
        self.args = args
        self.kwargs = kwargs
        self.job_id = str(ctx.get("job_id", ""))
        self.number = int(ctx.get("job_try", 1))
        # The fields every line about this try carries, first.
        self.fields: dict[str, Any] = {
            "job_id": self.job_id,
            "function": spec.name,
            "try": self.number,
        }
        self.started = time.time()
        self.clock = time.perf_counter()

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def redis(self) -> Redis:
        redis: Redis = self.ctx["redis"]
        return redis

    def log(self, level: str, message: str, **fields: Any) -> None:
        """A line about this try: its fields first, then this line's. Through ``log_line``: on
        no-op jobs a loguru record per line was most of the per-job overhead."""
        log_line(__name__, level, message, {**self.fields, **fields})

    def run(
        self,
        outcome: str,
        worker: str | None,
        *,
        error: BaseException | None = None,
        summary: dict[str, Any] | None = None,
    ) -> RunRecord:
        """The run record of this try, ending now."""
        return RunRecord(
            function=self.spec.name,
            job_id=self.job_id,
            job_try=self.number,
            start=self.started,
            end=time.time(),
            duration=round(time.perf_counter() - self.clock, 4),
            outcome=outcome,
            error=_describe(error) if error is not None else None,
            error_type=type(error).__name__ if error is not None else None,
            summary=summary or {},
            worker=worker,
        )

    def failed(self, run: RunRecord, error: str, error_type: str) -> FailedJob:
        """The failed-job record of this try, which ended as ``run``."""
        enqueued = self.ctx.get("enqueue_time")
        return FailedJob(
            id=self.job_id,
            function=self.spec.name,
            args=list(self.args),
            kwargs=dict(self.kwargs),
            error=error,
            error_type=error_type,
            tries=self.number,
            enqueued_at=enqueued.timestamp() if isinstance(enqueued, datetime) else None,
            started_at=run.start,
            failed_at=run.end,
            worker=run.worker,
        )


class JobRunner:
    """Runs one try of a job with logging, retry classification and records."""

    def __init__(
        self,
        *,
        max_tries: int,
        backoff: Backoff,
        key_prefix: str,
        worker_id: str | None = None,
        buffer: HistoryBuffer | None = None,
        timed_by_arq: bool = False,
    ) -> None:
        self.max_tries = max_tries
        self.backoff = backoff
        self.key_prefix = key_prefix
        self.worker_id = worker_id
        # The worker batches run records (one pipeline per 50 ms); without a buffer every
        # record is written before the try returns (``run``, tests).
        self.buffer = buffer
        self.timed_by_arq = timed_by_arq
        # Set by the worker when it cancels running jobs to stop; see the module docstring.
        self.stopping = False
        # The ids of the jobs arq is aborting (the worker's own ``aborting_tasks``, filled
        # before a cancelled job resumes): their cancellation is an abort, not a timeout.
        self.aborting: Collection[str] = frozenset()

    @classmethod
    def from_config(
        cls,
        config: Config,
        *,
        worker_id: str | None = None,
        buffer: HistoryBuffer | None = None,
        timed_by_arq: bool = False,
    ) -> JobRunner:
        """The runner of ``[worker]``: its tries and backoff (``timed_by_arq`` in the worker,
        where arq keeps each job's time; not in ``vultr-scraper run``)."""
        worker = config.worker
        return cls(
            max_tries=worker.max_tries,
            backoff=Backoff(
                base=worker.retry_backoff_base,
                cap=worker.retry_backoff_cap,
                max_attempts=worker.max_tries,
                retry_after_cap=max(config.client.retry_after_cap, worker.retry_backoff_cap),
            ),
            key_prefix=config.redis.key_prefix,
            worker_id=worker_id,
            buffer=buffer,
            timed_by_arq=timed_by_arq,
        )

    def wrap(self, spec: JobSpec, timeout: float) -> JobCoroutine:
        """The coroutine function registered with arq for ``spec``, with arq's timeout set to
        the same ``timeout``: arq enforces it, the wrapper reports it."""
        if not self.timed_by_arq:
            raise ValueError("jobs registered with arq need a runner built with timed_by_arq")

        async def job(ctx: dict[Any, Any], *args: Any, **kwargs: Any) -> Any:
            return await self.execute(spec, timeout, ctx, args, kwargs)

        job.__qualname__ = job.__name__ = f"job[{spec.name}]"
        return job

    async def execute(
        self,
        spec: JobSpec,
        timeout: float,
        ctx: dict[Any, Any],
        args: tuple[Any, ...] | list[Any],
        kwargs: Mapping[str, Any],
    ) -> Any:
        """One try of ``spec``: arq cancels it at ``timeout`` (``timed_by_arq``, the worker), or
        else a deadline of its own does (``vultr-scraper run``)."""
        attempt = JobTry(spec, ctx, args, kwargs)
        attempt.log(
            "INFO",
            f"{spec.name} started (try {attempt.number}/{self.max_tries})",
            event="job.start",
            max_tries=self.max_tries,
        )
        deadline = None if self.timed_by_arq else asyncio.timeout(timeout)
        try:
            if deadline is None:
                result = await spec.function(ctx, *args, **kwargs)
            else:
                async with deadline:
                    result = await spec.function(ctx, *args, **kwargs)
        except asyncio.CancelledError:
            if attempt.job_id in self.aborting:
                await self._aborted(attempt)
                raise  # arq finishes an aborted job on its CancelledError: no retry
            if self._consume_arq_timeout():
                expired = _timeout(timeout)
                # Raising instead of CancelledError is how arq learns the outcome: its
                # wait_for hands on what the cancelled job raised (Retry, or the error).
                await self._failed_try(attempt, expired)
                raise expired from None
            run = attempt.run("interrupted", self.worker_id)
            attempt.log(
                "WARNING",
                f"{spec.name} interrupted by shutdown; it runs again on the next worker",
                event="job.end",
                outcome="interrupted",
                duration=run.duration,
            )
            await self._record_run(attempt, run)
            raise
        except Exception as caught:
            if attempt.job_id in self.aborting:  # the job's code turned the abort into this
                await self._aborted(attempt)
                raise asyncio.CancelledError from caught
            error: BaseException = caught
            if deadline is not None:
                timed_out = deadline.expired()
            else:  # also when the job's code turned arq's cancellation into another error
                timed_out = self._consume_arq_timeout()
            if timed_out:
                error = _timeout(timeout)
            await self._failed_try(attempt, error)
            if error is caught:
                raise
            raise error from caught
        return await self._finished(attempt, result)

    async def _aborted(self, attempt: JobTry) -> None:
        run = attempt.run("aborted", self.worker_id)
        attempt.log(
            "WARNING",
            f"{attempt.name} aborted on request; it is not retried",
            event="job.end",
            outcome="aborted",
            duration=run.duration,
        )
        await self._record_run(attempt, run)

    async def _finished(self, attempt: JobTry, result: Any) -> Any:
        # ``type(...) is dict`` first: most jobs return a plain dict, and that check is a
        # fraction of an ``isinstance`` against the ``Mapping`` ABC.
        is_mapping = type(result) is dict or isinstance(result, Mapping)
        status = result.get("status") if is_mapping else None
        outcome = status if status in _STATUSES else "success"
        run = attempt.run(outcome, self.worker_id, summary=summarise(result))
        end = {"event": "job.end", "outcome": outcome, "duration": run.duration}
        name = attempt.name
        if outcome == "success":
            attempt.log("INFO", f"{name} succeeded", **end, result=run.summary)
        elif outcome == "quarantined":
            message = f"{name} finished with its data quarantined"
            attempt.log("WARNING", message, **end, result=run.summary)
        else:
            reason = str(result.get("error") or "the job reported status failed")
            attempt.log(
                "ERROR", f"{name} failed: {reason}", **end, result=run.summary, error=reason
            )
            run.error = reason
            await self._record_failure(attempt, run, reason, "JobReportedFailure")
        await self._record_run(attempt, run)
        return result

    async def _failed_try(self, attempt: JobTry, error: BaseException) -> None:
        """Log and record a try that raised; raises ``Retry`` when another try is due."""
        text = _describe(error)
        error_type = type(error).__name__
        if isinstance(error, Retry):  # a job asking for a retry itself keeps its own delay
            delay: float | None = (error.defer_score or 0) / 1000
        elif is_transient(error) and attempt.number < self.max_tries:
            delay = self.backoff.delay(attempt.number, retry_after_of(error))
        else:
            delay = None
        if delay is not None:
            run = attempt.run("retry", self.worker_id, error=error)
            run.retry_in = round(delay, 3)
            attempt.log(
                "WARNING",
                f"{attempt.name} failed transiently, retrying in {delay:.2f} s: {text}",
                event="job.end",
                outcome="retry",
                duration=run.duration,
                error=text,
                error_type=error_type,
                retry_in=run.retry_in,
            )
            await self._record_run(attempt, run)
            if isinstance(error, Retry):
                return
            raise Retry(defer=delay) from error
        run = attempt.run("failed", self.worker_id, error=error)
        kind = "transient, out of tries" if is_transient(error) else "permanent"
        attempt.log(
            "ERROR",
            f"{attempt.name} failed ({kind}): {text}",
            event="job.end",
            outcome="failed",
            duration=run.duration,
            error=text,
            error_type=error_type,
        )
        try:
            setattr(error, LOGGED_MARK, True)
        except AttributeError:  # an exception type without a __dict__: arq logs it too
            pass
        await self._record_failure(attempt, run, text, error_type)
        await self._record_run(attempt, run)

    async def _record_failure(
        self, attempt: JobTry, run: RunRecord, error: str, error_type: str
    ) -> None:
        failures = FailedJobs(attempt.redis, self.key_prefix)
        record = attempt.failed(run, error, error_type)
        await self._best_effort(failures.add(record), "failed-job record", {})

    def _consume_arq_timeout(self) -> bool:
        """True if arq's timeout cancelled this try (never at shutdown, never outside the
        worker); the cancellation is then answered by the caller, not passed on."""
        if not self.timed_by_arq or self.stopping:
            return False
        task = asyncio.current_task()
        if task is None or not task.cancelling():  # a CancelledError from elsewhere
            return False
        task.uncancel()
        return True

    async def _record_run(self, attempt: JobTry, run: RunRecord) -> None:
        if self.buffer is not None:
            self.buffer.add(run)
            return
        history = JobHistory(attempt.redis, self.key_prefix)
        await self._best_effort(history.record(run), "job history", attempt.fields)

    async def _best_effort(
        self, operation: Awaitable[None], what: str, fields: Mapping[str, Any]
    ) -> None:
        write = asyncio.ensure_future(asyncio.wait_for(operation, _RECORD_TIMEOUT))
        try:
            try:
                await asyncio.shield(write)
            except asyncio.CancelledError:
                if not self._consume_arq_timeout():
                    raise
                await write  # the deadline passed during the write: finish it, keep the outcome
        except Exception as error:  # never let bookkeeping change the job's outcome
            logger.bind(**fields, error=_describe(error), error_type=type(error).__name__).warning(
                f"could not write the {what}"
            )


def _timeout(timeout: float) -> JobTimeout:
    return JobTimeout(f"job exceeded its timeout of {timeout:g} s")


def _describe(error: BaseException) -> str:
    if is_redis_fault(error):  # the cause in words, never the command's payload
        return redis_cause(error)
    text = mask_urls(str(error) or type(error).__name__)  # kept in records, shown on pages
    return text if len(text) <= _ERROR_TEXT else text[: _ERROR_TEXT - 1] + "…"


async def run_inline(
    runner: JobRunner,
    spec: JobSpec,
    timeout: float,
    ctx: dict[Any, Any],
    args: tuple[Any, ...] = (),
    *,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> Any:
    """``vultr-scraper run``: the worker's code path in this process, retries included.

    ``ctx`` must hold ``job_id``; ``job_try`` counts up from 1. Transient failures wait the same
    backoff the worker would and try again, up to ``max_tries``; the last error is raised.
    """
    job_try = 1
    while True:
        ctx["job_try"] = job_try
        try:
            return await runner.execute(spec, timeout, ctx, args, {})
        except Retry as retry:
            if job_try >= runner.max_tries:
                cause = retry.__cause__
                raise cause if cause is not None else retry from None
            await sleep((retry.defer_score or 0) / 1000)
            job_try += 1
