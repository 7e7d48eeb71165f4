"""A real Prometheus server scraping a real worker, running the PromQL that docs/http-api.md shows.

The worker (a ``vultr-scraper worker`` subprocess on the test's private Redis) serves
``/metrics``; Debian's ``prometheus`` scrapes it every second. Job runs are recorded between
scrapes so that ``rate`` sees counters grow. Every query in the docs' ``promql`` block and every
``expr:`` of the example alerts is sent to Prometheus' HTTP API and must evaluate without error;
the label the queries filter on (``job_name``) must survive the scrape as it is, beside the
``job`` label Prometheus itself sets. ``promtool check metrics`` must have nothing to say.

Needs Debian's ``prometheus`` package (``.ci/run`` installs it); skipped with the reason when the
binary is absent.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import shutil
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from tests.redis_server import free_port
from tests.worker.api_harness import cloud_plan, commit_catalogue, record_run
from tests.worker.processes import WorkerProcess, eventually, worker_env, workers

PROMETHEUS = shutil.which("prometheus")
PROMTOOL = shutil.which("promtool")
ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs" / "http-api.md"
SCRAPE_JOB = "vultr-scraper"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        PROMETHEUS is None, reason="prometheus is not installed: apt-get install prometheus"
    ),
]


def documented_queries() -> list[str]:
    """The ``promql`` block's queries and the example alerts' ``expr:`` lines."""
    text = DOCS.read_text()
    block = re.search(r"```promql\n(.*?)```", text, re.S)
    assert block, "docs/http-api.md has no promql block"
    queries = [
        line.strip()
        for line in block.group(1).splitlines()
        if line.strip() and not line.startswith("#")
    ]
    alerts = re.search(r"Example alerts:\n\n```yaml\n(.*?)```", text, re.S)
    assert alerts, "docs/http-api.md has no example alerts"
    queries += re.findall(r"^\s*expr: (.+)$", alerts.group(1), re.M)
    return queries


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.load(response)


async def query(base: str, expr: str) -> list[dict[str, Any]]:
    url = f"{base}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    try:
        document = await asyncio.to_thread(_get, url)
    except urllib.error.HTTPError as error:
        raise AssertionError(f"{expr}: HTTP {error.code}: {error.read().decode()}") from error
    assert document["status"] == "success", (expr, document)
    assert document["data"]["resultType"] == "vector", (expr, document)
    result: list[dict[str, Any]] = document["data"]["result"]
    return result


@contextmanager
def prometheus(directory: Path, target: str) -> Iterator[str]:
    assert PROMETHEUS is not None
    port = free_port()
    config = directory / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        f"scrape_configs:\n  - job_name: {SCRAPE_JOB}\n"
        f"    static_configs:\n      - targets: ['{target}']\n"
    )
    log = directory / "prometheus.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                PROMETHEUS,
                f"--config.file={config}",
                f"--storage.tsdb.path={directory / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--web.enable-lifecycle",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


async def test_prometheus_runs_the_documented_queries(
    redis_url: str, redis: Redis, tmp_path: Path
) -> None:
    now = datetime.now(UTC)
    # A catalogue last scraped three hours ago: both freshness alerts must fire.
    await commit_catalogue(
        redis, [cloud_plan("vc2-1c-1gb", "5.00", locations=["ewr"])], at=now - timedelta(hours=3)
    )
    for duration in (0.3, 2.0):
        await record_run(redis, "scrape-catalog", "success", duration)
    port = free_port()
    env = worker_env(redis_url, tmp_path / "state", VULTR_SCRAPER__HTTP__LISTEN=f"127.0.0.1:{port}")
    with (
        workers(WorkerProcess(env, tmp_path)) as (worker,),
        prometheus(tmp_path, f"127.0.0.1:{port}") as base,
    ):
        await worker.wait_ready()

        async def scraped() -> bool:
            try:
                found = await query(base, f'up{{job="{SCRAPE_JOB}"}} == 1')
            except (urllib.error.URLError, ConnectionError, AssertionError):
                return False
            return bool(found)

        await eventually(scraped, timeout=60, interval=0.5, message=worker.output)
        # Counters grow between scrapes, so rate() has something to see.
        for round_ in range(4):
            await record_run(redis, "scrape-catalog", "success", 0.3 + round_)
            await record_run(redis, "scrape-catalog", "failed", 7.0)
            await asyncio.sleep(1.2)

        async def rated() -> bool:
            rates = await query(base, "rate(vultr_scraper_job_runs_total[1m]) > 0")
            return bool(rates)

        await eventually(rated, timeout=30, interval=0.5, message="no counter grew in Prometheus")

        results = {expr: await query(base, expr) for expr in documented_queries()}
        raw = await query(base, "vultr_scraper_job_runs_total")
        metrics_text = await asyncio.to_thread(
            lambda: urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read()
        )

    # Our label arrives as it is, beside Prometheus' own job label (no exported_job).
    assert raw and all(series["metric"]["job"] == SCRAPE_JOB for series in raw)
    assert not any("exported_job" in series["metric"] for series in raw)
    assert {series["metric"]["job_name"] for series in raw} >= {"scrape-catalog"}
    for expr, result in results.items():
        if "job_name" in expr and "by (" in expr:
            names = {series["metric"].get("job_name") for series in result}
            assert "scrape-catalog" in names, (expr, result)
        if expr.startswith("histogram_quantile"):
            (series,) = [s for s in result if s["metric"]["job_name"] == "scrape-catalog"]
            assert math.isfinite(float(series["value"][1])) and float(series["value"][1]) > 0
        if "/ sum(" in expr:
            (series,) = result
            assert 0 < float(series["value"][1]) < 1, (expr, result)
        if expr.startswith("time() -"):
            (series,) = result
            assert float(series["value"][1]) > 7200, (expr, result)
    stale = [expr for expr in results if "catalog_fresh == 0" in expr]
    assert stale and all(results[expr] for expr in stale)
    if PROMTOOL is not None:
        check = await asyncio.to_thread(
            subprocess.run,
            [PROMTOOL, "check", "metrics"],
            input=metrics_text,
            capture_output=True,
            timeout=30,
            check=False,
        )
        assert check.returncode == 0 and not check.stdout.strip(), check
