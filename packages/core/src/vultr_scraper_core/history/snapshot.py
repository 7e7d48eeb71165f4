"""The whole current catalogue as one SQLite file ("the whole thing as a file").

Tables (documented in docs/catalogue.md):

* ``plans``, ``metal``, ``regions``, ``os``: one row per record, one column per field the
  records of that collection carry (text, integer or real; money as exact decimal text; lists
  and objects, ``locations`` for instance, as JSON text);
* ``catalog``: one row per (plan, region) as ``vultr-scraper plans`` lists them, with the
  price that applies in that region and the stock;
* ``meta``: ``key, value`` rows: ``format`` (``vultr-scraper-snapshot/1``), ``version``,
  ``fetched_at``, ``exported_at``.

The file is built in a temporary directory and read back whole: SQLite needs a real file.
"""

from __future__ import annotations

import sqlite3
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
from redis.asyncio import Redis

from vultr_scraper_core.models import COLLECTIONS, Catalogue
from vultr_scraper_core.store.catalog import CatalogueMeta, CatalogueStore
from vultr_scraper_core.store.codec import utcnow
from vultr_scraper_core.store.queries import PlanFilter, PlanRow, find_plans

FORMAT = "vultr-scraper-snapshot/1"


async def snapshot_sqlite(redis: Redis, prefix: str) -> bytes:
    """The current catalogue and its (plan, region) rows as the bytes of a SQLite file."""
    committed = await CatalogueStore(redis, prefix).load()
    rows = await find_plans(redis, prefix, PlanFilter())
    return build(committed.catalogue, committed.meta, rows)


def build(catalogue: Catalogue, meta: CatalogueMeta, rows: Sequence[PlanRow]) -> bytes:
    with tempfile.TemporaryDirectory(prefix="vultr-scraper-snapshot-") as directory:
        path = Path(directory) / "snapshot.sqlite"
        connection = sqlite3.connect(path)
        try:
            for name in COLLECTIONS:
                records = getattr(catalogue, name).values()
                _table(connection, name, [_flat(record) for record in records], ["id"])
            _table(connection, "catalog", [_flat(row) for row in rows], ["plan", "region"])
            _table(
                connection,
                "meta",
                [
                    {"key": "format", "value": FORMAT},
                    {"key": "version", "value": str(meta.version)},
                    {"key": "fetched_at", "value": _value(meta.fetched_at)},
                    {"key": "exported_at", "value": _value(utcnow())},
                ],
                ["key"],
            )
            connection.commit()
        finally:
            connection.close()
        return path.read_bytes()


def _flat(record: Any) -> dict[str, Any]:
    document = msgspec.to_builtins(record, builtin_types=(datetime, Decimal))
    extra = document.pop("extra", None) or {}
    return {key: _value(value) for key, value in {**extra, **document}.items()}


def _value(value: Any) -> Any:
    """A SQLite value: exact decimals and times as text, lists and objects as JSON text."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return msgspec.json.encode(value, enc_hook=str).decode()


def _table(
    connection: sqlite3.Connection,
    name: str,
    rows: Iterable[Mapping[str, Any]],
    first: Sequence[str],
) -> None:
    found = list(rows)
    columns = list(first)
    for row in found:
        columns.extend(key for key in row if key not in columns)
    quoted = ", ".join(_quote(column) for column in columns)
    connection.execute(f"CREATE TABLE {_quote(name)} ({quoted})")
    marks = ", ".join("?" for _ in columns)
    connection.executemany(
        f"INSERT INTO {_quote(name)} VALUES ({marks})",
        ([row.get(column) for column in columns] for row in found),
    )


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'
