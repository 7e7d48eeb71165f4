"""The rest of the catalogue as listings: applications, Kubernetes versions, object-storage
clusters, public ISOs and managed database plans, now or as of a time.

One query for the CLI (``apps``, ``k8s-versions``, ``storage-clusters``, ``isos``,
``databases``) and the API (``/api/v1/apps`` ...): each record as plain JSON (``id`` first,
money as exact decimal text), filtered, in a stable order. Database plans also come as one
price row per (plan, region) they are sold in.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

import msgspec
from redis.asyncio import Redis

from vultr_scraper_core.models import (
    COLLECTIONS,
    DatabasePlan,
    Record,
    record_document,
)
from vultr_scraper_core.store.catalog import CatalogueStore
from vultr_scraper_core.store.codec import decode

# CLI command / API path -> collection.
LISTINGS = {
    "apps": "apps",
    "k8s-versions": "k8s_versions",
    "storage-clusters": "storage_clusters",
    "isos": "isos",
    "databases": "databases",
}


class OfferingFilter(msgspec.Struct, kw_only=True, frozen=True):
    """Every filter is optional; those that do not apply to a collection are ignored."""

    region: str | None = None  # storage clusters: their region; databases: sold there
    type: str | None = None  # apps: one-click / marketplace; databases: the plan type
    engine: str | None = None  # databases: a supported engine (mysql, pg, valkey, kafka)


class DatabasePrice(msgspec.Struct, kw_only=True, frozen=True):
    """A database plan's price in one region it is sold in."""

    plan: str
    region: str
    monthly_cost: Decimal | None
    hourly_cost: Decimal | None
    nodes: int | None
    vcpu: int | None
    ram_mb: int | None
    disk_gb: int | None
    engines: list[str]


async def records(
    redis: Redis, prefix: str, collection: str, at: datetime | None = None
) -> dict[str, Record]:
    """The collection now (one hash read), or as it was at ``at`` (from history)."""
    if collection not in COLLECTIONS:
        raise ValueError(f"unknown collection {collection!r}")
    store = CatalogueStore(redis, prefix)
    if at is not None:
        found: dict[str, Record] = getattr(await store.catalogue_at(at), collection)
        return found
    raw = await redis.hgetall(store.keys.collections[collection])  # type: ignore[misc]
    record_type = COLLECTIONS[collection]
    return {_text(key): decode(value, record_type) for key, value in raw.items()}


def matching(collection: str, found: Mapping[str, Record], flt: OfferingFilter) -> list[Record]:
    """``found`` filtered by ``flt``, in the collection's order."""
    chosen = [record for record in found.values() if _matches(record, flt)]
    return sorted(chosen, key=_ORDER.get(collection, _by_id))


def documents(found: Sequence[Record]) -> list[dict[str, Any]]:
    return [record_document(record) for record in found]


def database_prices(plans: Sequence[Record], region: str | None = None) -> list[DatabasePrice]:
    """One row per (database plan, region it is sold in), cheapest first; a ``location_cost``
    entry replaces the base price in its region."""
    rows: list[DatabasePrice] = []
    for plan in plans:
        if not isinstance(plan, DatabasePlan):
            continue
        for where in plan.locations or []:
            if region is not None and where != region:
                continue
            prices = plan.prices(where)
            rows.append(
                DatabasePrice(
                    plan=plan.id,
                    region=where,
                    monthly_cost=prices["monthly_cost"],
                    hourly_cost=prices["hourly_cost"],
                    nodes=plan.number_of_nodes,
                    vcpu=plan.vcpu_count,
                    ram_mb=plan.ram,
                    disk_gb=plan.disk,
                    engines=plan.engines,
                )
            )
    return sorted(rows, key=lambda row: (_money(row.monthly_cost), row.plan, row.region))


def _matches(record: Record, flt: OfferingFilter) -> bool:
    if flt.region is not None:
        region = getattr(record, "region", None)
        locations = getattr(record, "locations", None)
        if region != flt.region and flt.region not in (locations or []):
            return False
    if flt.type is not None and getattr(record, "type", None) != flt.type:
        return False
    if flt.engine is not None:
        return isinstance(record, DatabasePlan) and flt.engine in record.engines
    return True


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _money(value: Decimal | None) -> Decimal:
    return value if value is not None else Decimal("Infinity")


def _by_id(record: Record) -> Any:
    return id_order(getattr(record, "id"))  # noqa: B009 - every record type has an id


def _version_key(record: Record) -> Any:
    return version_order(str(getattr(record, "id")))  # noqa: B009


def version_order(version: str) -> tuple[tuple[int, ...], str]:
    """Newest Kubernetes version first: ``v1.33.0+1`` before ``v1.9.2+1`` (then by the id)."""
    return tuple(-int(part) for part in re.findall(r"\d+", version)), version


def _database_key(record: Record) -> Any:
    cost = getattr(record, "monthly_cost", None)
    return database_order(cost, str(getattr(record, "id")))  # noqa: B009


def database_order(monthly_cost: Decimal | None, plan: str) -> tuple[Decimal, str]:
    """Cheapest first (no price last), then by id."""
    return _money(monthly_cost), plan


def id_order(value: int | str) -> tuple[int, int, str]:
    """Numeric ids first, in number order, then text ids."""
    return (0, value, "") if isinstance(value, int) else (1, 0, str(value))


def order_key(collection: str, record: Record) -> Any:
    """The key ``matching`` sorts the collection's records by (what a page cursor names)."""
    return _ORDER.get(collection, _by_id)(record)


_ORDER = {"k8s_versions": _version_key, "databases": _database_key}
