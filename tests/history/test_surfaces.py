"""The command line and the HTTP API read history through the one query layer: ``plans --at``,
``changes --since/--until`` and ``export`` answer across the window's boundary what a store
that kept everything in Redis answers, and exports read back (csv, pyarrow, sqlite3) equal it."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, closing
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import msgspec
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from redis.asyncio import Redis

from tests.history.harness import SMALL, START, history, simulate_twins
from tests.worker.cli_harness import cli_env, invoke
from vultr_scraper_core.config import (
    Config,
    HttpConfig,
    LoadedConfig,
    RedisConfig,
    Secrets,
)
from vultr_scraper_core.config.schema import HistoryConfig
from vultr_scraper_core.history.query import History
from vultr_scraper_core.history.window import Window
from vultr_scraper_core.store.queries import PlanFilter, find_plans
from vultr_scraper_worker.api.server import start_http_server, stop_http_server
from vultr_scraper_worker.api.state import ApiState
from vultr_scraper_worker.enqueue import close_client, queue_client

TOKEN = "export-token-3b9a6c1d"
IN_ARCHIVE = START + timedelta(days=1, hours=7)
IN_WINDOW = START + timedelta(days=SMALL.days - 1, hours=3)


@dataclass
class Seeded:
    redis_url: str
    archive: Path
    boundary: datetime
    plain: History  # the same history, never moved (the reference)


@pytest.fixture
async def seeded(redis: Redis, redis_url: str, tmp_path: Path) -> Seeded:
    _, summaries, _ = await simulate_twins(redis, tmp_path / "archive")
    assert sum(len(summary.moved) for summary in summaries) == SMALL.days - 3
    boundary = await Window(redis, "moved").boundary()
    assert boundary is not None and IN_ARCHIVE < boundary < IN_WINDOW
    return Seeded(redis_url, tmp_path / "archive", boundary, history(redis, "plain", None))


def _env(seeded: Seeded, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    return {
        **cli_env(seeded.redis_url, tmp_path, monkeypatch),
        "VULTR_SCRAPER__REDIS__KEY_PREFIX": "moved",
        "VULTR_SCRAPER__HISTORY__ARCHIVE": str(seeded.archive),
    }


def _plain_rows(rows: list[Any]) -> list[Any]:
    found: list[Any] = json.loads(msgspec.json.encode(rows))
    return found


async def test_cli_plans_at_and_changes_read_the_archive(
    seeded: Seeded, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = _env(seeded, tmp_path, monkeypatch)
    for moment in (IN_ARCHIVE, seeded.boundary - timedelta(minutes=3), IN_WINDOW):
        result = await asyncio.to_thread(invoke, env, "plans", "--at", moment.isoformat(), "--json")
        assert result.exit_code == 0, result.stderr
        expected = await seeded.plain.plans(PlanFilter(), moment)
        assert expected
        assert json.loads(result.stdout)["plans"] == _plain_rows(expected), moment

    since, until = seeded.boundary - timedelta(hours=20), seeded.boundary + timedelta(hours=4)
    result = await asyncio.to_thread(
        invoke, env, "changes", "--since", since.isoformat(), "--until", until.isoformat(),
        "--limit", "100000", "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    expected_events = await seeded.plain.changes(since=since, until=until, limit=10**6)
    got = [event["id"] for event in json.loads(result.stdout)["changes"]]
    assert got == [event.id for event in expected_events]
    assert got[0] < f"{int(seeded.boundary.timestamp() * 1000)}" < got[-1]  # both sides


async def test_cli_exports_read_back_equal_the_store(
    seeded: Seeded, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = _env(seeded, tmp_path, monkeypatch)
    events = await seeded.plain.changes(limit=10**6)

    result = await asyncio.to_thread(invoke, env, "export", "--what", "changes", "-q")
    assert result.exit_code == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [row["id"] for row in rows] == [event.id for event in events]
    assert [row["kind"] for row in rows] == [str(event.kind) for event in events]

    target = tmp_path / "stock.parquet"
    result = await asyncio.to_thread(
        invoke, env, "export", "--what", "stock", "--format", "parquet", "--output", str(target)
    )
    assert result.exit_code == 0, result.stderr
    assert "export: stock as parquet" in result.stderr and result.stdout == ""
    back = pq.read_table(target).to_pylist()
    intervals = await seeded.plain.stock_intervals()
    assert [(r["plan"], r["region"], r["start"], r["end"]) for r in back] == [
        (i.plan, i.region, i.start, i.end) for i in intervals
    ]

    since = seeded.boundary - timedelta(days=1)
    result = await asyncio.to_thread(
        invoke, env, "export", "--what", "prices", "--format", "jsonl",
        "--since", since.isoformat(), "-q",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    expected_prices = await seeded.plain.price_intervals(since)
    assert len(lines) == len(expected_prices) > 0
    assert {(r["instance_name"], r["location"], r["price_kind"], r["price"]) for r in lines} == {
        (p.plan, p.region, p.price_kind, p.price) for p in expected_prices
    }

    snapshot = tmp_path / "catalogue.sqlite"
    result = await asyncio.to_thread(
        invoke, env, "export", "--what", "snapshot", "--output", str(snapshot)
    )
    assert result.exit_code == 0, result.stderr
    redis = Redis.from_url(seeded.redis_url)
    try:
        current = await find_plans(redis, "moved", PlanFilter())
    finally:
        await redis.aclose()
    # closing(): a connection's own context manager commits but never closes it.
    with closing(sqlite3.connect(snapshot)) as db:
        listed = db.execute("SELECT plan, region, monthly_cost FROM catalog").fetchall()
        plan_ids = {row[0] for row in db.execute("SELECT id FROM plans")}
        meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
    assert listed == [(r.plan, r.region, str(r.monthly_cost)) for r in current]
    assert plan_ids == {r.plan for r in current}
    assert meta["format"] == "vultr-scraper-snapshot/1"


def test_cli_export_refuses_bad_combinations_and_loses_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, redis_url: str
) -> None:
    env = cli_env(redis_url, tmp_path, monkeypatch)
    target = tmp_path / "kept.csv"
    target.write_text("earlier export\n")
    for args, message in (
        (("--what", "prices", "--format", "sqlite"), "only the snapshot is"),
        (("--what", "snapshot", "--format", "csv"), "snapshot is a SQLite file"),
        (("--what", "stock", "--since", "2026-01-02", "--until", "2026-01-01"), "before"),
        (("--what", "stocks",), "Invalid value"),
    ):  # fmt: skip
        result = invoke(env, "export", *args, "--output", str(target))
        assert result.exit_code == 2, (args, result.stdout)
        assert message in result.stderr, (args, result.stderr)
    assert target.read_text() == "earlier export\n"


async def test_cli_names_a_broken_archive_file(
    seeded: Seeded, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = _env(seeded, tmp_path, monkeypatch)
    broken = next((seeded.archive / "stock_checkpoints").rglob("*.parquet"))
    broken.write_bytes(b"PAR1 garbage")
    day = broken.name[:10]
    result = await asyncio.to_thread(invoke, env, "plans", "--at", f"{day}T05:00:00Z")
    assert result.exit_code == 1
    assert "history archive" in result.stderr and broken.name in result.stderr
    assert "unreadable" in result.stderr and "Traceback" not in result.stderr
    # Inside the window nothing needs that file.
    result = await asyncio.to_thread(invoke, env, "plans", "--at", IN_WINDOW.isoformat())
    assert result.exit_code == 0, result.stderr


@asynccontextmanager
async def serving(seeded: Seeded, **http: Any) -> AsyncIterator[str]:
    config = Config(
        redis=RedisConfig(url=seeded.redis_url, key_prefix="moved"),
        http=HttpConfig(listen="127.0.0.1:0", **http),
        history=HistoryConfig(archive=str(seeded.archive)),
    )
    queue = queue_client(seeded.redis_url, queue_name=config.redis.queue_name, outage_budget=5)
    loaded = LoadedConfig(config=config, secrets=Secrets(http_token=TOKEN), source="test")
    handle = await start_http_server(ApiState.create(loaded, queue, []))
    assert handle is not None
    try:
        yield handle.url
    finally:
        await stop_http_server(handle)
        await close_client(queue)


async def test_http_reads_and_exports_span_the_boundary(seeded: Seeded) -> None:
    auth = {"Authorization": f"Bearer {TOKEN}"}
    async with serving(seeded, protect_reads=True) as url, aiohttp.ClientSession() as http:
        async with http.get(f"{url}/api/v1/export/changes.csv") as response:
            assert response.status == 401  # reads are protected: the token is needed

        async with http.get(f"{url}/api/v1/export/changes.csv", headers=auth) as response:
            assert response.status == 200
            assert response.headers["Content-Type"].startswith("text/csv")
            body = await response.text()
        rows = list(csv.DictReader(io.StringIO(body)))
        events = await seeded.plain.changes(limit=10**6)
        assert [row["id"] for row in rows] == [event.id for event in events]
        assert response.headers["X-Rows"] == str(len(events))

        until = IN_ARCHIVE.isoformat().replace("+00:00", "Z")
        async with http.get(
            f"{url}/api/v1/export/catalog.parquet", params={"until": until}, headers=auth
        ) as response:
            assert response.status == 200
            table = pq.read_table(pa.BufferReader(await response.read()))
        expected = await seeded.plain.plans(PlanFilter(), IN_ARCHIVE)
        assert [(r["plan"], r["region"], r["in_stock"]) for r in table.to_pylist()] == [
            (row.plan, row.region, row.in_stock) for row in expected
        ]

        async with http.get(
            f"{url}/api/v1/plans", params={"at": until, "limit": "100000"}, headers=auth
        ) as response:
            assert response.status == 200, await response.text()
            document = await response.json()
        assert document["plans"] == _plain_rows(expected)

        since = (seeded.boundary - timedelta(hours=6)).isoformat().replace("+00:00", "Z")
        async with http.get(
            f"{url}/api/v1/changes", params={"since": since, "limit": "1000"}, headers=auth
        ) as response:
            page = await response.json()
        reference = await seeded.plain.changes(
            since=seeded.boundary - timedelta(hours=6), limit=1000
        )
        assert [event["id"] for event in page["events"]] == [event.id for event in reference]

        async with http.get(f"{url}/api/v1/export/snapshot.sqlite", headers=auth) as response:
            assert response.status == 200
            assert (await response.read()).startswith(b"SQLite format 3\x00")
        for bad, message in (
            ("/api/v1/export/snapshot.csv", "'what'"),
            ("/api/v1/export/prices.xlsx", "'format'"),
            ("/api/v1/export/everything.csv", "'what'"),
        ):
            async with http.get(url + bad, headers=auth) as response:
                assert response.status == 400, bad
                assert message in (await response.json())["error"]

    broken = next((seeded.archive / "changes").rglob("*.parquet"))
    broken.write_bytes(b"not parquet")
    async with serving(seeded) as url, aiohttp.ClientSession() as http:  # a fresh file cache
        async with http.get(f"{url}/api/v1/export/changes.csv") as response:
            assert response.status == 500
            error = (await response.json())["error"]
        assert "history archive could not be read" in error and str(seeded.archive) not in error
        recent = (seeded.boundary + timedelta(hours=1)).isoformat().replace("+00:00", "Z")
        async with http.get(f"{url}/api/v1/changes", params={"since": recent}) as response:
            assert response.status == 200  # the window alone answers this one
