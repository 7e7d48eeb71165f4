"""Benchmark: per-job overhead of the project's worker against bare arq, on no-op jobs.

Every variant drains the same number of queued no-op jobs with an in-process burst worker on a
private ``redis-server`` (unix socket, persistence off) and identical arq knobs (``max_jobs``,
``poll_delay``, ``keep_result``):

* ``arq``: bare arq as shipped: pickle, the function registered as is, arq's own per-job log
  lines through stdlib logging (the format ``arq``'s CLI configures) to a null stream;
* ``arq-quiet``: the same with logging off (printed for reference);
* ``project``: the worker as ``vultr-scraper worker`` builds it (``worker_main.build_worker``):
  the job wrapper (start and end JSON log lines through loguru's sink to a null stream,
  timeout, error classification, run history batched into one pipeline per 50 ms), msgspec
  msgpack, the heartbeat, and its one-Lua-call job claim;
* ``wrapper-only``: the same with arq's own claim (WATCH/EXISTS/ZSCORE/MULTI per job), i.e.
  only what the wrapper, the logging and the serialiser add to bare arq: the like-for-like
  comparison the 1.15x target applies to;
* ``wrapper-quiet``: ``wrapper-only`` with the log level at WARNING, so the two job lines are
  not written (printed for reference: what the lines themselves cost).

The project variants configure two secrets for redaction, as production does (the API key).

Runs are interleaved (the order alternates every round) so that drift on a noisy machine hits
all variants; each figure is the median over ``--rounds``, in wall time and in CPU time of the
worker process (steadier when other processes compete for the cores). It prints the raw per-job
figures and the ratios to ``arq`` from the same run: wrapper-only/arq is the like-for-like one
(same claim path in both), project/arq the worker as shipped; target <= 1.15 for both.
Run from the repository root:

    python3 -m hatch run python bench/worker_overhead.py [--jobs 2000] [--rounds 7]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import statistics
import sys
import tempfile
import time
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

from arq.connections import ArqRedis
from arq.worker import Worker, func
from redis.asyncio import ConnectionPool

from vultr_scraper_core.config import load_config
from vultr_scraper_core.embedded_redis import EmbeddedRedis
from vultr_scraper_core.logs import setup_logging
from vultr_scraper_jobs.registry import JobSpec
from vultr_scraper_worker.enqueue import queue_client
from vultr_scraper_worker.plans import JobSet, Schedule
from vultr_scraper_worker.worker_main import build_worker, quiet_arq_job_lines

TARGET = 1.15
MAX_JOBS = 100
POLL_DELAY = 0.01
QUEUE = "arq:queue"
SECRETS = ("BENCHAPIKEY0123456789ABCDEF", "bench-redis-password")  # redaction is on, as in prod


async def noop(ctx: dict[Any, Any]) -> dict[str, Any]:
    return {"status": "success"}


def _null_stream() -> Any:
    return open(os.devnull, "w")  # kept open for the whole run


def _arq_logging(stream: Any, enabled: bool) -> None:
    """Stdlib logging as ``arq``'s CLI sets it up (its default_log_config), or off."""
    arq_logger = logging.getLogger("arq")
    arq_logger.handlers = []
    arq_logger.propagate = False
    if enabled:
        handler = logging.StreamHandler(stream)
        handler.setFormatter(logging.Formatter("%(asctime)s: %(message)s", "%H:%M:%S"))
        arq_logger.addHandler(handler)
        arq_logger.setLevel(logging.INFO)
    else:
        arq_logger.setLevel(logging.CRITICAL)


async def _enqueue(queue: ArqRedis, function: str, jobs: int) -> None:
    for start in range(0, jobs, 200):
        await asyncio.gather(
            *(queue.enqueue_job(function) for _ in range(start, min(jobs, start + 200)))
        )


class Sample(NamedTuple):
    wall: float  # seconds
    cpu: float  # CPU seconds of this (the worker's) process


async def _drain(worker: Worker) -> Sample:
    started, cpu = time.perf_counter(), time.process_time()
    await worker.main()
    sample = Sample(time.perf_counter() - started, time.process_time() - cpu)
    remaining = await worker.pool.zcard(worker.queue_name)
    assert remaining == 0, f"{remaining} jobs left"
    return sample


async def run_arq(url: str, jobs: int, stream: Any, logs: bool) -> Sample:
    _arq_logging(stream, logs)
    pool = ArqRedis(ConnectionPool.from_url(url), default_queue_name=QUEUE)
    await pool.flushdb()
    await _enqueue(pool, "noop", jobs)
    worker = Worker(
        functions=[func(noop, name="noop", timeout=60)],
        redis_pool=pool,
        burst=True,
        handle_signals=False,
        max_jobs=MAX_JOBS,
        poll_delay=POLL_DELAY,
        keep_result=3600,
    )
    sample = await _drain(worker)
    await pool.aclose(close_connection_pool=True)
    return sample


