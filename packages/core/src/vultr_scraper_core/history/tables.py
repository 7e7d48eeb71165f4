"""The archived datasets: their Arrow schemas, and rows to and from the store's types.

Times are UTC timestamps in milliseconds; money is the exact decimal text Vultr published
(``"7.5"``); values of change events and whole records are JSON text.

| dataset | one row per |
|---|---|
| ``changes`` | change event (the feed) |
| ``versions`` | version of a plan, metal plan or region (``record`` null: retired) |
| ``catalog_checkpoints`` | record alive at a checkpoint (the first archived day, each month) |
| ``prices`` | (plan, region, price kind) and the interval a price held, once it ended |
| ``stock_intervals`` | interval a plan was in stock in a region, once it ended |
| ``stock_flips`` | start (``in_stock`` true) or end of such an interval |
| ``stock_checkpoints`` | pair's state at the start of an archived day |
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import msgspec
import pyarrow as pa

from vultr_scraper_core.store.catalog import RecordVersion
from vultr_scraper_core.store.changes import ChangeEvent
from vultr_scraper_core.store.codec import as_utc, encode, from_ms
from vultr_scraper_core.store.stock import Flip, StockCheckpoint, StockPoint, pair_key, split_pair

TIME = pa.timestamp("ms", tz="UTC")

SCHEMAS: dict[str, pa.Schema] = {
    "changes": pa.schema(
        [
            ("id", pa.string()),
            ("kind", pa.string()),
            ("at", TIME),
            ("subject", pa.string()),
            ("region", pa.string()),
            ("field", pa.string()),
            ("old", pa.string()),
            ("new", pa.string()),
            ("detail", pa.string()),
        ]
    ),
    "versions": pa.schema(
        [
            ("collection", pa.string()),
            ("id", pa.string()),
            ("at", TIME),
            ("commit", pa.int64()),
            ("record", pa.string()),
        ]
    ),
    "prices": pa.schema(
        [
            ("plan", pa.string()),
            ("region", pa.string()),
            ("price_kind", pa.string()),
            ("price", pa.string()),
            ("valid_from", TIME),
            ("valid_to", TIME),
        ]
    ),
    "stock_intervals": pa.schema(
        [("plan", pa.string()), ("region", pa.string()), ("start", TIME), ("end", TIME)]
    ),
    "stock_flips": pa.schema(
        [("plan", pa.string()), ("region", pa.string()), ("at", TIME), ("in_stock", pa.bool_())]
    ),
    "stock_checkpoints": pa.schema(
        [("plan", pa.string()), ("region", pa.string()), ("in_stock", pa.bool_()), ("since", TIME)]
    ),
}
SCHEMAS["catalog_checkpoints"] = SCHEMAS["versions"]
DATASETS = tuple(SCHEMAS)


class PriceInterval(msgspec.Struct, kw_only=True, frozen=True):
    plan: str
    region: str
    price_kind: str
    price: str  # exact decimal text
    valid_from: datetime
    valid_to: datetime | None  # None: still the price


class StockInterval(msgspec.Struct, kw_only=True, frozen=True):
    plan: str
    region: str
    start: datetime
    end: datetime | None  # None: still in stock


def _json(value: Any) -> str | None:
    return None if value is None else encode(value).decode()


def table(dataset: str, columns: Mapping[str, Sequence[Any]]) -> pa.Table:
    return pa.table(dict(columns), schema=SCHEMAS[dataset])


def changes_table(events: Sequence[ChangeEvent]) -> pa.Table:
    return table(
        "changes",
        {
            "id": [event.id for event in events],
            "kind": [str(event.kind) for event in events],
            "at": [as_utc(event.at) for event in events],
            "subject": [event.subject for event in events],
            "region": [event.region for event in events],
            "field": [event.field for event in events],
            "old": [_json(event.old) for event in events],
            "new": [_json(event.new) for event in events],
            "detail": [_json(event.detail) if event.detail else None for event in events],
        },
    )


def events_of(data: pa.Table) -> list[ChangeEvent]:
    events: list[ChangeEvent] = []
    for row in data.to_pylist():
        events.append(
            ChangeEvent(
                id=row["id"],
                kind=row["kind"],
                at=row["at"],
                subject=row["subject"],
                region=row["region"],
                field=row["field"],
                old=msgspec.json.decode(row["old"]) if row["old"] is not None else None,
                new=msgspec.json.decode(row["new"]) if row["new"] is not None else None,
                detail=msgspec.json.decode(row["detail"]) if row["detail"] else {},
            )
        )
    return events


def versions_table(versions: Sequence[RecordVersion], dataset: str = "versions") -> pa.Table:
    return table(
        dataset,
        {
            "collection": [entry.collection for entry in versions],
            "id": [entry.id for entry in versions],
            "at": [as_utc(entry.at) for entry in versions],
            "commit": [entry.commit for entry in versions],
            "record": [
                None if entry.retired else bytes(entry.record).decode() for entry in versions
            ],
        },
    )


def versions_of(data: pa.Table) -> list[RecordVersion]:
    return [
        RecordVersion(
            collection=row["collection"],
            id=row["id"],
            at=row["at"],
            commit=row["commit"],
            record=msgspec.Raw((row["record"] or "null").encode()),
        )
        for row in data.to_pylist()
    ]


def prices_table(rows: Sequence[PriceInterval]) -> pa.Table:
    return table(
        "prices",
        {
            "plan": [row.plan for row in rows],
            "region": [row.region for row in rows],
            "price_kind": [row.price_kind for row in rows],
            "price": [row.price for row in rows],
            "valid_from": [row.valid_from for row in rows],
            "valid_to": [row.valid_to for row in rows],
        },
    )


def prices_of(data: pa.Table) -> list[PriceInterval]:
    return [PriceInterval(**row) for row in data.to_pylist()]


def stock_intervals_table(rows: Sequence[StockInterval]) -> pa.Table:
    return table(
        "stock_intervals",
        {
            "plan": [row.plan for row in rows],
            "region": [row.region for row in rows],
            "start": [row.start for row in rows],
            "end": [row.end for row in rows],
        },
    )


def stock_intervals_of(data: pa.Table) -> list[StockInterval]:
    return [StockInterval(**row) for row in data.to_pylist()]


def flips_table(flips: Sequence[Flip]) -> pa.Table:
    pairs = [split_pair(flip.pair) for flip in flips]
    return table(
        "stock_flips",
        {
            "plan": [plan for plan, _ in pairs],
            "region": [region for _, region in pairs],
            "at": [from_ms(flip.at_ms) for flip in flips],
            "in_stock": [flip.in_stock for flip in flips],
        },
    )


def flips_of(data: pa.Table) -> list[Flip]:
    """The flips in ``data``, in time order (times converted column-wise, not per row)."""
    columns = data.select(["plan", "region", "in_stock"]).to_pydict()
    times = _ms(data, "at")
    return sorted(
        Flip(at_ms=at, pair=pair_key(plan, region), in_stock=in_stock)
        for plan, region, at, in_stock in zip(
            columns["plan"], columns["region"], times, columns["in_stock"], strict=True
        )
    )


def _ms(data: pa.Table, column: str) -> list[int]:
    """A timestamp column as epoch milliseconds."""
    return data.column(column).cast(TIME).cast(pa.int64()).to_pylist()  # type: ignore[no-any-return]


def checkpoint_table(state: StockCheckpoint) -> pa.Table:
    pairs = sorted(state)
    split = [split_pair(pair) for pair in pairs]
    return table(
        "stock_checkpoints",
        {
            "plan": [plan for plan, _ in split],
            "region": [region for _, region in split],
            "in_stock": [state[pair].in_stock for pair in pairs],
            "since": [from_ms(state[pair].since_ms) for pair in pairs],
        },
    )


def checkpoint_of(data: pa.Table) -> StockCheckpoint:
    columns = data.select(["plan", "region", "in_stock"]).to_pydict()
    return {
        pair_key(plan, region): StockPoint(in_stock=in_stock, since_ms=since)
        for plan, region, in_stock, since in zip(
            columns["plan"], columns["region"], columns["in_stock"], _ms(data, "since"), strict=True
        )
    }


def concat(dataset: str, tables: Iterable[pa.Table]) -> pa.Table:
    found = list(tables)
    return pa.concat_tables(found) if found else SCHEMAS[dataset].empty_table()
