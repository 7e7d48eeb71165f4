"""The rest of the catalogue through the CLI (``apps``, ``k8s-versions``, ``storage-clusters``,
``isos``, ``databases``; ``--json``, ``--at``), the API and its OpenAPI document, the Atom feed
and the status page: scraped from the fake Vultr API over loopback into a real Redis."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import pytest
from click.testing import Result
from redis.asyncio import Redis

from tests.fakes.vultr_api import FakeVultrAPI
from tests.worker.api_harness import running_api
from tests.worker.cli_harness import cli_runner
from vultr_scraper_core.config import CatalogConfig, ClientConfig, Config, Secrets, VultrConfig
from vultr_scraper_core.http import HttpClient, create_session
from vultr_scraper_jobs.catalog import scrape_vultr_pricing
from vultr_scraper_jobs.context import make_context
from vultr_scraper_worker.cli import cli

KEY = "test-api-key"


@pytest.fixture
def api() -> Iterator[FakeVultrAPI]:
    fake = FakeVultrAPI()
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(fake.start(), loop).result(10)
    try:
        yield fake
    finally:
        asyncio.run_coroutine_threadsafe(fake.stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


@pytest.fixture
def config(tmp_path: Path, redis_url: str, api: FakeVultrAPI) -> Path:
    key_file = tmp_path / "vultr-api-key"
    key_file.write_text(KEY + "\n")
    path = tmp_path / "config.toml"
    path.write_text(
        f"""
[redis]
url = "{redis_url}"

[vultr]
base_url = "{api.base_url}"
api_key_file = "{key_file}"

