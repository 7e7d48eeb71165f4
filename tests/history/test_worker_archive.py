"""A real worker process with a broken archive: reads that need a corrupt or missing file answer
a clear error (and the log names the file), everything else keeps working, and the worker goes
on moving history."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from bench.history_sim import SimulationSpec, simulate
from redis.asyncio import Redis

from tests.redis_server import free_port
from tests.worker.processes import WorkerProcess, eventually, queue_for, worker_env, workers
from vultr_scraper_core.history.files import open_archive
from vultr_scraper_core.history.window import Window, day_name
from vultr_scraper_worker.enqueue import enqueue_job

pytestmark = pytest.mark.slow

DAYS = 6


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


async def get(url: str) -> tuple[int, Any]:
    status, body = await asyncio.to_thread(_get, url)
    return status, body


async def test_a_broken_archive_file_is_named_and_does_not_stop_the_worker(
    redis: Redis, redis_url: str, tmp_path: Path
) -> None:
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    start = today - timedelta(days=DAYS)
    await simulate(redis, "vs", SimulationSpec(days=DAYS, start=start))
    archive = tmp_path / "archive"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    off = {
        f"VULTR_SCRAPER__SCHEDULES__{name}__ENABLED": "false"
        for name in ("SCRAPE_CATALOG", "SCRAPE_AVAILABILITY", "CHECK_HEALTH", "MOVE_HISTORY")
    }
    env = worker_env(
        redis_url,
        tmp_path / "state",
        VULTR_SCRAPER__HTTP__LISTEN=f"127.0.0.1:{port}",
        VULTR_SCRAPER__HISTORY__ARCHIVE=str(archive),
        VULTR_SCRAPER__HISTORY__WINDOW_DAYS="2",
        VULTR_SCRAPER__HISTORY__MAX_DAYS_PER_RUN="2",
        **off,
    )
    window = Window(redis, "vs", open_archive(str(archive)))
    async with queue_for(redis_url) as queue:
        with workers(WorkerProcess(env, tmp_path, jobs_module=None)) as (worker,):
            await worker.wait_ready()
            await enqueue_job(queue, "move-history", job_id="move:1")
            await eventually(lambda: _days_moved(window, 2), message=worker.output, timeout=60)
            first = await window.day(start)
            second = await window.day(start + timedelta(days=1))
            assert first is not None and second is not None
            corrupt = archive / first.files["stock_checkpoints"]
            corrupt.write_bytes(b"PAR1 this is not a parquet file")
            missing = archive / second.files["changes"]
            missing.unlink()

            at = (start + timedelta(hours=5)).isoformat().replace("+00:00", "Z")
            status, body = await get(f"{base}/api/v1/plans?at={at}")
            assert status == 500
            error = json.loads(body)["error"]
            assert "history archive could not be read" in error
            status, body = await get(f"{base}/api/v1/export/changes.csv")
            assert status == 500
            await eventually(
                lambda: _logged(worker, corrupt.name, "unreadable"), message=worker.output
            )
            await eventually(
                lambda: _logged(worker, missing.name, "missing"), message=worker.output
            )

            # What does not need those files still answers.
            recent = (today - timedelta(hours=20)).isoformat().replace("+00:00", "Z")
            status, body = await get(f"{base}/api/v1/plans?at={recent}")
            assert status == 200 and json.loads(body)["count"] > 0
            status, _ = await get(f"{base}/api/v1/plans")
            assert status == 200

            # And the worker goes on moving history past the broken days.
            await enqueue_job(queue, "move-history", job_id="move:2")
            await eventually(
                lambda: _days_moved(window, DAYS - 2), message=worker.output, timeout=60
            )
            assert worker.running()
    days = [entry.day for entry in await window.days()]
    assert days == [day_name(start + timedelta(days=n)) for n in range(DAYS - 2)]


async def _days_moved(window: Window, count: int) -> bool:
    return len(await window.days()) >= count


async def _logged(worker: WorkerProcess, *parts: str) -> bool:
    return any(all(part in line for part in parts) for line in worker.raw_lines())
