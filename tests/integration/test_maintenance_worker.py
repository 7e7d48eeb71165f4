"""Maintenance end to end: a real worker, the real CLI in subprocesses, loopback receivers.

An endpoint answers 503 and an alert watches it with a webhook sink. ``vultr-scraper mute`` puts
it in maintenance: the worker still probes it (DOWN, recorded), the API, the status page and its
badge say "in maintenance", and the dispatcher holds the alert back. ``vultr-scraper unmute``
ends the mute: the next dispatcher run announces the outage that still lasts, once.
"""

from __future__ import annotations

import asyncio
import json
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from redis.asyncio import Redis

from tests.fakes.http_targets import HttpTarget, Reply
from tests.redis_server import env_without_project_vars, free_port
from tests.worker.processes import ROOT, WorkerProcess, eventually, worker_env, workers
from vultr_scraper_core.store.deliveries import DeliveryLedger

pytestmark = pytest.mark.slow

SVG = "{http://www.w3.org/2000/svg}"


def write_config(path: Path, redis_url: str, target: HttpTarget, secret: Path) -> None:
    # Every job runs when the test enqueues it: a scheduled check or dispatch on the minute
    # could otherwise run between the worker's start and the mute, and send the alert.
    disabled = "\n".join(
        f"[schedules.{name}]\nenabled = false\n"
        for name in (
            "scrape_catalog",
            "scrape_availability",
            "check_health",
            "dispatch_alerts",
            "prune",
            "move_history",
        )
    )
    path.write_text(
        f"""
[redis]
url = "{redis_url}"

[vultr]
base_url = "{target.url("/v2")}"

[http]
public_badges = true

[health]
check_vultr_api = false
failure_threshold = 1

[[health.endpoints]]
name = "shop"
url = "{target.url("/health")}"

[[sinks]]
name = "hook"
url = "{target.url("/hook")}"
secret_file = "{secret}"

[[alerts]]
name = "shop-down"
kinds = ["endpoint_down"]
endpoint = "shop"
remind_every = 3600
sinks = ["hook"]

{disabled}
"""
    )


async def cli(config: Path, *args: str) -> tuple[int, str]:
    """``vultr-scraper`` in a subprocess, without blocking the loop the receivers run on."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "vultr_scraper_worker",
        "--config",
        str(config),
        *args,
        cwd=ROOT,
        env=env_without_project_vars(),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await process.communicate()
    return int(process.returncode or 0), output.decode()


async def get_json(session: aiohttp.ClientSession, url: str) -> Any:
    async with session.get(url) as response:
        assert response.status == 200, await response.text()
        return await response.json()


async def badge_value(session: aiohttp.ClientSession, url: str) -> str:
    async with session.get(url) as response:
        assert response.status == 200
        root = ET.fromstring(await response.read())
    value = root.find(f".//{SVG}text[@class='value']")
    assert value is not None
    return value.text or ""


async def test_mute_from_the_cli_holds_alerts_on_a_running_worker(
    tmp_path: Path, redis_url: str, redis: Redis
) -> None:
    secret = tmp_path / "hook.secret"
    secret.write_text("s3cret\n")
    config = tmp_path / "config.toml"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    async with HttpTarget() as target, aiohttp.ClientSession() as session:
        target.reply("/health", Reply(status=503))
        write_config(config, redis_url, target, secret)
        # Past the dispatcher's first-run baseline: every event from now on is news.
        await DeliveryLedger(redis, "vs").set_cursor("0-1")
        env = worker_env(
            redis_url,
            tmp_path / "state",
            VULTR_SCRAPER_CONFIG=str(config),
            VULTR_SCRAPER__HTTP__LISTEN=f"127.0.0.1:{port}",
        )
        worker = WorkerProcess(env, tmp_path, jobs_module=None)
        with workers(worker):
            await worker.wait_ready()
            status, output = await cli(config, "mute", "shop", "--for", "1h", "--reason", "db")
            assert status == 0, output
            assert "shop: muted until" in output

            assert (await cli(config, "enqueue", "check-health"))[0] == 0

            async def shop_down() -> bool:
                health = await get_json(session, f"{base}/api/v1/health")
                [shop] = health["endpoints"]
                return bool(shop["state"] == "down")

            await eventually(shop_down, message=worker.output)
            [shop] = (await get_json(session, f"{base}/api/v1/health"))["endpoints"]
            assert shop["in_maintenance"] is True
            assert shop["maintenance"]["reason"] == "muted: db"
            async with session.get(f"{base}/") as response:
                assert "in maintenance" in await response.text()
            value = await badge_value(session, f"{base}/badge/endpoint/shop.svg")
            assert value == "maintenance · 0.00% 24h"

            assert (await cli(config, "enqueue", "dispatch-alerts"))[0] == 0
            ledger = DeliveryLedger(redis, "vs")

            async def held_back() -> bool:
                return any(record.outcome == "muted" for record in await ledger.recent())

            await eventually(held_back, message=worker.output)
            assert target.requests_to("/hook") == []

            status, output = await cli(config, "unmute", "shop")
            assert status == 0, output
            assert (await cli(config, "enqueue", "dispatch-alerts"))[0] == 0

            async def announced() -> bool:
                return bool(target.requests_to("/hook"))

            await eventually(announced, message=worker.output)
            value = await badge_value(session, f"{base}/badge/endpoint/shop.svg")
            assert value == "down · 0.00% 24h"
        [request] = target.requests_to("/hook")
        body = json.loads(request.body)
        assert body["reminder"] == 1 and "still DOWN" in body["text"]