[client]
rate_limit = 0
max_attempts = 2
backoff_base = 0.01
backoff_cap = 0.01
"""
    )
    return path


def invoke(config: Path, *args: str) -> Result:
    return cli_runner().invoke(cli, ["--config", str(config), *args], catch_exceptions=False)


def json_of(result: Result) -> Any:
    assert result.exit_code == 0, result.output
    return msgspec.json.decode(result.stdout)


def test_cli_lists_every_collection_now_and_as_of(config: Path, api: FakeVultrAPI) -> None:
    run = json_of(invoke(config, "run", "scrape-catalog"))
    assert run["status"] == "success" and "errors" not in run
    assert run["counts"]["databases"] == 3
    time.sleep(0.01)
    before = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    time.sleep(0.01)
    api.catalogue.apps.pop(0)
    api.catalogue.k8s_versions.insert(0, "v1.34.0+1")
    api.catalogue.storage_clusters[2]["deploy"] = "yes"
    api.catalogue.databases[0]["monthly_cost"] = 16
    assert json_of(invoke(config, "run", "scrape-catalog"))["status"] == "success"

    apps = json_of(invoke(config, "apps", "--json"))
    assert [app["id"] for app in apps["apps"]] == [2, 1028] and apps["count"] == 2
    old_apps = json_of(invoke(config, "apps", "--at", before, "--json"))
    assert [app["id"] for app in old_apps["apps"]] == [1, 2, 1028]
    market = json_of(invoke(config, "apps", "--type", "marketplace", "--json"))
    assert [app["name"] for app in market["apps"]] == ["OpenLiteSpeed WordPress"]

    versions = json_of(invoke(config, "k8s-versions", "--json"))
    assert [v["id"] for v in versions["k8s_versions"]][:2] == ["v1.34.0+1", "v1.33.0+1"]
    old_versions = json_of(invoke(config, "k8s-versions", "--at", before, "--json"))
    assert "v1.34.0+1" not in [v["id"] for v in old_versions["k8s_versions"]]

    clusters = json_of(invoke(config, "storage-clusters", "--region", "fra", "--json"))
    assert [(c["id"], c["deploy"]) for c in clusters["storage_clusters"]] == [(9, "yes")]
    old = json_of(invoke(config, "storage-clusters", "--region", "fra", "--at", before, "--json"))
    assert [(c["id"], c["deploy"]) for c in old["storage_clusters"]] == [(9, "no")]

    isos = json_of(invoke(config, "isos", "--json"))
    assert isos["count"] == 2

    databases = json_of(invoke(config, "databases", "--region", "ams", "--json"))
    assert {plan["id"] for plan in databases["databases"]} == {
        "vultr-dbaas-hobbyist-cc-1-25-1",
        "vultr-dbaas-startup-cc-1-55-2",
    }
    prices = {(row["plan"], row["region"]): row["monthly_cost"] for row in databases["prices"]}
    assert prices == {
        ("vultr-dbaas-hobbyist-cc-1-25-1", "ams"): "16",
        ("vultr-dbaas-startup-cc-1-55-2", "ams"): "30",
    }
    old_db = json_of(invoke(config, "databases", "--at", before, "--region", "ams", "--json"))
    assert old_db["prices"][0]["monthly_cost"] == "15"

    table = invoke(config, "databases", "--engine", "pg")
    assert table.exit_code == 0
    lines = table.stdout.splitlines()
    assert lines[0].split()[:3] == ["PLAN", "REGION", "MONTHLY_COST"]
    assert len(lines) == 1 + 3 + 3 + 2  # one row per (plan, region)
    clusters_table = invoke(config, "storage-clusters")
    assert clusters_table.stdout.splitlines()[0].split() == ["ID", "REGION", "HOSTNAME", "DEPLOY"]

    changes = json_of(invoke(config, "changes", "--limit", "1000", "--json"))
    kinds = {event["kind"] for event in changes["changes"]}
    assert {"app_removed", "k8s_version_added", "storage_availability_changed"} <= kinds


def test_listing_commands_fail_clearly_on_bad_input(config: Path) -> None:
    result = invoke(config, "apps", "--at", "yesterday-ish")
    assert result.exit_code == 2 and "--at" in result.stderr
    result = invoke(config, "apps", "--type", "plugin")
    assert result.exit_code == 2


async def _scrape(redis: Redis, api: FakeVultrAPI) -> dict[str, Any]:
    config = Config(
        vultr=VultrConfig(base_url=api.base_url),
        client=ClientConfig(rate_limit=0, max_attempts=2, backoff_base=0.001, backoff_cap=0.001),
        catalog=CatalogConfig(),
    )
    async with create_session(config.client) as session:
        http = HttpClient(session, config.client)
        ctx = make_context(
            config=config, secrets=Secrets(vultr_api_key=KEY), redis=redis, http=http
        )
        return await scrape_vultr_pricing(ctx)


async def test_api_lists_every_collection_and_documents_it(redis: Redis, redis_url: str) -> None:
    async with FakeVultrAPI() as fake:
        assert (await _scrape(redis, fake))["status"] == "success"
        at = datetime.now(UTC)
        fake.catalogue.regions[0]["options"].append("load_balancers")
        fake.catalogue.storage_clusters[0]["deploy"] = "no"
        assert (await _scrape(redis, fake))["status"] == "success"
    async with running_api(redis_url) as api:
        apps = await api.json("GET", "/api/v1/apps?type=one-click")
        assert [app["id"] for app in apps["apps"]] == [1, 2] and apps["count"] == 2
        versions = await api.json("GET", "/api/v1/k8s-versions")
        assert versions["k8s_versions"][0]["id"] == "v1.33.0+1"
        clusters = await api.json("GET", "/api/v1/storage-clusters?region=ewr")
        assert clusters["storage_clusters"][0]["deploy"] == "no"
        stamp = at.isoformat().replace("+00:00", "Z")
        then = await api.json("GET", f"/api/v1/storage-clusters?region=ewr&at={stamp}")
        assert then["storage_clusters"][0]["deploy"] == "yes" and then["at"]
        isos = await api.json("GET", "/api/v1/isos")
        assert isos["count"] == 2
        databases = await api.json("GET", "/api/v1/databases?engine=mysql&region=fra")
        assert {row["region"] for row in databases["prices"]} == {"fra"}
        assert all(isinstance(row["monthly_cost"], str) for row in databases["prices"])
        await api.json("GET", "/api/v1/apps?type=plugin", status=400)
        await api.json("GET", "/api/v1/isos?at=not-a-time", status=400)
        await api.json("GET", "/api/v1/isos?bogus=1", status=400)

        document = await api.json("GET", "/api/v1/openapi.json")
        for path in ("apps", "k8s-versions", "storage-clusters", "isos", "databases"):
            assert f"/api/v1/{path}" in document["paths"], path
        catalog = await api.json("GET", "/api/v1/catalog")
        assert catalog["counts"]["apps"] == 3 and catalog["counts"]["databases"] == 3

        _, feed = await api.text("/feed.atom?kind=region_service_added")
        assert "load_balancers now offered in ewr" in feed
        _, feed = await api.text("/feed.atom?kind=storage_availability_changed")
        assert "object-storage cluster 2 in ewr closed to new subscriptions" in feed
        _, page = await api.text("/")
        assert "3 apps" in page and "3 Kubernetes versions" in page
        assert "3 database plans" in page
        assert "not updated" not in page and catalog["errors"] == {}


async def test_a_refused_key_is_shown_until_a_scrape_reads_the_plans(
    redis: Redis, redis_url: str
) -> None:
    async with FakeVultrAPI() as fake:
        fake.api_key = "rotated"
        assert (await _scrape(redis, fake))["errors"]["databases"]
        async with running_api(redis_url) as api:
            catalog = await api.json("GET", "/api/v1/catalog")
            _, page = await api.text("/")
        assert "refused the API key" in catalog["errors"]["databases"]
        assert KEY not in catalog["errors"]["databases"]
        assert "Part of the catalogue not updated" in page and "vultr.api_key_file" in page
        fake.api_key = KEY
        assert "errors" not in await _scrape(redis, fake)
        async with running_api(redis_url) as api:
            assert (await api.json("GET", "/api/v1/catalog"))["errors"] == {}
