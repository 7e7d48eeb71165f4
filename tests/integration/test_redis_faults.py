"""Redis faults against real processes: a full Redis (maxmemory + noeviction) and a stopped one
are outages the worker logs once, waits out and recovers from; the CLI says why in one line."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
from redis.asyncio import Redis
from redis.exceptions import OutOfMemoryError

from tests.fakes.vultr_api import FakeCatalogue, FakeVultrAPI, default_catalogue, make_plan
from tests.redis_server import RedisServer, free_port
from tests.worker.processes import (
    SCHEDULED_JOBS,
    WorkerProcess,
    cli,
    eventually,
    queue_for,
    worker_env,
    workers,
)
from vultr_scraper_worker.enqueue import enqueue_job

pytestmark = pytest.mark.slow

FILLER = 8 * 1024 * 1024  # more than maxmemory
CHUNK = 256 * 1024
LINE_BOUND = 800  # characters in any warning or error line (time, level, logger, cause)


@pytest.fixture
def full_redis() -> Iterator[RedisServer]:
    with RedisServer(options=("--maxmemory", "5mb", "--maxmemory-policy", "noeviction")) as server:
        yield server


async def _fill(url: str) -> None:
    """Grow one key until Redis refuses: from then on every write is refused."""
    client = Redis.from_url(url)
    try:
        with pytest.raises(OutOfMemoryError):
            for _ in range(FILLER // CHUNK):
                await client.append("filler", b"x" * CHUNK)
        with pytest.raises(OutOfMemoryError):
            await client.set("probe", "1")
    finally:
        await client.aclose()


async def _empty(url: str) -> None:
    client = Redis.from_url(url)
    try:
        await client.delete("filler")
    finally:
        await client.aclose()


async def _answers(port: int, path: str) -> tuple[int, float]:
    started = time.monotonic()
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session,
        session.get(f"http://127.0.0.1:{port}{path}") as response,
    ):
        await response.read()
        return response.status, time.monotonic() - started


def _warnings(worker: WorkerProcess) -> list[str]:
    return [
        str(line["message"])
        for line in worker.lines()
        if line.get("level") in ("WARNING", "ERROR", "CRITICAL")
    ]


async def test_a_full_redis_is_an_outage_not_a_crash(
    full_redis: RedisServer, tmp_path: Path
) -> None:
    port = free_port()
    env = worker_env(
        full_redis.url,
        tmp_path / "state",
        VULTR_SCRAPER__HTTP__LISTEN=f"127.0.0.1:{port}",
        VULTR_SCRAPER__WORKER__REDIS_OUTAGE_BUDGET="60",
    )
    # The scheduled sample job ticks every 2 s: each tick's enqueue is refused while Redis is full.
    with workers(WorkerProcess(env, tmp_path, jobs_module=SCHEDULED_JOBS)) as (worker,):
        await worker.wait_ready()
        await _fill(full_redis.url)
        await eventually(
            lambda: _has_event(worker, "redis.outage"), message=worker.output, timeout=15
        )
        await asyncio.sleep(5)  # two more ticks, refused too
        assert worker.running(), worker.output()
        status, _ = await _answers(port, "/metrics")
        assert status == 200

        outages = worker.events("redis.outage")
        assert len(outages) == 1, worker.output()
        assert outages[0]["level"] == "WARNING"
        assert outages[0]["message"].startswith(
            "Redis refuses writes: out of memory (maxmemory 5mb)"
        ), outages[0]
        assert all(len(line) < LINE_BOUND for line in _error_lines(worker)), worker.output()

        await _empty(full_redis.url)
        await eventually(
            lambda: _has_event(worker, "redis.recovered"), message=worker.output, timeout=15
        )
        (recovered,) = worker.events("redis.recovered")
        assert recovered["level"] == "INFO"
        assert recovered["outage_seconds"] >= 5
        # Jobs run again.
        async with queue_for(full_redis.url) as queue:
            job_id = await enqueue_job(queue, "noop", "after:oom")
            assert job_id is not None
            await eventually(lambda: _ran(queue, "after:oom"), message=worker.output, timeout=15)
        assert worker.running(), worker.output()


def _error_lines(worker: WorkerProcess) -> list[str]:
    return [line for line in worker.raw_lines() if '"level":"INFO"' not in line[:60]]


async def _has_event(worker: WorkerProcess, event: str) -> bool:
    return bool(worker.events(event))


async def _ran(queue: Redis, key: str) -> bool:
    return int(await queue.llen(f"{key}:tries")) > 0  # type: ignore[misc]


async def test_a_stopped_redis_is_logged_once_at_each_end(tmp_path: Path) -> None:
    with RedisServer() as server:
        env = worker_env(server.url, tmp_path / "state")
        with workers(WorkerProcess(env, tmp_path)) as (worker,):
            await worker.wait_ready()
            await asyncio.to_thread(server.restart, 6.0)  # down for 6 s, then back
            await eventually(
                lambda: _has_event(worker, "redis.recovered"), message=worker.output, timeout=30
            )
            assert worker.running(), worker.output()
            (outage,) = worker.events("redis.outage")
            assert outage["level"] == "WARNING"
            assert outage["message"].startswith("Redis unreachable"), outage
            (recovered,) = worker.events("redis.recovered")
            assert 3 <= recovered["outage_seconds"] <= 20, recovered
            async with queue_for(server.url) as queue:
                job_id = await enqueue_job(queue, "noop", "after:restart")
                assert job_id is not None
                await eventually(
                    lambda: _ran(queue, "after:restart"), message=worker.output, timeout=15
                )


async def test_a_full_redis_ends_a_worker_only_after_the_budget(
    full_redis: RedisServer, tmp_path: Path
) -> None:
    env = worker_env(
        full_redis.url, tmp_path / "state", VULTR_SCRAPER__WORKER__REDIS_OUTAGE_BUDGET="3"
    )
    with workers(WorkerProcess(env, tmp_path, jobs_module=SCHEDULED_JOBS)) as (worker,):
        await worker.wait_ready()
        await _fill(full_redis.url)
        filled = time.monotonic()
        status = await worker.wait_exit()
        lasted = time.monotonic() - filled
    assert status == 69, worker.output()
    assert lasted >= 3, lasted
    critical = [line for line in worker.lines() if line.get("level") == "CRITICAL"]
    assert len(critical) == 1, worker.output()
    assert critical[0]["message"].startswith("Redis refuses writes: out of memory")


async def test_run_against_a_full_redis_says_why_in_one_short_line(
    full_redis: RedisServer, tmp_path: Path
) -> None:
    # Enough plans that the refused write (one pipeline) quotes a large payload.
    catalogue = default_catalogue()
    big = FakeCatalogue(
        plans=catalogue.plans + [make_plan(f"vc2-{index}c-x") for index in range(400)],
        metal=catalogue.metal,
        regions=catalogue.regions,
        images=catalogue.images,
        availability=catalogue.availability,
    )
    async with FakeVultrAPI(big) as api:
        env = worker_env(
            full_redis.url,
            tmp_path / "state",
            VULTR_SCRAPER__VULTR__BASE_URL=api.base_url,
            VULTR_SCRAPER__WORKER__RETRY_BACKOFF_BASE="0.1",
            VULTR_SCRAPER__WORKER__RETRY_BACKOFF_CAP="0.2",
        )
        await _fill(full_redis.url)
        result = await cli(env, "run", "scrape-catalog", "--log-format", "json", "--quiet")
    assert result.returncode == 69, result.stderr[-2000:]
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("vultr-scraper: Redis refuses writes: out of memory"), last[:500]
    assert len(last) < 500
    assert all(len(line) < LINE_BOUND for line in result.stderr.splitlines())


ANSWER_BOUND = 3.0  # seconds: [http] redis_timeout (1 s) plus a loaded machine's slack


async def _probe_http(port: int) -> dict[str, tuple[int, float, str, str]]:
    """Status, seconds, content type and body of each surface, asked while Redis is away."""
    answers = {}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15)) as session:
        for path in ("/healthz", "/metrics", "/api/v1/plans", "/"):
            started = time.monotonic()
            async with session.get(f"http://127.0.0.1:{port}{path}") as response:
                body = await response.text()
                answers[path] = (
                    response.status,
                    time.monotonic() - started,
                    response.content_type,
                    body,
                )
    return answers


def _assert_degraded(answers: dict[str, tuple[int, float, str, str]]) -> None:
    for path, (_, seconds, _, _) in answers.items():
        assert seconds < ANSWER_BOUND, (path, seconds)
    status, _, kind, body = answers["/healthz"]
    assert (status, kind) == (503, "application/json")
    assert json.loads(body)["reason"].startswith("Redis is unavailable (")
    status, _, _, body = answers["/metrics"]
    assert status == 200
    assert "vultr_scraper_redis_up 0.0" in body
    status, _, kind, body = answers["/api/v1/plans"]
    assert (status, kind) == (503, "application/problem+json")
    problem = json.loads(body)
    assert problem["status"] == 503
    assert problem["title"] == "Service Unavailable"
    status, _, kind, body = answers["/"]
    assert (status, kind) == (503, "text/html")
    # A banner naming the outage over the last state the page read, not a bare error page.
    assert "<h2>Redis is unreachable</h2>" in body
    assert "the last time this page could read it" in body
    assert "Scheduled jobs" in body


async def test_http_answers_quickly_while_redis_is_stopped_or_hung(tmp_path: Path) -> None:
    port = free_port()
    with RedisServer() as server:
        env = worker_env(
            server.url,
            tmp_path / "state",
            VULTR_SCRAPER__HTTP__LISTEN=f"127.0.0.1:{port}",
            VULTR_SCRAPER__WORKER__REDIS_OUTAGE_BUDGET="120",
        )
        with workers(WorkerProcess(env, tmp_path)) as (worker,):
            await worker.wait_ready()
            assert (await _answers(port, "/metrics"))[0] == 200
            assert (await _answers(port, "/"))[0] == 200  # the status page has read Redis once
            assert server.process is not None
            # Hung: the process is there, the port accepts, nothing answers.
            server.process.send_signal(signal.SIGSTOP)
            try:
                _assert_degraded(await _probe_http(port))
            finally:
                server.process.send_signal(signal.SIGCONT)
            # Stopped: nothing listens.
            await asyncio.to_thread(server.stop)
            await asyncio.sleep(1.5)  # the worker has noticed too
            _assert_degraded(await _probe_http(port))
            assert worker.running(), worker.output()
            await asyncio.to_thread(server.start)
            await eventually(lambda: _status_is(port, "/api/v1/plans", 200), message=worker.output)


async def _status_is(port: int, path: str, status: int) -> bool:
    return (await _answers(port, path))[0] == status
