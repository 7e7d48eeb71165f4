"""Exports read back with pyarrow and csv equal what the store answers, across the boundary."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from redis.asyncio import Redis

from tests.history.harness import START, Clock, history, mover
from vultr_scraper_core.history.export import GPUHUNT_COLUMNS, chunks, export_table
from vultr_scraper_core.history.files import open_archive
from vultr_scraper_core.store.queries import PlanFilter


def _read(data: pa.Table, fmt: str) -> tuple[list[str], list[dict[str, str]]]:
    raw = b"".join(chunks(data, fmt))
    if fmt == "parquet":
        back = pq.read_table(pa.BufferReader(raw))
        return back.column_names, [
            {key: "" if value is None else str(value) for key, value in row.items()}
            for row in back.to_pylist()
        ]
    if fmt == "csv":
        reader = csv.DictReader(io.StringIO(raw.decode()))
        return list(reader.fieldnames or []), list(reader)
    lines = [json.loads(line) for line in raw.decode().splitlines()]
    return (list(lines[0]) if lines else []), lines


async def test_exports_read_back_and_equal_the_store(redis: Redis, tmp_path: Path) -> None:
    from bench.history_sim import SimulationSpec, simulate

    await simulate(redis, "vs", SimulationSpec(days=5, start=START, price_changes_per_day=3))
    archive = open_archive(str(tmp_path))
    await mover(redis, "vs", archive, Clock(START + timedelta(days=5, hours=2)), days=2).run()
    reader = history(redis, "vs", archive)

    changes = await export_table(reader, "changes")
    events = await reader.changes(limit=10**6)
    for fmt in ("csv", "parquet", "jsonl"):
        names, rows = _read(changes, fmt)
        assert names[:3] == ["id", "kind", "at"]
        assert [row["id"] for row in rows] == [event.id for event in events]
    assert len(events) > 100 and events[0].id < events[-1].id

    stock = await export_table(reader, "stock")
    intervals = await reader.stock_intervals()
    _, rows = _read(stock, "csv")
    assert [(r["plan"], r["region"], r["start"]) for r in rows] == [
        (i.plan, i.region, i.start.isoformat()) for i in intervals
    ]
    assert any(r["end"] == "" for r in rows) and any(r["end"] for r in rows)

    prices = await export_table(reader, "prices")
    names, rows = _read(prices, "csv")
    assert tuple(names[: len(GPUHUNT_COLUMNS)]) == GPUHUNT_COLUMNS
    assert len(rows) == len(await reader.price_intervals())
    ended = [row for row in rows if row["valid_to"]]
    assert ended, "price changes were simulated"
    assert all(row["price"] and row["location"] for row in rows)

    moment = START + timedelta(days=1, hours=5)  # inside the archive
    catalog = await export_table(reader, "catalog", until=moment)
    expected = await reader.plans(PlanFilter(), moment)
    _, rows = _read(catalog, "parquet")
    assert [(r["plan"], r["region"], r["monthly_cost"]) for r in rows] == [
        (row.plan, row.region or "", str(row.monthly_cost)) for row in expected
    ]
    # A range selects by time: only changes from the last day.
    since = START + timedelta(days=4)
    recent = await export_table(reader, "changes", since=since)
    assert recent.num_rows == len(await reader.changes(since=since, limit=10**6)) < len(events)