async def run_project(
    url: str, jobs: int, stream: Any, arq_claim: bool = False, level: str = "INFO"
) -> Sample:
    setup_logging(level, SECRETS, stream)
    quiet_arq_job_lines()
    loaded = load_config(
        None,
        environ={
            "VULTR_SCRAPER__REDIS__URL": url,
            "VULTR_SCRAPER__HTTP__LISTEN": "",
            "VULTR_SCRAPER__WORKER__MAX_JOBS": str(MAX_JOBS),
            "VULTR_SCRAPER__WORKER__POLL_DELAY": str(POLL_DELAY),
        },
    )
    pool = queue_client(url, queue_name=QUEUE)
    await pool.flushdb()
    await _enqueue(pool, "noop", jobs)
    job_set = JobSet([JobSpec("noop", noop, "no-op")], {"noop": Schedule(timeout=60)})
    worker, lifecycle = build_worker(loaded, pool, jobs=job_set, burst=True, handle_signals=False)
    if arq_claim:  # arq's own WATCH/MULTI claim instead of the worker's Lua claim
        worker.start_jobs = types.MethodType(Worker.start_jobs, worker)  # type: ignore[method-assign]
    sample = await _drain(worker)
    await lifecycle.aclose()
    await pool.aclose(close_connection_pool=True)
    return sample


async def bench(url: str, jobs: int, rounds: int) -> dict[str, list[Sample]]:
    stream = _null_stream()
    variants: dict[str, Callable[[], Any]] = {
        "arq": lambda: run_arq(url, jobs, stream, logs=True),
        "arq-quiet": lambda: run_arq(url, jobs, stream, logs=False),
        "project": lambda: run_project(url, jobs, stream),
        "wrapper-only": lambda: run_project(url, jobs, stream, arq_claim=True),
        "wrapper-quiet": lambda: run_project(url, jobs, stream, arq_claim=True, level="WARNING"),
    }
    await variants["project"]()  # warm-up: imports, first connections
    await variants["arq"]()
    times: dict[str, list[Sample]] = {name: [] for name in variants}
    order = list(variants)
    for index in range(rounds):
        for name in order if index % 2 == 0 else list(reversed(order)):
            sample = await variants[name]()
            times[name].append(Sample(sample.wall / jobs, sample.cpu / jobs))
    stream.close()
    return times


async def drain_once(url: str, jobs: int, variant: str) -> None:
    """A warm-up and one drain of ``variant``, untimed (``worker_instructions.py`` counts it)."""
    stream = _null_stream()
    for count in (100, jobs):  # 100 first: connections and lazy imports, the same in every run
        if variant == "arq":
            await run_arq(url, count, stream, logs=True)
        else:
            await run_project(url, count, stream, arq_claim=True)
    stream.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--only", choices=("arq", "wrapper-only"), help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.only:
        with tempfile.TemporaryDirectory(prefix="vs-bench-") as directory:
            server = EmbeddedRedis(Path(directory), persistent=False)
            with server:
                asyncio.run(drain_once(server.url, options.jobs, options.only))
        return
    with tempfile.TemporaryDirectory(prefix="vs-bench-") as directory:
        server = EmbeddedRedis(Path(directory), persistent=False)
        with server:
            times = asyncio.run(bench(server.url, options.jobs, options.rounds))
    print(f"jobs per run: {options.jobs}, rounds: {options.rounds}, max_jobs={MAX_JOBS}, "
          f"poll_delay={POLL_DELAY}, python {sys.version.split()[0]}")  # fmt: skip
    for metric in Sample._fields:
        values = {
            name: [getattr(sample, metric) for sample in runs] for name, runs in times.items()
        }
        median = {name: statistics.median(runs) for name, runs in values.items()}
        print(f"\n{metric} time per job (median of {options.rounds} runs; all runs in us):")
        for name, runs in values.items():
            listed = " ".join(f"{value * 1e6:.0f}" for value in runs)
            print(f"  {name:>13}: {median[name] * 1e6:7.1f} us  ({listed})")
        for name, what in (
            ("wrapper-only", "like for like: wrapper, logging and serialiser on arq's claim"),
            ("project", "the worker as shipped, with its Lua claim"),
        ):
            ratio = median[name] / median["arq"]
            paired = statistics.median(
                mine / arq for mine, arq in zip(values[name], values["arq"], strict=True)
            )
            verdict = "OK" if ratio <= TARGET else "MISSED"
            print(f"  ratio {name}/arq: {ratio:.3f}x (paired median {paired:.3f}x), "
                  f"target <= {TARGET}x: {verdict}  [{what}]")  # fmt: skip
        quiet = median["wrapper-quiet"] / median["arq"]
        print(f"  ratio wrapper-quiet/arq: {quiet:.3f}x (wrapper-only without its two job lines)")
        quiet = median["project"] / median["arq-quiet"]
        print(f"  ratio project/arq-quiet: {quiet:.3f}x (bare arq logging nothing)")


if __name__ == "__main__":
    main()
