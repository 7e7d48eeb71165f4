"""``ProjectWorker``: arq's ``Worker`` with the project's records, heartbeat and stop handling.

* Early failures that arq handles without calling any job code (a payload that is not msgpack,
  an unknown function, an expired job, tries used up by crashes or shutdowns) are logged and
  recorded as failed jobs too (``early_failures``).
* Heartbeat: every ``worker.health_check_interval`` the worker writes its heartbeat
  (``records.heartbeats``); ``vultr-scraper check`` reads it.
* Stopping: the runner is told before any cancelled job resumes, so a cancelled try is an
  interruption (it runs again), not a timeout.
* Redis faults: a poll that fails on any Redis error is an outage (``outage``): logged once
  when it starts and once when it ends, polled again with backoff, and ended by
  ``OutageTooLong`` once it outlasts ``worker.redis_outage_budget``. Jobs whose records could
  not be written keep their in-progress key and run again when it expires.
* Claiming jobs: one Lua script per poll takes every due, free job (arq's own rule: no
  in-progress key, score due; then the key is set), instead of arq's four round trips per job.
  The key (the lease) lives for the job's own timeout + 10 s, so a job whose worker was killed
  runs again after its own timeout, not after the longest timeout of any job.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
from contextlib import suppress
from signal import Signals
from typing import Any

from arq.constants import in_progress_key_prefix, job_key_prefix
from arq.utils import timestamp_ms
from arq.worker import Worker
from loguru import logger
from redis.exceptions import WatchError

from vultr_scraper_core import __version__
from vultr_scraper_core.redis_faults import is_redis_fault
from vultr_scraper_worker.early_failures import early_failure
from vultr_scraper_worker.outage import RedisOutage
from vultr_scraper_worker.records.failed import FailedJobs
from vultr_scraper_worker.records.heartbeats import Heartbeats, WorkerInfo
from vultr_scraper_worker.records.runs import JobHistory
from vultr_scraper_worker.wrapper import JobRunner

# Lease = how long a claimed job stays claimed if its worker dies without finishing it.
LEASE_MARGIN = 10.0  # seconds past the job's timeout, as arq's own lease

# KEYS[1]: the queue. ARGV: now (ms), the lease of a job of no known function (ms), how many to
# take, how many (function, lease ms) pairs follow, the pairs, then the job ids in order.
# A job's function is read from its msgpack payload (cmsgpack is built into Redis's Lua); a
# payload that does not decode gets the default lease and arq fails the job on pickup.
# Returns the claimed ids with their scores, flattened.
_CLAIM_SCRIPT = f"""
local claimed = {{}}
local room = tonumber(ARGV[3])
local leases = {{}}
local first = 5 + 2 * tonumber(ARGV[4])
for index = 5, first - 1, 2 do
  leases[ARGV[index]] = ARGV[index + 1]
end
for index = first, #ARGV do
  if room <= 0 then break end
  local id = ARGV[index]
  local key = '{in_progress_key_prefix}' .. id
  if redis.call('EXISTS', key) == 0 then
    local score = redis.call('ZSCORE', KEYS[1], id)
    if score and tonumber(score) <= tonumber(ARGV[1]) then
      local lease = ARGV[2]
      local payload = redis.call('GET', '{job_key_prefix}' .. id)
      if payload then
        local decoded, job = pcall(cmsgpack.unpack, payload)
        if decoded and type(job) == 'table' and type(job['f']) == 'string' then
          lease = leases[job['f']] or lease
        end
      end
      redis.call('PSETEX', key, lease, '1')
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

    Constructed with exactly arq's keyword arguments plus ``key_prefix``, ``worker_id``, the
    ``runner`` whose wrapped jobs it runs (told when the worker stops, see ``stop_jobs``) and
    the ``outage`` tracker of its polls.
    """

    def __init__(
        self,
        *,
        key_prefix: str,
        worker_id: str,
        runner: JobRunner,
        outage: RedisOutage,
        **settings: Any,
    ) -> None:
        super().__init__(**settings)
        self.outage = outage
        self.key_prefix = key_prefix
        self.worker_id = worker_id
        self.runner = runner
        runner.aborting = self.aborting_tasks  # the same set: arq fills it as it aborts
        self.started_at = time.time()
        self.stop_signal: Signals | None = None
        self.on_stop = self._note_stop
        self.heartbeats = Heartbeats(self.pool, key_prefix)
        self._claim = self.pool.register_script(_CLAIM_SCRIPT)
        self.leases = self._leases()

    def _leases(self) -> dict[str, float]:
        """Function name -> seconds a claimed job of it stays claimed: its own timeout + 10 s.

        arq leases every job for the largest timeout of all (one long job type, e.g. the history
        move, would make every killed scrape wait half an hour); the claim script leases each
        job for its own function's timeout instead.
        """
        return {
            name: float(function.timeout_s or self.job_timeout_s or 0) + LEASE_MARGIN
            for name, function in self.functions.items()
        }

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

    async def _poll_iteration(self) -> None:
        """arq's poll, with Redis errors handled as an outage instead of ending the worker."""
        began = time.monotonic()
        try:
            await super()._poll_iteration()
            if self.outage.ongoing:
                # A poll may only read (reads work while Redis refuses writes): an outage ends
                # when a write goes through again.
                await self.pool.set(f"{self.key_prefix}:outage-probe", self.worker_id, px=5000)
        except Exception as error:
            if not (is_redis_fault(error) or isinstance(error, OSError)):  # a poll is all Redis
                raise
            await asyncio.sleep(await self.outage.failed(error, self.pool, since=began))
            return
        self.outage.recovered()

    async def start_jobs(self, job_ids: list[bytes]) -> None:
        """Claim due jobs with one Lua call instead of arq's WATCH/EXISTS/ZSCORE/MULTI per job.

        Same rule as arq (a job is taken when it has no in-progress key and is due, and the key
        is then set), atomically, in one round trip for the whole poll. No WATCH also means no
        ``WatchError`` when the connection drops mid-claim. Unlike arq, the key's lifetime is
        the job's own lease (``leases``), not the largest one of all.
        """
        free = self.max_jobs - self.job_counter
        if free <= 0 or not job_ids:
            return
        leases = [item for name, lease in self.leases.items() for item in (name, int(lease * 1000))]
        claimed = await self._claim(
            keys=[self.queue_name],
            args=[
                timestamp_ms(),
                int(self.in_progress_timeout_s * 1000),
                free,
                len(self.leases),
                *leases,
                *job_ids,
            ],
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
        """Remove this worker's heartbeat (a clean exit); a failure is logged, never raised."""
        try:
            await self.heartbeats.forget(self.worker_id)
        except Exception as error:
            logger.bind(error=str(error)).warning("could not remove the heartbeat")

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
        self, job_id: str, result_data: bytes | None, payload: bytes | None
    ) -> None:
        result: dict[str, Any] = {}
        if result_data is not None and self.job_deserializer is not None:
            with suppress(Exception):
                result = dict(self.job_deserializer(result_data))
        failed, run = early_failure(
            job_id, result, payload, worker_id=self.worker_id, now=time.time()
        )
        logger.bind(
            event="job.end",
            job_id=job_id,
            function=failed.function,
            outcome="failed",
            error=failed.error,
            error_type=failed.error_type,
            duration=0.0,
            **{"try": failed.tries},
        ).error(f"{failed.function} failed before it ran: {failed.error}")
        await FailedJobs(self.pool, self.key_prefix).add(failed)
        await JobHistory(self.pool, self.key_prefix).record(run)
