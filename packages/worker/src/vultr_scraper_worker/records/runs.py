"""Job run history in Redis, for ``vultr-scraper jobs``, the status page and metrics.

arq keeps results only for ``keep_result`` seconds and lists them with ``KEYS``. The project
records every run itself instead, in a handful of small keys under ``redis.key_prefix``:

* ``<prefix>:jobs:runs:<job>``: a list of the latest runs of one job, newest first, bounded;
* ``<prefix>:jobs:last``: a hash job -> its latest run (any outcome);
* ``<prefix>:jobs:last-success``: a hash job -> Unix time of its latest successful end.

A run is one try: a job that is retried twice and then succeeds leaves three records (``retry``,
``retry``, ``success``). Outcomes: ``success``, ``quarantined``, ``failed``, ``retry``,
``interrupted`` (cancelled by a shutdown; it runs again on the next worker), ``aborted``
(cancelled on request through arq's abort, e.g. the job page's; not retried).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import msgspec
from loguru import logger
from redis.asyncio import Redis

from vultr_scraper_core.store.codec import text
from vultr_scraper_core.text import mask_urls
from vultr_scraper_worker.records.stats import add_runs

OUTCOMES = ("success", "quarantined", "failed", "retry", "interrupted", "aborted")
RUNS_PER_JOB = 100
_SUMMARY_KEYS = 20
_SUMMARY_TEXT = 200


class RunRecord(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One try of one job."""

    function: str  # the public job name, e.g. "scrape-catalog"
    job_id: str
    job_try: int
    start: float  # Unix time
    end: float
    duration: float  # seconds, monotonic clock
    outcome: str
    error: str | None = None
    error_type: str | None = None
    retry_in: float | None = None  # seconds until the next try, for outcome "retry"
    summary: dict[str, Any] = msgspec.field(default_factory=dict)
    worker: str | None = None

    def to_dict(self) -> dict[str, Any]:
        document: dict[str, Any] = msgspec.to_builtins(self)
        return document


_encode = msgspec.msgpack.Encoder().encode
_run_decoder = msgspec.msgpack.Decoder(RunRecord)


def _decode_run(raw: bytes) -> RunRecord:
    """A run as every reader shows it: with the passwords of the URLs its error quotes masked,
    also in runs recorded before errors were masked when stored."""
    run = _run_decoder.decode(raw)
    if run.error is None:
        return run
    error = mask_urls(run.error)
    return run if error == run.error else msgspec.structs.replace(run, error=error)


def summarise(result: Any) -> dict[str, Any]:
    """The scalar fields of a job result (``status``, counts, ...), small enough to keep."""
    if type(result) is not dict and not isinstance(result, Mapping):
        return {"value": _short(result)}
    summary: dict[str, Any] = {}
    for key, value in result.items():
        if len(summary) >= _SUMMARY_KEYS:
            break
        name = key if type(key) is str else str(key)
        kind = type(value)  # exact types first, as in ``logs``: far cheaper than the unions
        if kind is int or kind is float or kind is bool or value is None:
            summary[name] = value
        elif kind is str:
            summary[name] = _short(value)
        elif isinstance(value, bool | int | float):
            summary[name] = value
        elif isinstance(value, str):
            summary[name] = _short(value)
        elif isinstance(value, list | tuple | dict | set):
            summary[name] = f"<{len(value)} items>"
    return summary


def _short(value: Any) -> str:
    shown = str(value)
    return shown if len(shown) <= _SUMMARY_TEXT else shown[: _SUMMARY_TEXT - 1] + "…"


class HistoryKeys:
    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.last = f"{prefix}:jobs:last"
        self.last_success = f"{prefix}:jobs:last-success"

    def runs(self, function: str) -> str:
        return f"{self.prefix}:jobs:runs:{function}"


def _decode_runs(raw: Iterable[bytes | None]) -> list[RunRecord]:
    records: list[RunRecord] = []
    for item in raw:
        if item is None:
            continue
        try:
            records.append(_decode_run(item))
        except msgspec.DecodeError:
            continue  # written by a different version; skip rather than fail the listing
    return records


