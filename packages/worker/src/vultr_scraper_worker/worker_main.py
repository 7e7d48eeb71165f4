"""``vultr-scraper worker``: one arq worker process, its lifecycle and its exit status.

* Redis: the configured URL, or a private ``redis-server`` (append-only, unix socket, under the
  state directory) started here and stopped on exit. redis-py retries every command for
  ``worker.redis_outage_budget`` seconds, so a Redis restart is ridden out; a longer outage
  ends the process with status 69 and one clear line, for systemd to restart it.
* Shutdown: SIGTERM or SIGINT stops taking jobs, waits up to ``worker.job_completion_wait``
  for running ones, cancels the rest (they run again on the next worker) and exits 0.
* Hooks never raise into arq: ``on_startup`` builds the jobs' ``ctx`` (config, secrets, redis,
  http, enqueue) and ``on_shutdown`` closes it, both inside ``try``.
* Early failures that arq handles without calling any job code (a payload that is not msgpack,
  an unknown function, an expired job, tries used up by crashes or shutdowns) are logged and
  recorded as failed jobs too.
* Heartbeat: every ``worker.health_check_interval`` the worker writes its heartbeat
  (``records.heartbeats``); ``vultr-scraper check`` reads it.
* Claiming jobs: one Lua script per poll takes every due, free job (arq's own rule: no
  in-progress key, score due; then the key is set), instead of arq's four round trips per job.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import threading
import time
from collections.abc import Collection
from contextlib import AsyncExitStack, suppress
from signal import Signals
from typing import Any

from arq.connections import ArqRedis
from arq.constants import in_progress_key_prefix, job_key_prefix
from arq.utils import timestamp_ms
from arq.worker import Worker
from loguru import logger
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError, WatchError
from redis.exceptions import TimeoutError as RedisTimeoutError

from vultr_scraper_core import __version__
from vultr_scraper_core.config import LoadedConfig, mask_url
from vultr_scraper_core.embedded_redis import EmbeddedRedisError
from vultr_scraper_worker.api.server import HttpServerHandle, start_http_server, stop_http_server
from vultr_scraper_worker.enqueue import close_client, make_enqueue, queue_client
from vultr_scraper_worker.plans import JobPlan, JobSet, describe_schedule, next_runs, plan_jobs
from vultr_scraper_worker.records.failed import FailedJob, FailedJobs
from vultr_scraper_worker.records.heartbeats import Heartbeats, WorkerInfo, new_worker_id
from vultr_scraper_worker.records.queue import CRON_PREFIX
from vultr_scraper_worker.records.runs import HistoryBuffer, JobHistory, RunRecord
from vultr_scraper_worker.runtime import job_context, redis_url
from vultr_scraper_worker.serialization import describe_payload
from vultr_scraper_worker.settings import build_worker_settings, make_runner
from vultr_scraper_worker.wrapper import JobRunner

EX_OK = 0
EX_FAILURE = 1
EX_UNAVAILABLE = 69
REDIS_ERRORS = (RedisConnectionError, RedisTimeoutError, OSError)
_CLOSE_TIMEOUT = 10.0
# After giving up on Redis: the close above, twice, and a margin; then the process just ends.
_EXIT_WATCHDOG = 2 * _CLOSE_TIMEOUT + 5.0

# KEYS[1]: the queue. ARGV: now (ms), in-progress TTL (ms), how many to take, job ids in order.
# Returns the claimed ids with their scores, flattened.
_CLAIM_SCRIPT = f"""
local claimed = {{}}
local room = tonumber(ARGV[3])
for index = 4, #ARGV do
  if room <= 0 then break end
  local id = ARGV[index]
  local key = '{in_progress_key_prefix}' .. id
  if redis.call('EXISTS', key) == 0 then
    local score = redis.call('ZSCORE', KEYS[1], id)
    if score and tonumber(score) <= tonumber(ARGV[1]) then
      redis.call('PSETEX', key, ARGV[2], '1')
      claimed[#claimed + 1] = id
      claimed[#claimed + 1] = score
      room = room - 1
    end
  end
end
return claimed
"""


class ProjectWorker(Worker):
    """arq's ``Worker`` with the project's records, heartbeat and connection-drop handling.

    Constructed with exactly arq's keyword arguments plus ``key_prefix``, ``worker_id`` and the
    ``runner`` whose wrapped jobs it runs (told when the worker stops, see ``stop_jobs``).
    """

    def __init__(
        self, *, key_prefix: str, worker_id: str, runner: JobRunner, **settings: Any
    ) -> None:
        super().__init__(**settings)
        self.key_prefix = key_prefix
        self.worker_id = worker_id
        self.runner = runner
        self.started_at = time.time()
        self.stop_signal: Signals | None = None
        self.on_stop = self._note_stop
        self.heartbeats = Heartbeats(self.pool, key_prefix)
        self._claim = self.pool.register_script(_CLAIM_SCRIPT)

    def _note_stop(self, signum: Signals) -> None:
        """arq's ``on_stop``: called once running jobs are done or have just been cancelled.

        Both of arq's signal paths call it right after their ``cancel()`` calls, before any
        cancelled job resumes, which is in time for ``stop_jobs``.
        """
        self.stop_jobs()
        self.stop_signal = signum
        cancelled = sum(not task.done() for task in self.tasks.values())
        if cancelled:
            logger.bind(signal=signum.name, cancelled=cancelled).warning(
                f"{cancelled} running job(s) cancelled; they run again on the next worker"
            )

    def handle_sig_wait_for_completion(self, signum: Signals) -> None:
        running = sum(not task.done() for task in self.tasks.values())
        wait = float(self._job_completion_wait)
        logger.bind(signal=Signals(signum).name, running=running, wait=wait).info(
            f"stopping on {Signals(signum).name}: no new jobs; waiting up to {wait:g} s "
            f"for {running} running job(s)"
        )
        super().handle_sig_wait_for_completion(signum)

    def handle_sig(self, signum: Signals) -> None:
        logger.bind(signal=Signals(signum).name).info(f"stopping on {Signals(signum).name}")
        super().handle_sig(signum)

    def stop_jobs(self) -> None:
        """Running jobs are (about to be) cancelled to stop: the wrapper then reports a
        cancelled try as interrupted (it runs again) rather than as arq's timeout."""
        self.runner.stopping = True

    async def start_jobs(self, job_ids: list[bytes]) -> None:
        """Claim due jobs with one Lua call instead of arq's WATCH/EXISTS/ZSCORE/MULTI per job.

        Same rule as arq (a job is taken when it has no in-progress key and is due, and the key
        is then set for ``in_progress_timeout_s``), atomically, in one round trip for the whole
        poll. No WATCH also means no ``WatchError`` when the connection drops mid-claim.
        """
        free = self.max_jobs - self.job_counter
        if free <= 0 or not job_ids:
            return
        claimed = await self._claim(
            keys=[self.queue_name],
            args=[timestamp_ms(), int(self.in_progress_timeout_s * 1000), free, *job_ids],
        )
        for raw_id, score in zip(claimed[::2], claimed[1::2], strict=True):
            await self.sem.acquire()
            self.job_counter += 1
            job_id = raw_id.decode() if isinstance(raw_id, bytes) else str(raw_id)
            task = self.loop.create_task(self.run_job(job_id, int(float(score))))
            task.add_done_callback(lambda _: self._release_sem_dec_counter_on_complete())
            self.tasks[job_id] = task

    async def heart_beat(self) -> None:
        try:
            await super().heart_beat()
        except WatchError:  # a cron enqueue hit a connection drop; the other workers have it
            logger.warning("Redis connection dropped while enqueueing a scheduled job")

    async def record_health(self) -> None:
        due = (time.time() - self._last_health_check) >= self.health_check_interval
        await super().record_health()
        if due:
            await self.beat()

    async def beat(self) -> None:
        await self.heartbeats.beat(
            WorkerInfo(
                id=self.worker_id,
                host=socket.gethostname(),
                pid=os.getpid(),
                version=__version__,
                queue=self.queue_name,
                started=self.started_at,
                health_check_interval=float(self.health_check_interval),
                jobs_complete=self.jobs_complete,
                jobs_failed=self.jobs_failed,
                jobs_retried=self.jobs_retried,
                jobs_ongoing=sum(not task.done() for task in self.tasks.values()),
            )
        )

    async def forget_heartbeat(self) -> None:
        await self.heartbeats.forget(self.worker_id)

    async def finish_failed_job(self, job_id: str, result_data: bytes | None) -> None:
        """arq's path for jobs that fail before any job code runs: record them too."""
        raw: bytes | None = None
        with suppress(Exception):
            raw = await self.pool.get(job_key_prefix + job_id)
        await super().finish_failed_job(job_id, result_data)
        try:
            await self._record_early_failure(job_id, result_data, raw)
        except Exception as error:  # never raise into arq
            logger.bind(job_id=job_id, error=str(error)).warning(
                "could not record an early job failure"
            )

    async def _record_early_failure(
        self, job_id: str, result_data: bytes | None, raw: bytes | None
    ) -> None:
        data: dict[str, Any] = {}
        if result_data is not None:
            with suppress(Exception):
                data = dict(self.job_deserializer(result_data)) if self.job_deserializer else {}
        result = data.get("r")
        error = str(result.get("error")) if isinstance(result, dict) else str(result or "")
        error_type = str(result.get("error_type")) if isinstance(result, dict) else "JobFailed"
        function = str(data.get("f") or "<unknown>").removeprefix(CRON_PREFIX)
        retryable = True
        if error_type in {"DeserializationError", "RefusedPayload"}:
            error = f"job payload refused, not msgpack ({describe_payload(raw)}); never executed"
            error_type = "RefusedPayload"
            retryable = False
        elif function == "<unknown>":
            retryable = False
        now = time.time()
        job_try = int(data.get("t") or 1)
        started = float(data.get("st") or now * 1000) / 1000
        enqueued = data.get("et")
        record = FailedJob(
            id=job_id,
            function=function,
            args=list(data.get("a") or []),
            kwargs=dict(data.get("k") or {}),
            error=error or error_type,
            error_type=error_type,
            tries=job_try,
            enqueued_at=float(enqueued) / 1000 if enqueued else None,
            started_at=started,
            failed_at=now,
            worker=self.worker_id,
            retryable=retryable,
        )
        logger.bind(
            event="job.end",
            job_id=job_id,
            function=function,
            outcome="failed",
            error=record.error,
            error_type=error_type,
            duration=0.0,
            **{"try": job_try},
        ).error(f"{function} failed before it ran: {record.error}")
        await FailedJobs(self.pool, self.key_prefix).add(record)
        await JobHistory(self.pool, self.key_prefix).record(
            RunRecord(
                function=function,
                job_id=job_id,
                job_try=job_try,
                start=started,
                end=now,
                duration=0.0,
                outcome="failed",
                error=record.error,
                error_type=error_type,
                worker=self.worker_id,
            )
        )


class Lifecycle:
    """``on_startup`` / ``on_shutdown``: build and close the jobs' ``ctx``; never raise."""

    def __init__(self, loaded: LoadedConfig, known_jobs: Collection[str]) -> None:
        self.loaded = loaded
        self.known_jobs = known_jobs
        self.worker: ProjectWorker | None = None
        self.plans: list[JobPlan] = []
        self.history: HistoryBuffer | None = None  # flushed before the connections close
        self._stack: AsyncExitStack | None = None
        self._http: HttpServerHandle | None = None

    async def startup(self, ctx: dict[Any, Any]) -> None:
        try:
            stack = AsyncExitStack()
            redis = ctx["redis"]
            job_ctx = await stack.enter_async_context(
                job_context(self.loaded, redis, enqueue=make_enqueue(redis, self.known_jobs))
            )
            ctx.update(job_ctx)
            self._stack = stack
        except Exception as error:
            logger.bind(error=str(error), error_type=type(error).__name__).critical(
                "could not build the job context; jobs will fail until the worker restarts"
            )
        await self._start_http(ctx)
        worker_id = self.worker.worker_id if self.worker is not None else None
        logger.bind(worker=worker_id, event="worker.ready").info("worker ready, polling the queue")

    async def _start_http(self, ctx: dict[Any, Any]) -> None:
        """The API, metrics and status page ([http] listen); a failure never stops the worker."""
        try:
            self._http = await start_http_server(
                {
                    **ctx,
                    "config": self.loaded.config,
                    "secrets": self.loaded.secrets,
                    "job_plans": self.plans,
                }
            )
        except Exception as error:
            logger.bind(error=str(error), error_type=type(error).__name__).error(
                f"HTTP server not started ({error}); the worker runs on without it"
            )

    async def shutdown(self, ctx: dict[Any, Any]) -> None:
        if self.worker is not None:
            try:
                await self.worker.forget_heartbeat()
            except Exception as error:
                logger.bind(error=str(error)).warning("could not remove the heartbeat")
        await self.aclose()

    async def aclose(self) -> None:
        history, self.history = self.history, None
        if history is not None:
            await history.close()  # never raises: a failed write is logged
        server, self._http = self._http, None
        if server is not None:
            try:
                await stop_http_server(server)
            except Exception as error:
                logger.bind(error=str(error)).warning("stopping the HTTP server failed")
        stack, self._stack = self._stack, None
        if stack is None:
            return
        try:
            await stack.aclose()
        except Exception as error:
            logger.bind(error=str(error)).warning("closing the job context failed")


def quiet_arq_job_lines() -> None:
    """arq.worker's INFO lines (two per job, start, stop, health) give way to the wrapper's JSON
    lines and the worker's own; its warnings and errors still reach the sink. Raising the level
    (rather than filtering) also spares building two discarded log records per job."""
    logging.getLogger("arq.worker").setLevel(logging.WARNING)


def run_worker(loaded: LoadedConfig, *, jobs: JobSet | None = None, burst: bool = False) -> int:
    """Run until a signal (0), an outage longer than the budget (69) or a crash (1)."""
    quiet_arq_job_lines()
    return asyncio.run(serve(loaded, jobs=jobs, burst=burst, exit_watchdog=_EXIT_WATCHDOG))


def arm_exit_watchdog(status: int, seconds: float) -> threading.Timer:
    """End the process with ``status`` if it is still alive ``seconds`` from now.

    Once the worker has decided to leave because Redis is gone, leaving must not depend on a
    clean teardown: a close that still waits on Redis, or a task that ignores cancellation,
    would keep the process alive and stop systemd from restarting it."""

    def expire() -> None:
        # ERROR, not CRITICAL: the one critical line already said why the worker is leaving.
        logger.bind(exit_status=status).error(
            f"shutdown did not finish within {seconds:g} s; exiting with status {status} now"
        )
        os._exit(status)

    timer = threading.Timer(seconds, expire)
    timer.daemon = True  # never keeps a process alive that is exiting on its own
    timer.start()
    return timer


async def serve(
    loaded: LoadedConfig,
    *,
    jobs: JobSet | None = None,
    burst: bool = False,
    handle_signals: bool = True,
    exit_watchdog: float | None = None,
) -> int:
    """``exit_watchdog``: seconds after giving up on Redis before the process is ended even if
    its teardown hangs (only for a process of its own: ``run_worker``, never in tests)."""
    try:
        async with redis_url(loaded) as url:
            return await _serve_on(url, loaded, jobs, burst, handle_signals, exit_watchdog)
    except EmbeddedRedisError as error:
        logger.bind(error=str(error)).critical(f"cannot start the embedded Redis: {error}")
        return EX_UNAVAILABLE


async def _serve_on(
    url: str,
    loaded: LoadedConfig,
    jobs: JobSet | None,
    burst: bool,
    handle_signals: bool,
    exit_watchdog: float | None,
) -> int:
    config = loaded.config
    budget = config.worker.redis_outage_budget
    pool = queue_client(
        url,
        queue_name=config.redis.queue_name,
        password=loaded.secrets.redis_password,
        outage_budget=budget,
    )
    try:
        await pool.ping()
    except (RedisError, OSError) as error:
        logger.bind(redis=mask_url(url), error=str(error)).critical(
            f"Redis at {mask_url(url)} is unreachable ({error}); exiting with status 69"
        )
        await _close_quietly(pool)
        return EX_UNAVAILABLE
    worker, lifecycle = build_worker(
        loaded, pool, jobs=jobs, burst=burst, handle_signals=handle_signals
    )
    worker_id = worker.worker_id
    plans = lifecycle.plans
    upcoming = next_runs(plans)
    logger.bind(
        worker=worker_id,
        config=loaded.source,
        redis=mask_url(url),
        queue=config.redis.queue_name,
        jobs=[plan.name for plan in plans],
        schedules={plan.name: describe_schedule(plan.schedule) for plan in plans},
        next_runs={name: when.isoformat() for name, when in upcoming.items() if when},
    ).info(f"worker {worker_id} starting with {len(plans)} jobs")
    worker.main_task = asyncio.ensure_future(worker.main())
    try:
        await worker.main_task
    except asyncio.CancelledError:
        if worker.stop_signal is None:
            raise
    except REDIS_ERRORS as error:
        logger.bind(
            redis=mask_url(url), error=str(error), error_type=type(error).__name__
        ).critical(
            f"Redis at {mask_url(url)} unreachable for more than {budget:g} s "
            f"(worker.redis_outage_budget); exiting with status 69 so the supervisor restarts us"
        )
        if exit_watchdog is not None:
            arm_exit_watchdog(EX_UNAVAILABLE, exit_watchdog)
        await _abandon(worker, lifecycle, pool)
        return EX_UNAVAILABLE
    except Exception as error:
        logger.bind(error=str(error), error_type=type(error).__name__).critical(
            f"worker stopped on an unexpected error: {error}"
        )
        await _abandon(worker, lifecycle, pool)
        return EX_FAILURE
    status = await _close(worker, lifecycle, pool)
    reason = f"on {worker.stop_signal.name}" if worker.stop_signal else "(burst done)"
    logger.bind(worker=worker_id, exit_status=status).info(f"worker stopped {reason}")
    return status


def build_worker(
    loaded: LoadedConfig,
    pool: ArqRedis,
    *,
    jobs: JobSet | None = None,
    burst: bool = False,
    handle_signals: bool = True,
    worker_id: str | None = None,
) -> tuple[ProjectWorker, Lifecycle]:
    """The worker exactly as ``vultr-scraper worker`` runs it, on ``pool`` (for tests, bench)."""
    config = loaded.config
    worker_id = worker_id or new_worker_id()
    plans = plan_jobs(config, jobs)
    lifecycle = Lifecycle(loaded, [plan.name for plan in plans])
    lifecycle.plans = plans
    lifecycle.history = HistoryBuffer(pool, config.redis.key_prefix)
    runner = make_runner(loaded, worker_id, buffer=lifecycle.history, timed_by_arq=True)
    settings = build_worker_settings(
        loaded,
        redis_pool=pool,
        jobs=jobs,
        runner=runner,
        on_startup=lifecycle.startup,
        on_shutdown=lifecycle.shutdown,
        burst=burst,
        handle_signals=handle_signals,
    )
    worker = ProjectWorker(
        key_prefix=config.redis.key_prefix, worker_id=worker_id, runner=runner, **settings
    )
    lifecycle.worker = worker
    return worker, lifecycle


async def _close(worker: ProjectWorker, lifecycle: Lifecycle, pool: ArqRedis) -> int:
    """arq's ``Worker.close`` without its deprecated redis-py call, bounded in time."""
    worker.stop_jobs()  # jobs still running when the time is up are cancelled
    try:
        async with asyncio.timeout(_CLOSE_TIMEOUT):
            await asyncio.gather(*worker.tasks.values(), return_exceptions=True)
            await pool.delete(worker.health_check_key)
            await lifecycle.shutdown(worker.ctx)
    except (*REDIS_ERRORS, TimeoutError) as error:
        logger.bind(error=str(error)).warning("Redis unavailable while shutting down")
        await lifecycle.aclose()
        await _close_quietly(pool)
        return EX_UNAVAILABLE if worker.stop_signal is None else EX_OK
    await _close_quietly(pool)
    return EX_OK


async def _abandon(worker: ProjectWorker, lifecycle: Lifecycle, pool: ArqRedis) -> None:
    """Leave without talking to Redis: running jobs are cancelled and rerun elsewhere later."""
    worker.stop_jobs()
    for task in worker.tasks.values():
        task.cancel()
    with suppress(Exception):
        async with asyncio.timeout(_CLOSE_TIMEOUT):
            await asyncio.gather(*worker.tasks.values(), return_exceptions=True)
    with suppress(Exception):
        async with asyncio.timeout(_CLOSE_TIMEOUT):
            await lifecycle.aclose()
    await _close_quietly(pool)


async def _close_quietly(pool: ArqRedis) -> None:
    with suppress(Exception):
        await close_client(pool)
