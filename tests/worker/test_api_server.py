"""The HTTP server inside a real worker process: served while it runs, gone when it stops, and
never a reason for the worker to die (a port already taken only costs the HTTP server)."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.redis_server import free_port
from tests.worker.processes import WorkerProcess, eventually, queue_for, worker_env, workers
from vultr_scraper_worker.enqueue import enqueue_job

pytestmark = pytest.mark.slow


def _get(url: str) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


async def get(url: str) -> tuple[int, Any]:
    return await asyncio.to_thread(_get, url)


async def answers(url: str) -> bool:
    try:
        await get(url)
    except (urllib.error.URLError, ConnectionError):
        return False
    return True


async def test_the_worker_serves_its_jobs_over_http(redis_url: str, tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = worker_env(redis_url, tmp_path / "state", VULTR_SCRAPER__HTTP__LISTEN=f"127.0.0.1:{port}")
    async with queue_for(redis_url) as queue:
        with workers(WorkerProcess(env, tmp_path)) as (worker,):
            await worker.wait_ready()
            await eventually(lambda: answers(base + "/healthz"), message=worker.output)
            job_id = await enqueue_job(queue, "noop", "t:http")

            async def recorded() -> bool:
                _, document = await get(base + "/api/v1/jobs")
                return any(run["job_id"] == job_id for run in document["recent"])

            await eventually(recorded, message=worker.output)
            status, document = await get(base + "/api/v1/jobs")
            assert status == 200
            # The jobs this worker serves (here the test's sample jobs), not the registry's.
            assert "noop" in {job["name"] for job in document["jobs"]}
            status, health = await get(base + "/healthz")
            assert status == 503 and health["reason"] == "no successful catalogue scrape yet"
            worker.send(signal.SIGTERM)
            assert await worker.wait_exit() == 0
    assert not await answers(base + "/healthz")
    listening = [line for line in worker.lines() if "HTTP server listening" in line["message"]]
    assert listening and listening[0]["url"] == base


async def test_a_port_in_use_costs_the_http_server_not_the_worker(
    redis_url: str, tmp_path: Path
) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = worker_env(
            redis_url, tmp_path / "state", VULTR_SCRAPER__HTTP__LISTEN=f"127.0.0.1:{port}"
        )
        async with queue_for(redis_url) as queue:
            with workers(WorkerProcess(env, tmp_path)) as (worker,):
                await worker.wait_ready()
                await enqueue_job(queue, "noop", "t:busy")

                async def ran() -> bool:
                    return bool(worker.events("job.end", function="noop", outcome="success"))

                await eventually(ran, message=worker.output)
                worker.send(signal.SIGTERM)
                assert await worker.wait_exit() == 0
    errors = [line for line in worker.lines() if "HTTP server not started" in line["message"]]
    assert errors and errors[0]["level"] == "ERROR"


async def test_an_empty_listen_starts_no_server(redis_url: str, tmp_path: Path) -> None:
    env = worker_env(redis_url, tmp_path / "state")  # the harness sets [http] listen = ""
    with workers(WorkerProcess(env, tmp_path)) as (worker,):
        await worker.wait_ready()
        worker.send(signal.SIGTERM)
        assert await worker.wait_exit() == 0
    assert any("HTTP server disabled" in line["message"] for line in worker.lines())
