"""Exports: prices, stock, changes and the catalogue as CSV, Parquet or JSON lines.

``export_table(history, what, since, until)`` builds the rows from the one query layer
(``History``) over the window and the archive; ``write(table, fmt, sink)`` writes them.
Columns (documented in docs/catalogue.md):

* ``prices``: gpuhunt's catalogue columns (``instance_name, location, price, cpu, memory,
  gpu_count, gpu_name, gpu_memory, spot, disk_size, gpu_vendor, flags``) then ``price_kind,
  valid_from, valid_to``; one row per (plan, region, price kind) and interval;
* ``stock``: ``plan, region, start, end`` (``end`` empty: still in stock);
* ``changes``: ``id, kind, at, subject, region, field, old, new, detail`` (JSON text values);
* ``catalog``: one row per (plan, region) as ``plans`` lists them, at ``until`` (default now);
* ``snapshot``: the current catalogue as one SQLite file (``history.snapshot``).

``export(history, what, fmt, since, until)`` gives the row count and the bytes as chunks.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, BinaryIO

import msgspec
import pyarrow as pa
import pyarrow.parquet as pq

from vultr_scraper_core.history import EXPORT_FORMATS, EXPORTS, export_problem, tables
from vultr_scraper_core.history.query import History
from vultr_scraper_core.models import Catalogue, CloudPlan, Plan
from vultr_scraper_core.store.catalog import CatalogueStore
from vultr_scraper_core.store.queries import PlanFilter, PlanRow

WHAT = EXPORTS
FORMATS = EXPORT_FORMATS
GPUHUNT_COLUMNS = (
    "instance_name", "location", "price", "cpu", "memory", "gpu_count", "gpu_name",
    "gpu_memory", "spot", "disk_size", "gpu_vendor", "flags",
)  # fmt: skip
PRICE_COLUMNS = (*GPUHUNT_COLUMNS, "price_kind", "valid_from", "valid_to")
_TIME = tables.TIME


@dataclass(frozen=True)
class Export:
    rows: int | None  # None: the snapshot (a file of several tables)
    chunks: Iterator[bytes]


async def export(
    history: History,
    what: str,
    fmt: str,
    since: datetime | None = None,
    until: datetime | None = None,
) -> Export:
    """``what`` as ``fmt``; a ValueError says why a combination is not offered."""
    problem = export_problem(what, fmt)
    if problem is not None:
        raise ValueError(problem)
    if what == "snapshot":
        from vultr_scraper_core.history.snapshot import snapshot_sqlite

        data = await snapshot_sqlite(history.redis, history.prefix)
        return Export(rows=None, chunks=iter([data]))
    found = await export_table(history, what, since, until)
    return Export(rows=found.num_rows, chunks=chunks(found, fmt))


async def export_table(
    history: History, what: str, since: datetime | None = None, until: datetime | None = None
) -> pa.Table:
    if what == "prices":
        return await _prices(history, since, until)
    if what == "stock":
        rows = await history.stock_intervals(since, until)
        return tables.stock_intervals_table(rows).rename_columns(["plan", "region", "start", "end"])
    if what == "changes":
        events = await history.changes(since=since, until=until, limit=10**9)
        return tables.changes_table(events)
    if what == "catalog":
        return _catalog(await history.plans(PlanFilter(), until))
    raise ValueError(f"unknown export {what!r}; one of {', '.join(WHAT)}")


async def _prices(history: History, since: datetime | None, until: datetime | None) -> pa.Table:
    intervals = await history.price_intervals(since, until)
    current = (await CatalogueStore(history.redis, history.prefix).load()).catalogue
    details = _plan_details(current)
    columns: dict[str, list[Any]] = {name: [] for name in PRICE_COLUMNS}
    for row in sorted(intervals, key=lambda r: (r.plan, r.region, r.price_kind, r.valid_from)):
        plan = details.get(row.plan, {})
        values = {
            **plan,
            "instance_name": row.plan,
            "location": row.region,
            "price": row.price,
            "spot": row.price_kind.endswith("_preemptible"),
            "flags": "",
            "price_kind": row.price_kind,
            "valid_from": row.valid_from,
            "valid_to": row.valid_to,
        }
        for name in PRICE_COLUMNS:
            columns[name].append(values.get(name))
    schema = pa.schema(
        [
            ("instance_name", pa.string()), ("location", pa.string()), ("price", pa.string()),
            ("cpu", pa.int64()), ("memory", pa.float64()), ("gpu_count", pa.float64()),
            ("gpu_name", pa.string()), ("gpu_memory", pa.float64()), ("spot", pa.bool_()),
            ("disk_size", pa.float64()), ("gpu_vendor", pa.string()), ("flags", pa.string()),
            ("price_kind", pa.string()), ("valid_from", _TIME), ("valid_to", _TIME),
        ]
    )  # fmt: skip
    return pa.table(columns, schema=schema)


def _plan_details(catalogue: Catalogue) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    every: list[Plan] = [*catalogue.plans.values(), *catalogue.metal.values()]
    for plan in every:
        gpus = float(plan.gpu_fraction) if plan.gpu_fraction is not None else 0.0
        found[plan.id] = {
            "cpu": plan.vcpus,
            "memory": plan.ram / 1024 if plan.ram is not None else None,
            "gpu_count": gpus,
            "gpu_name": plan.gpu_type,
            "gpu_memory": plan.gpu_vram_gb / gpus if plan.gpu_vram_gb and gpus else None,
            "disk_size": float(plan.disk * (plan.disk_count or 1)) if plan.disk else None,
            "gpu_vendor": (plan.gpu_brand or "").lower() or None
            if isinstance(plan, CloudPlan)
            else None,
        }
    return found


def _catalog(rows: list[PlanRow]) -> pa.Table:
    data = [msgspec.to_builtins(row, builtin_types=(datetime, Decimal)) for row in rows]
    names = list(PlanRow.__struct_fields__)
    columns = {
        name: [str(r[name]) if isinstance(r.get(name), Decimal) else r.get(name) for r in data]
        for name in names
    }
    if not rows:
        return pa.table({name: pa.array([], pa.string()) for name in names})
    return pa.table(columns)


def chunks(data: pa.Table, fmt: str, batch_rows: int = 5000) -> Iterator[bytes]:
    """``data`` in ``fmt``, as byte chunks (for streaming)."""
    if fmt == "parquet":
        sink = pa.BufferOutputStream()
        pq.write_table(data, sink, compression="zstd")
        yield sink.getvalue().to_pybytes()
        return
    if fmt not in ("csv", "jsonl"):
        raise ValueError(f"unknown format {fmt!r}; one of {', '.join(FORMATS)}")
    names = data.column_names
    if fmt == "csv":
        head = io.StringIO()
        csv.writer(head, lineterminator="\n").writerow(names)
        yield head.getvalue().encode()
    for batch in data.to_batches(max_chunksize=batch_rows):
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        for row in batch.to_pylist():
            if fmt == "csv":
                writer.writerow([_cell(row[name]) for name in names])
            else:
                out.write(msgspec.json.encode(row).decode() + "\n")
        yield out.getvalue().encode()


def write(data: pa.Table, fmt: str, sink: BinaryIO) -> None:
    for chunk in chunks(data, fmt):
        sink.write(chunk)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