class JobHistory:
    """Read and write run records. ``redis`` is any ``redis.asyncio.Redis`` (bytes replies)."""

    def __init__(self, redis: Redis, prefix: str, *, keep: int = RUNS_PER_JOB) -> None:
        self.redis = redis
        self.keys = HistoryKeys(prefix)
        self.keep = keep

    async def record(self, run: RunRecord) -> None:
        await self.record_many([run])

    async def record_many(self, runs: Sequence[RunRecord]) -> None:
        """One round trip, no transaction, a few commands per job whatever the number of runs.

        ``runs`` are in the order they ended; each job's list gets them newest first.
        """
        if not runs:
            return
        by_function: dict[str, list[RunRecord]] = {}
        for run in runs:
            by_function.setdefault(run.function, []).append(run)
        async with self.redis.pipeline(transaction=False) as pipe:
            for function, items in by_function.items():
                encoded = [_encode(run) for run in items]
                runs_key = self.keys.runs(function)
                pipe.lpush(runs_key, *encoded)
                pipe.ltrim(runs_key, 0, self.keep - 1)
                pipe.hset(self.keys.last, function, encoded[-1])  # type: ignore[arg-type]
                ends = [run.end for run in items if run.outcome == "success"]
                if ends:
                    pipe.hset(self.keys.last_success, function, repr(max(ends)))
            # Cumulative counters for /metrics (the lists are bounded, counters grow).
            add_runs(
                pipe, self.keys.prefix, [(run.function, run.outcome, run.duration) for run in runs]
            )
            await pipe.execute()

    async def recent(self, function: str | None = None, limit: int = 20) -> list[RunRecord]:
        """The latest runs of one job, or of every job merged, newest first."""
        if limit <= 0:
            return []
        functions = [function] if function else await self.functions()
        if not functions:
            return []
        async with self.redis.pipeline(transaction=False) as pipe:
            for name in functions:
                pipe.lrange(self.keys.runs(name), 0, limit - 1)
            replies = await pipe.execute()
        records = [record for reply in replies for record in _decode_runs(reply)]
        records.sort(key=lambda record: (record.end, record.start), reverse=True)
        return records[:limit]

    async def functions(self) -> list[str]:
        """Every job that has run at least once."""
        names = await self.redis.hkeys(self.keys.last)  # type: ignore[misc]
        return sorted(text(name) for name in names)

    async def last_runs(self) -> dict[str, RunRecord]:
        """Job name -> its latest run (any outcome)."""
        raw = await self.redis.hgetall(self.keys.last)  # type: ignore[misc]
        result: dict[str, RunRecord] = {}
        for name, value in sorted(raw.items()):
            decoded = _decode_runs([value])
            if decoded:
                result[text(name)] = decoded[0]
        return result

    async def last_success(self) -> dict[str, float]:
        """Job name -> Unix time its latest successful run ended."""
        raw = await self.redis.hgetall(self.keys.last_success)  # type: ignore[misc]
        return {text(name): float(value) for name, value in raw.items()}


class HistoryBuffer:
    """Run records written in batches, one pipeline per ``interval``, off the jobs' path.

    The worker uses it so that recording a run costs no Redis round trip of its own: records
    of the tries that end within ``interval`` share one pipeline. A crash loses at most the
    last ``interval`` of history (never a job's own data or a failed-job record, which are
    written synchronously). ``close`` writes what is pending.
    """

    def __init__(self, redis: Redis, prefix: str, *, interval: float = 0.05) -> None:
        self.history = JobHistory(redis, prefix)
        self.interval = interval
        self._pending: list[RunRecord] = []
        self._task: asyncio.Task[None] | None = None

    def add(self, run: RunRecord) -> None:
        self._pending.append(run)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._flush_later())

    async def _flush_later(self) -> None:
        await asyncio.sleep(self.interval)
        await self.flush()

    async def flush(self) -> None:
        batch, self._pending = self._pending, []
        if not batch:
            return
        try:
            await self.history.record_many(batch)
        except Exception as error:  # history is best effort; never break the worker for it
            logger.bind(error=str(error), records=len(batch)).warning(
                "could not write the job history"
            )

    async def close(self, timeout: float = 5.0) -> None:
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        try:
            async with asyncio.timeout(timeout):
                await self.flush()
        except TimeoutError:
            logger.warning("job history not written: Redis did not answer in time")
