"""``vultr-scraper worker``: one arq worker process, its lifecycle and its exit status.

Start-up reads straight down: ``serve`` finds Redis (the configured URL, or a private
``redis-server`` started here), ``_serve_on`` checks it answers, ``build_worker`` plans the jobs
once and builds, in order, the history buffer, the job runner, the ``Lifecycle`` and the arq
settings, then the ``ProjectWorker`` (``project_worker``) runs until it is told to stop.

* Redis: at start, Redis must answer within ``worker.redis_outage_budget``. Once running, a
  command is retried by redis-py for ``COMMAND_RETRY`` seconds (a dropped connection), and any
  Redis error in a poll is an outage (``outage``): one WARNING, backoff, one INFO when it ends.
  An outage longer than the budget ends the process with status 69 and one clear line, for
  systemd to restart it; the HTTP server answers meanwhile.
* Shutdown: SIGTERM or SIGINT stops taking jobs, waits up to ``worker.job_completion_wait``
  for running ones, cancels the rest (they run again on the next worker) and exits 0.
* Hooks never raise into arq: ``Lifecycle.startup`` builds the jobs' ``ctx`` (config, secrets,
  redis, http, enqueue) and starts the HTTP server; ``Lifecycle.aclose`` closes both, inside
  ``try``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from contextlib import AsyncExitStack, suppress
from typing import Any

from arq.connections import ArqRedis
from loguru import logger
from redis.exceptions import RedisError

from vultr_scraper_core.config import LoadedConfig
from vultr_scraper_core.embedded_redis import EmbeddedRedisError
from vultr_scraper_core.formats import format_time
from vultr_scraper_core.redis_faults import redis_cause
from vultr_scraper_core.redis_target import RedisTarget, from_url
from vultr_scraper_core.text import bounded
from vultr_scraper_worker.api.server import HttpServerHandle, start_http_server, stop_http_server
from vultr_scraper_worker.api.state import ApiState
from vultr_scraper_worker.enqueue import close_client, deadline_client, make_enqueue, queue_client
from vultr_scraper_worker.exit_status import ExitStatus
from vultr_scraper_worker.outage import OutageTooLong, RedisOutage
from vultr_scraper_worker.plans import JobPlan, JobSet, describe_schedule, next_runs, plan_jobs
from vultr_scraper_worker.project_worker import ProjectWorker
from vultr_scraper_worker.records.heartbeats import new_worker_id
from vultr_scraper_worker.records.runs import HistoryBuffer
from vultr_scraper_worker.runtime import ensure_reachable, job_context, redis_target
from vultr_scraper_worker.settings import build_worker_settings
from vultr_scraper_worker.wrapper import JobRunner, already_logged

# Seconds redis-py retries one command on a dropped connection before the poll loop sees an
# outage: long enough for a reconnect, short enough that an outage is logged when it starts.
COMMAND_RETRY = 1.0
_CLOSE_TIMEOUT = 10.0
# After giving up on Redis: the close above, twice, and a margin; then the process just ends.
_EXIT_WATCHDOG = 2 * _CLOSE_TIMEOUT + 5.0


class Lifecycle:
    """What the worker runs beside arq's loop: the jobs' ``ctx`` (opened by arq's
    ``on_startup``) and the HTTP server; ``aclose`` closes them and flushes the run history.
    Never raises into arq."""

    def __init__(
        self,
        loaded: LoadedConfig,
        plans: list[JobPlan],
        queue: ArqRedis,
        *,
        history: HistoryBuffer,
        worker_id: str,
        target: RedisTarget,
    ) -> None:
        self.loaded = loaded
        self.plans = plans
        self.queue = queue  # the worker's own client: jobs, the API and the records share it
        self.target = target  # where ``queue`` connects: the API opens its own client there
        self.history: HistoryBuffer | None = history  # flushed before the connections close
        self.worker_id = worker_id
        self._stack: AsyncExitStack | None = None
        self._http: HttpServerHandle | None = None
        self._api_redis: ArqRedis | None = None

    async def startup(self, ctx: dict[Any, Any]) -> None:
        """arq's ``on_startup``: fill ``ctx`` for the jobs, then start the HTTP server."""
        try:
            stack = AsyncExitStack()
            enqueue = make_enqueue(self.queue, [plan.name for plan in self.plans])
            ctx.update(
                await stack.enter_async_context(
                    job_context(self.loaded, self.queue, enqueue=enqueue)
                )
            )
            self._stack = stack
        except Exception as error:
            logger.bind(error=str(error), error_type=type(error).__name__).critical(
                "could not build the job context; jobs will fail until the worker restarts"
            )
        await self._start_http()
        logger.bind(worker=self.worker_id, event="worker.ready").info(
            "worker ready, polling the queue"
        )

    async def _start_http(self) -> None:
        """The API, metrics and status page ([http] listen); a failure never stops the worker."""
        try:
            # Its own client to the same Redis: every call for a request has a short deadline.
            self._api_redis = deadline_client(
                self.target,
                self.loaded.config.http.redis_timeout,
                queue_name=self.loaded.config.redis.queue_name,
            )
            self._http = await start_http_server(
                ApiState.create(self.loaded, self._api_redis, self.plans)
            )
        except Exception as error:
            logger.bind(error=str(error), error_type=type(error).__name__).error(
                f"HTTP server not started ({error}); the worker runs on without it"
            )

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
        api_redis, self._api_redis = self._api_redis, None
        if api_redis is not None:
            await _close_quietly(api_redis)
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
    (rather than filtering) also spares building two discarded log records per job. arq's
    ``! job failed`` ERROR (with a traceback) is dropped for failures the wrapper has logged."""
    arq_worker = logging.getLogger("arq.worker")
    arq_worker.setLevel(logging.WARNING)
    if not any(isinstance(f, _LoggedFailureFilter) for f in arq_worker.filters):
        arq_worker.addFilter(_LoggedFailureFilter())


class _LoggedFailureFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        return not already_logged(error)


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
        async with redis_target(loaded) as target:
            return await _serve_on(
                target,
                loaded,
                jobs=jobs,
                burst=burst,
                handle_signals=handle_signals,
                exit_watchdog=exit_watchdog,
            )
    except EmbeddedRedisError as error:
        logger.bind(error=str(error)).critical(f"cannot start the embedded Redis: {error}")
        return ExitStatus.UNAVAILABLE


async def _serve_on(
    target: RedisTarget,
    loaded: LoadedConfig,
    *,
    jobs: JobSet | None,
    burst: bool,
    handle_signals: bool,
    exit_watchdog: float | None,
) -> int:
    config = loaded.config
    budget = config.worker.redis_outage_budget
    shown = target.describe()  # never a password
    try:
        await ensure_reachable(target, budget=budget)
    except (RedisError, OSError) as error:
        cause = redis_cause(error)
        logger.bind(redis=shown, error=cause, error_type=type(error).__name__).critical(
            f"{cause} (at {shown}, waited {budget:g} s); exiting with status 69"
        )
        return ExitStatus.UNAVAILABLE
    pool = queue_client(
        target,
        queue_name=config.redis.queue_name,
        outage_budget=min(budget, COMMAND_RETRY),
        loading_wait=min(budget, COMMAND_RETRY),  # the poll loop waits out a loading Redis
    )
    worker, lifecycle = build_worker(
        loaded, pool, jobs=jobs, burst=burst, handle_signals=handle_signals, target=target
    )
    worker_id = worker.worker_id
    plans = lifecycle.plans
    upcoming = next_runs(plans)
    logger.bind(
        worker=worker_id,
        config=loaded.source,
        redis=shown,
        queue=config.redis.queue_name,
        jobs=[plan.name for plan in plans],
        schedules={plan.name: describe_schedule(plan.schedule) for plan in plans},
        next_runs={name: format_time(when) for name, when in upcoming.items() if when},
    ).info(f"worker {worker_id} starting with {len(plans)} jobs")
    worker.main_task = asyncio.ensure_future(worker.main())
    try:
        await worker.main_task
    except asyncio.CancelledError:
        if worker.stop_signal is None:
            raise
    except (OutageTooLong, RedisError, OSError) as error:
        cause = error.cause if isinstance(error, OutageTooLong) else redis_cause(error)
        logger.bind(redis=shown, error=cause, error_type=type(error).__name__).critical(
            f"{cause} for more than {budget:g} s (worker.redis_outage_budget, at "
            f"{shown}); exiting with status 69 so the supervisor restarts the worker"
        )
        if exit_watchdog is not None:
            arm_exit_watchdog(ExitStatus.UNAVAILABLE, exit_watchdog)
        await _abandon(worker, lifecycle, pool)
        return ExitStatus.UNAVAILABLE
    except Exception as error:
        text = bounded(str(error) or type(error).__name__)
        logger.bind(error=text, error_type=type(error).__name__).critical(
            f"worker stopped on an unexpected error: {type(error).__name__}: {text}"
        )
        await _abandon(worker, lifecycle, pool)
        return ExitStatus.FAILURE
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
    target: RedisTarget | None = None,
) -> tuple[ProjectWorker, Lifecycle]:
    """The worker exactly as ``vultr-scraper worker`` runs it, on ``pool`` (for tests, bench).
    ``target``: where ``pool`` connects, for the HTTP API's own client (default: the pool's
    own address, for a single server)."""
    config = loaded.config
    worker_id = worker_id or new_worker_id()
    plans = plan_jobs(config, jobs)
    history = HistoryBuffer(pool, config.redis.key_prefix)
    runner = JobRunner.from_config(config, worker_id=worker_id, buffer=history, timed_by_arq=True)
    lifecycle = Lifecycle(
        loaded,
        plans,
        pool,
        history=history,
        worker_id=worker_id,
        target=target or _target_of(pool, loaded),
    )
    settings = build_worker_settings(
        config,
        plans,
        runner=runner,
        redis_pool=pool,
        on_startup=lifecycle.startup,
        burst=burst,
        handle_signals=handle_signals,
    )
    worker = ProjectWorker(
        key_prefix=config.redis.key_prefix,
        worker_id=worker_id,
        runner=runner,
        outage=RedisOutage(config.worker.redis_outage_budget),
        **settings,
    )
    return worker, lifecycle


def _target_of(pool: ArqRedis, loaded: LoadedConfig) -> RedisTarget:
    """A single server's target from a plain pool's own address (tests and benchmarks pass a
    pool they built from a URL)."""
    kwargs = pool.connection_pool.connection_kwargs
    db = kwargs.get("db", 0)
    if "path" in kwargs:
        url = f"unix://{kwargs['path']}?db={db}"
    else:
        url = f"redis://{kwargs.get('host', 'localhost')}:{kwargs.get('port', 6379)}/{db}"
    return from_url(url, password=kwargs.get("password") or loaded.secrets.redis_password)


async def _close(worker: ProjectWorker, lifecycle: Lifecycle, pool: ArqRedis) -> int:
    """arq's ``Worker.close`` without its deprecated redis-py call, bounded in time."""
    worker.stop_jobs()  # jobs still running when the time is up are cancelled
    try:
        async with asyncio.timeout(_CLOSE_TIMEOUT):
            await asyncio.gather(*worker.tasks.values(), return_exceptions=True)
            await pool.delete(worker.health_check_key)
            await worker.forget_heartbeat()
            await lifecycle.aclose()
    except (RedisError, OSError, TimeoutError) as error:
        logger.bind(error=redis_cause(error)).warning(
            f"Redis unavailable while shutting down: {redis_cause(error)}"
        )
        await lifecycle.aclose()
        await _close_quietly(pool)
        return ExitStatus.UNAVAILABLE if worker.stop_signal is None else ExitStatus.OK
    await _close_quietly(pool)
    return ExitStatus.OK


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
