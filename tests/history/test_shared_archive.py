"""Two hosts, one Redis and one S3-compatible archive (moto's standalone server on loopback):
``vultr-scraper run move-history`` started on both at once, round after round, moves every day
exactly once, and either host then reads the whole history back from the bucket."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow.fs as pafs
import pytest
from bench.history_sim import SimulationSpec, simulate
from redis.asyncio import Redis

from tests.history.harness import history
from tests.redis_server import env_without_project_vars
from tests.worker.processes import cli
from vultr_scraper_core.history.files import Archive
from vultr_scraper_core.history.window import Window, day_name

pytestmark = pytest.mark.slow

BUCKET = "vultr-history"
DAYS = 9
WINDOW_DAYS = 3


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def s3_endpoint(tmp_path: Path) -> Iterator[str]:
    """moto's S3 server in its own process, with one empty bucket."""
    port = _free_port()
    log = (tmp_path / "moto.log").open("wb")
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError((tmp_path / "moto.log").read_text()) from None
                time.sleep(0.1)
        _filesystem(endpoint, create=True).create_dir(BUCKET)
        yield endpoint
    finally:
        server.terminate()
        server.wait(timeout=10)
        log.close()


def _filesystem(endpoint: str, *, create: bool = False) -> pafs.S3FileSystem:
    return pafs.S3FileSystem(
        access_key="test-access",
        secret_key="test-secret",
        region="us-east-1",
        endpoint_override=endpoint.removeprefix("http://"),
        scheme="http",
        allow_bucket_creation=create,
    )


def _archive(endpoint: str) -> Archive:
    return Archive(_filesystem(endpoint), f"{BUCKET}/history", local=False)


def _host_env(redis_url: str, endpoint: str, home: Path) -> dict[str, str]:
    home.mkdir(parents=True)
    access, secret = home / "s3-access", home / "s3-secret"
    access.write_text("test-access\n")
    secret.write_text("test-secret\n")
    access.chmod(0o600)
    secret.chmod(0o600)
    env = env_without_project_vars()
    env.update(
        {
            "VULTR_SCRAPER__REDIS__URL": redis_url,
            "VULTR_SCRAPER__PATHS__STATE_DIR": str(home / "state"),
            "VULTR_SCRAPER__HTTP__LISTEN": "",
            "VULTR_SCRAPER__HISTORY__WINDOW_DAYS": str(WINDOW_DAYS),
            "VULTR_SCRAPER__HISTORY__MAX_DAYS_PER_RUN": "2",
            "VULTR_SCRAPER__HISTORY__ARCHIVE": f"s3://{BUCKET}/history",
            "VULTR_SCRAPER__HISTORY__S3_ENDPOINT_URL": endpoint,
            "VULTR_SCRAPER__HISTORY__S3_REGION": "us-east-1",
            "VULTR_SCRAPER__HISTORY__S3_ACCESS_KEY_FILE": str(access),
            "VULTR_SCRAPER__HISTORY__S3_SECRET_KEY_FILE": str(secret),
        }
    )
    return env


async def test_two_hosts_share_one_redis_and_one_bucket(
    redis: Redis, redis_url: str, s3_endpoint: str, tmp_path: Path
) -> None:
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    start = today - timedelta(days=DAYS)
    spec = SimulationSpec(days=DAYS, start=start, price_changes_per_day=3)
    await simulate(redis, "vs", spec)  # the shared store (the default key prefix)
    await simulate(redis, "plain", spec)  # the same history, never moved: the reference
    hosts = [_host_env(redis_url, s3_endpoint, tmp_path / name) for name in ("a", "b")]

    results: list[subprocess.CompletedProcess[str]] = []
    for _ in range(6):  # more rounds than the backlog needs: the last ones find nothing
        round_results = await asyncio.gather(
            *(cli(env, "run", "move-history", "-q") for env in hosts)
        )
        results.extend(round_results)
    for result in results:
        assert result.returncode == 0, result.stderr
    moved = [day for result in results for day in json.loads(result.stdout).get("days", [])]
    # The window's start moved to 3 days before today, each day moved once, none skipped.
    expected = [day_name(start + timedelta(days=n)) for n in range(DAYS - WINDOW_DAYS)]
    assert sorted(moved) == expected, moved
    bucket = _filesystem(s3_endpoint)
    window = Window(redis, "vs", _archive(s3_endpoint))
    boundary = await window.boundary()
    assert boundary == today - timedelta(days=WINDOW_DAYS)
    listed = await window.days()
    assert [entry.day for entry in listed] == expected
    manifests = set((await window.months()).values())  # months whose days are all archived
    assert {path.partition("=")[2][:7] for path in manifests} == {
        day[:7] for day in expected if day[:7] < day_name(boundary)[:7]
    }

    # The bucket holds exactly the files the days and manifests list: no duplicate, no orphan.
    stored = {
        info.path.removeprefix(f"{BUCKET}/history/")
        for info in bucket.get_file_info(pafs.FileSelector(f"{BUCKET}/history", recursive=True))
        if info.type == pafs.FileType.File
    }
    assert stored == {path for entry in listed for path in entry.files.values()} | manifests

    # Either host reads the whole feed back, archive and window, as the reference has it.
    reference = await history(redis, "plain", None).changes(limit=10**6)
    for env in hosts:
        result = await cli(env, "export", "--what", "changes", "-q")
        assert result.returncode == 0, result.stderr
        ids = [row["id"] for row in csv.DictReader(io.StringIO(result.stdout))]
        assert ids == [event.id for event in reference]
    at = (start + timedelta(days=2, hours=5)).isoformat()
    answers = [await cli(env, "plans", "--at", at, "--json") for env in hosts]
    assert answers[0].returncode == 0, answers[0].stderr
    assert answers[0].stdout == answers[1].stdout and '"plan"' in answers[0].stdout
