"""The one-Lua-call job claim when the connection drops in the middle of it: a real TCP proxy
in front of the real Redis cuts the worker's connection on the claim (EVALSHA), before Redis
ran it or after (the claim happened, its reply is lost). Either way the job runs exactly once:
a claim that never ran is sent again; one whose reply was lost holds the job until its
in-progress key expires, and the job then runs on a later poll, never twice."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from arq.connections import ArqRedis

from tests.fakes.tcp_proxy import CuttingProxy, When
from vultr_scraper_core.config import load_config
from vultr_scraper_worker.enqueue import close_client, enqueue_job, queue_client
from vultr_scraper_worker.plans import load_job_set
from vultr_scraper_worker.project_worker import _CLAIM_SCRIPT
from vultr_scraper_worker.worker_main import build_worker

IN_PROGRESS_TTL = 1.0  # seconds; by default a job's lease is its timeout + 10 s


@pytest.fixture
async def proxy(redis_url: str) -> AsyncIterator[CuttingProxy]:
    target = urlsplit(redis_url)
    assert target.hostname is not None and target.port is not None
    proxy = CuttingProxy(target.hostname, target.port)
    await proxy.start()
    yield proxy
    await proxy.stop()


@pytest.mark.parametrize("when", ["before", "after"])
async def test_a_job_claimed_over_a_dropped_connection_runs_exactly_once(
    queue: ArqRedis, redis_url: str, tmp_path: Path, proxy: CuttingProxy, when: When
) -> None:
    loaded = load_config(
        None,
        environ={
            "VULTR_SCRAPER__REDIS__URL": redis_url,
            "VULTR_SCRAPER__PATHS__STATE_DIR": str(tmp_path),
            "VULTR_SCRAPER__HTTP__LISTEN": "",
            "VULTR_SCRAPER__WORKER__POLL_DELAY": "0.05",
        },
    )
    # Loaded beforehand, so the first EVALSHA runs the claim (no NOSCRIPT round first).
    await queue.script_load(_CLAIM_SCRIPT)
    job_id = await enqueue_job(queue, "noop", "t:claim")
    assert job_id is not None
    through_proxy = queue_client(
        f"redis://127.0.0.1:{proxy.port}/0", queue_name="arq:queue", outage_budget=5
    )
    worker, lifecycle = build_worker(
        loaded,
        through_proxy,
        jobs=load_job_set("tests.worker.sample_quiet"),
        burst=True,
        handle_signals=False,
    )
    worker.leases = dict.fromkeys(worker.leases, IN_PROGRESS_TTL)
    proxy.arm(b"EVALSHA", when)
    started = time.monotonic()
    try:
        async with asyncio.timeout(30):
            await worker.main()
    finally:
        await lifecycle.aclose()
        await close_client(through_proxy)
    elapsed = time.monotonic() - started

    assert proxy.cuts == 1
    tries = await queue.lrange("t:claim:tries", 0, -1)  # type: ignore[misc]
    assert [entry.split()[:2] for entry in map(bytes.decode, tries)] == [[job_id, "1"]]
    assert await queue.zcard("arq:queue") == 0
    if when == "after":
        # The lost claim held the job until its in-progress key expired.
        assert elapsed >= IN_PROGRESS_TTL * 0.9
