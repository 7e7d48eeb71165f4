"""No ``redis.url``: the worker starts and owns a private redis-server under $STATE_DIRECTORY."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from tests.worker.processes import WorkerProcess, cli, eventually, worker_env, workers
from vultr_scraper_core.embedded_redis import answers_ping

pytestmark = pytest.mark.slow
QUIET = "tests.worker.sample_quiet"


async def test_worker_owns_an_append_only_redis_on_a_unix_socket(tmp_path: Path) -> None:
    state = tmp_path / "st"
    env = worker_env("", tmp_path / "unused", STATE_DIRECTORY=str(state))
    env.pop("VULTR_SCRAPER__PATHS__STATE_DIR")  # systemd's $STATE_DIRECTORY decides
    socket = state / "redis" / "redis.sock"
    with workers(WorkerProcess(env, tmp_path)) as (worker,):
        await worker.wait_ready()
        assert answers_ping(socket)
        started = worker.lines()[0]
        assert started["redis"] == f"unix://{socket}"

        # One-shot commands find the worker's server instead of starting their own.
        queued = await cli(env, "enqueue", "noop", "t:embedded", "--jobs-module", QUIET)
        assert queued.returncode == 0, queued.stderr
        job_id = queued.stdout.strip()

        async def ran() -> bool:
            return bool(worker.events("job.end", job_id=job_id, outcome="success"))

        await eventually(ran, message=worker.output)
        check = await cli(env, "check")
        assert check.returncode == 0, check.stderr

        worker.send(signal.SIGTERM)
        assert await worker.wait_exit() == 0, worker.output()

    assert not answers_ping(socket)  # stopped with its owner
    # Redis 7 keeps the append-only file in a directory, older ones in appendonly.aof.
    assert any((state / "redis").glob("appendonly*"))
    check = await cli(env, "check")
    assert check.returncode == 69
    assert "embedded Redis" in check.stderr

    # The queue and history survive a restart (append-only file).
    listing = await cli(env, "jobs", "--json", "--jobs-module", QUIET)
    assert listing.returncode == 0, listing.stderr
    assert f'"job_id": "{job_id}"' in listing.stdout
