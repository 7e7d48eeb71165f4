"""``vultr-scraper health`` and ``vultr-scraper alerts`` against real Redis and receivers."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec
from click.testing import CliRunner, Result
from redis.asyncio import Redis

from tests.fakes.http_targets import HttpTarget, Reply
from vultr_scraper_core.store.changes import ChangeFeed
from vultr_scraper_core.store.health import HealthStore, ProbeResult
from vultr_scraper_jobs.notify import SIGNATURE_HEADER, verify
from vultr_scraper_worker.cli import cli

PREFIX = "vs"


def write_config(tmp_path: Path, redis_url: str, extra: str = "") -> Path:
    path = tmp_path / "config.toml"
    path.write_text(
        f"""
[redis]
url = "{redis_url}"

[health]
check_vultr_api = false
failure_threshold = 2

[[health.endpoints]]
name = "api"
url = "http://127.0.0.1:9/api"

[[health.endpoints]]
name = "site"
url = "http://watcher:pr0be-pw@127.0.0.1:9/"
interval = 300
{extra}
"""
    )
    return path


def invoke(config: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--config", str(config), *args], catch_exceptions=False)


async def seed_health(redis_url: str) -> None:
    redis = Redis.from_url(redis_url)
    try:
        store, feed = HealthStore(redis, PREFIX), ChangeFeed(redis, PREFIX)
        now = datetime.now(UTC)
        history = [(True, 40.0), (True, 60.0), (False, None), (False, None)]
        for index, (ok, latency) in enumerate(history):
            result = ProbeResult(
                at=now - timedelta(minutes=len(history) - index),
                ok=ok,
                status=200 if ok else None,
                latency_ms=latency,
                error="" if ok else "connection failed: Connection refused",
            )
            await store.record(
                "api", "http://x", result, failure_threshold=2, success_threshold=2, feed=feed
            )
    finally:
        await redis.aclose()


def test_health_json_and_table(tmp_path: Path, redis_url: str) -> None:
    asyncio.run(seed_health(redis_url))
    config = write_config(tmp_path, redis_url)

    result = invoke(config, "health", "--json")
    assert result.exit_code == 0, result.output
    document = msgspec.json.decode(result.output)
    api, site = document["endpoints"]
    assert (api["name"], api["state"], api["checks"], api["failures_in_a_row"]) == (
        "api", "down", 4, 2,
    )  # fmt: skip
    assert api["last_ok"] is False
    assert api["last_error"] == "connection failed: Connection refused"
    assert api["uptime"] == {"24h": 0.5, "7d": 0.5, "30d": 0.5}
    assert api["avg_latency_ms_24h"] == 50.0
    assert (site["state"], site["checks"], site["uptime"]["24h"]) == ("unknown", 0, None)
    assert site["url"] == "http://watcher:***@127.0.0.1:9/"
    assert "pr0be-pw" not in result.output

    table = invoke(config, "health")
    assert table.exit_code == 0, table.output
    lines = table.output.splitlines()
    assert lines[0].split() == [
        "ENDPOINT", "STATE", "SINCE", "LAST_CHECK", "STATUS", "LATENCY_MS", "UP_24H", "UP_7D",
    ]  # fmt: skip
    api_line = next(line for line in lines if line.startswith("api "))
    assert "DOWN" in api_line and "50.00%" in api_line and "FAIL" in api_line
    assert "api: connection failed: Connection refused" in lines


def test_alerts_list(tmp_path: Path, redis_url: str) -> None:
    config = write_config(
        tmp_path,
        redis_url,
        """
[[sinks]]
name = "hook"
url = "http://127.0.0.1:9/hook"

[[alerts]]
name = "gpu-eu"
kinds = ["back_in_stock", "price_dropped"]
sinks = ["hook"]
gpu_type = "nvidia"
max_hourly = 2.0
regions = ["fra", "ams"]
in_stock = true
""",
    )
    result = invoke(config, "alerts", "list")
    assert result.exit_code == 0, result.output
    assert "gpu-eu" in result.output
    assert "gpu_type=nvidia max_hourly=2.0 in_stock=True regions=fra,ams" in result.output
    document = msgspec.json.decode(invoke(config, "alerts", "list", "--json").output)
    assert document["alerts"][0]["kinds"] == ["back_in_stock", "price_dropped"]


async def test_alerts_test_sends_to_every_sink(tmp_path: Path, redis_url: str) -> None:
    secret = tmp_path / "hook.secret"
    secret.write_text("s3cret\n")
    async with HttpTarget() as receiver:
        receiver.reply("/broken", Reply(status=503))
        sinks = f"""
[[sinks]]
name = "hook"
url = "{receiver.url("/hook")}"
secret_file = "{secret}"

[[sinks]]
name = "chat"
kind = "slack"
url = "{receiver.url("/chat")}"

[[sinks]]
name = "broken"
kind = "ntfy"
url = "{receiver.url("/broken")}"

[[alerts]]
name = "gpu-eu"
kinds = ["back_in_stock"]
sinks = ["hook", "chat"]
regions = ["ams"]

[[alerts]]
name = "all"
kinds = ["endpoint_down"]
sinks = ["hook", "broken"]
"""
        config = write_config(tmp_path, redis_url, sinks)
        ok = await asyncio.to_thread(invoke, config, "alerts", "test", "gpu-eu")
        assert ok.exit_code == 0, ok.output
        assert "hook: ok (HTTP 200)" in ok.output and "chat: ok (HTTP 200)" in ok.output
        [hook] = receiver.requests_to("/hook")
        assert verify("s3cret", hook.body, hook.headers[SIGNATURE_HEADER])
        text = msgspec.json.decode(receiver.requests_to("/chat")[0].body)["text"]
        assert text == "[gpu-eu (test)] vcg-a100-1c-6g-4vram back in stock in ams"

        failing = await asyncio.to_thread(invoke, config, "alerts", "test", "all", "--json")
        assert failing.exit_code == 1
        document = msgspec.json.decode(failing.output)
        outcomes = {row["sink"]: (row["ok"], row["http_status"]) for row in document["sinks"]}
        assert outcomes == {"hook": (True, 200), "broken": (False, 503)}

        unknown = await asyncio.to_thread(invoke, config, "alerts", "test", "nope")
        assert unknown.exit_code == 2
