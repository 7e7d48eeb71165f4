"""Benchmark: time from ``vultr-scraper worker`` start to the first job picked up, idle RSS.

Each run starts ``python -m vultr_scraper_worker worker`` as production does (JSON logs on
stdout, every registry job imported; schedules switched off so nothing reaches the network) with
one no-op job already queued, and reads from the worker's own log lines:

* ``ready``: process start -> "worker ready, polling the queue";
* ``first job``: process start -> the no-op job's ``job.start`` line;

then leaves the worker idle for ``--idle`` seconds and reads ``VmRSS`` / ``VmHWM`` from
``/proc/<pid>/status`` (and the embedded redis-server's RSS), sends SIGTERM and times the exit.
Two modes: ``external`` (a redis-server started by the bench, ``redis.url`` set) and
``embedded`` (no ``redis.url``: the worker starts and owns its redis-server). Medians of
``--runs``. Linux only (/proc). Run from the repository root:

    python3 -m hatch run python bench/worker_startup.py [--runs 5] [--idle 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from vultr_scraper_core.config import LoadedConfig, load_config
from vultr_scraper_core.embedded_redis import EmbeddedRedis
from vultr_scraper_worker.enqueue import enqueue_job, open_queue

ROOT = Path(__file__).resolve().parents[1]


def _status(pid: int) -> dict[str, int]:
    """``VmRSS`` and ``VmHWM`` in KiB, and ``Threads``."""
    values: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in {"VmRSS", "VmHWM", "Threads"}:
            values[key] = int(rest.split()[0])
    return values


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:  # fields after the command: state, ppid, ...
                found.append(int(entry.name))
    return found


def _log_time(line: dict[str, Any]) -> float:
    return datetime.fromisoformat(line["time"]).timestamp()


async def _queue_noop(loaded: LoadedConfig) -> None:
    """As ``vultr-scraper enqueue`` does: with no redis.url it starts the private redis-server,
    enqueues into its append-only file and stops it again; the worker then finds the job."""
    async with open_queue(loaded) as client:
        await client.flushdb()
        await enqueue_job(client, "bench-noop", job_id="bench-first")


def one_run(mode: str, url: str, state: Path, idle: float) -> dict[str, float]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("VULTR_SCRAPER")}
    env.update(
        {
            "VULTR_SCRAPER__REDIS__URL": url if mode == "external" else "",
            "VULTR_SCRAPER__PATHS__STATE_DIR": str(state),
            "VULTR_SCRAPER__HTTP__LISTEN": "",
            "PYTHONUNBUFFERED": "1",
        }
    )
    asyncio.run(_queue_noop(load_config(None, environ=env)))
    log_path = state / f"worker-{time.monotonic_ns()}.log"
    command = [sys.executable, "-m", "vultr_scraper_worker", "worker"]
    command += ["--jobs-module", "bench.worker_jobs"]
    with log_path.open("w") as log:
        started = time.time()
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        ready_at = first_at = None
        deadline = time.monotonic() + 60
        while first_at is None and time.monotonic() < deadline:
            time.sleep(0.01)
            if process.poll() is not None:
                raise RuntimeError(f"worker exited early:\n{log_path.read_text()[-2000:]}")
            for raw in log_path.read_text().splitlines():
                line = json.loads(raw)
                if line.get("event") == "worker.ready" and ready_at is None:
                    ready_at = _log_time(line)
                if line.get("event") == "job.start" and line.get("job_id") == "bench-first":
                    first_at = _log_time(line)
        if ready_at is None or first_at is None:
            raise RuntimeError(f"no first job in 60 s:\n{log_path.read_text()[-2000:]}")
        time.sleep(idle)
        worker = _status(process.pid)
        redis_rss = sum(_status(child)["VmRSS"] for child in _children(process.pid))
        stop = time.monotonic()
        process.send_signal(signal.SIGTERM)
        status = process.wait(timeout=60)
        stopped = time.monotonic() - stop
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    if status != 0:
        raise RuntimeError(f"worker exited {status}:\n{log_path.read_text()[-2000:]}")
    result = {
        "ready_s": ready_at - started,
        "first_job_s": first_at - started,
        "rss_mib": worker["VmRSS"] / 1024,
        "peak_rss_mib": worker["VmHWM"] / 1024,
        "threads": float(worker["Threads"]),
        "stop_s": stopped,
    }
    if mode == "embedded":
        result["redis_rss_mib"] = redis_rss / 1024
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--idle", type=float, default=5.0)
    options = parser.parse_args()
    print(f"python {sys.version.split()[0]}, {options.runs} runs per mode, idle {options.idle} s")
    with tempfile.TemporaryDirectory(prefix="vs-bench-") as directory:
        base = Path(directory)
        with EmbeddedRedis(base / "external", persistent=False) as server:
            for mode in ("external", "embedded"):
                runs = []
                for index in range(options.runs):
                    state = base / f"{mode}-{index}"
                    state.mkdir()
                    runs.append(one_run(mode, server.url, state, options.idle))
                print(f"\n{mode} Redis (median of {options.runs}; all runs):")
                for key in runs[0]:
                    values = [run[key] for run in runs]
                    listed = " ".join(f"{value:.2f}" for value in values)
                    print(f"  {key:>14}: {statistics.median(values):8.2f}  ({listed})")


if __name__ == "__main__":
    main()
