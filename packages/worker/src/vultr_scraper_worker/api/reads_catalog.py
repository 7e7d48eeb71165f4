"""The catalogue, its stock and its change feed as the API, the page and the metrics see them,
through ``store.queries`` and ``store.changes`` (the same reads as the ``plans``, ``changes``
and ``availability`` commands)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

from loguru import logger

from vultr_scraper_core.store.catalog import QuarantineInfo
from vultr_scraper_core.store.changes import ChangeEvent, ChangeFeed
from vultr_scraper_core.store.collection_errors import CollectionErrors
from vultr_scraper_core.store.queries import (
    CatalogueRows,
    PlanFilter,
    PlanRow,
    StockRow,
    catalogue_summary,
    current_rows,
    find_plans,
    stock,
    with_stock,
)
from vultr_scraper_core.store.queries import cheapest_in_stock as find_cheapest_in_stock
from vultr_scraper_core.store.stock import HeldStock, StockStore
from vultr_scraper_worker.api.errors import ApiError
from vultr_scraper_worker.api.state import ApiState


@dataclass
class CatalogSummary:
    counts: dict[str, int] = field(default_factory=dict)  # collection -> records
    version: int = 0
    fetched_at: datetime | None = None
    last_success: datetime | None = None
    last_attempt: datetime | None = None
    last_status: str | None = None
    last_reason: str | None = None
    stock_checked_at: datetime | None = None
    quarantine: QuarantineInfo | None = None
    stock: dict[str, int] = field(default_factory=dict)  # in_stock / out_of_stock -> pairs
    # collection -> why the last scrape left it as it was (a refused API key)
    collection_errors: dict[str, str] = field(default_factory=dict)
    held_stock: list[HeldStock] = field(default_factory=list)  # by region: the stock gate's


@dataclass
class PlanPrice:
    id: str
    type: str
    monthly: Decimal | None
    hourly: Decimal | None


@dataclass
class RegionCheapest:
    region: str
    city: str | None
    plan: str
    plan_type: str | None
    monthly: Decimal
    vcpu: int | None
    ram_mb: int | None


async def summary(state: ApiState, *, with_stock: bool = False) -> CatalogSummary:
    """Counts, freshness and quarantine; ``with_stock`` also counts the stock pairs (that
    reads every pair, some 10^4 of them: fine for /metrics, too much for /healthz)."""
    found = await catalogue_summary(state.redis, state.prefix)
    counted: dict[str, int] = {}
    if with_stock:
        pairs = await stock(state.redis, state.prefix)
        in_stock = sum(1 for row in pairs if row.in_stock)
        counted = {"in_stock": in_stock, "out_of_stock": len(pairs) - in_stock}
    return CatalogSummary(
        counts={
            "plans": found.plans,
            "metal": found.metal,
            "regions": found.regions,
            "os": found.os,
            **found.others,
        },
        version=found.version,
        fetched_at=found.fetched_at,
        last_success=found.last_success_at,
        last_attempt=found.last_attempt_at,
        last_status=found.last_status,
        last_reason=found.last_reason,
        stock_checked_at=found.stock_checked_at,
        quarantine=found.quarantine,
        stock=counted,
        held_stock=await held_stock(state),
        collection_errors=await CollectionErrors(state.redis, state.prefix).all(),
    )


async def held_stock(state: ApiState) -> list[HeldStock]:
    """The availability answers the stock gate holds back, by region."""
    held = await StockStore(state.redis, state.prefix).held()
    return [held[region] for region in sorted(held)]


def freshness(
    state: ApiState, found: CatalogSummary, now: datetime | None = None
) -> tuple[bool, str]:
    """Whether the last good catalogue scrape is younger than ``[http] catalog_max_age``."""
    max_age = state.config.http.catalog_max_age
    if found.last_success is None:
        return False, "no successful catalogue scrape yet"
    age = ((now or datetime.now(UTC)) - found.last_success).total_seconds()
    if age > max_age:
        return False, (
            f"the last successful catalogue scrape was {age:.0f} s ago, "
            f"more than catalog_max_age ({max_age:g} s)"
        )
    return True, f"the last successful catalogue scrape was {max(age, 0):.0f} s ago"


@contextmanager
def archive_errors() -> Iterator[None]:
    """An archive file that is missing or unreadable: logged with its name, and a 500 that
    says so without showing the server's paths."""
    from vultr_scraper_core.history.files import ArchiveError

    try:
        yield
    except ArchiveError as error:
        logger.warning("HTTP API: history archive: {}", error)
        raise ApiError(
            500,
            "the history archive could not be read for this time range "
            "(the worker's log names the file)",
        ) from None


async def plans(state: ApiState, flt: PlanFilter, at: datetime | None = None) -> list[PlanRow]:
    if at is None:
        return await find_plans(state.redis, state.prefix, flt)
    with archive_errors():
        return await state.history().plans(flt, at)


async def catalogue_rows(state: ApiState) -> CatalogueRows:
    """The current catalogue's rows without stock (decoded once per catalogue revision)."""
    return await current_rows(state.redis, state.prefix)


async def rows_with_stock(state: ApiState, rows: list[PlanRow]) -> list[PlanRow]:
    return await with_stock(state.redis, state.prefix, rows)


async def stock_rows(
    state: ApiState, plan: str | None = None, region: str | None = None
) -> list[StockRow]:
    return await stock(state.redis, state.prefix, plan, region)


async def plan_prices(state: ApiState) -> list[PlanPrice]:
    """One price per plan for ``/metrics`` (the base price; per-region prices are not exported)."""
    chosen: dict[str, PlanRow] = {}
    for row in (await current_rows(state.redis, state.prefix)).rows:  # prices only, no stock
        current = chosen.get(row.plan)
        if current is None or (current.price_source != "base" and row.price_source == "base"):
            chosen[row.plan] = row
    return [
        PlanPrice(row.plan, row.plan_type or "", row.monthly_cost, row.hourly_cost)
        for _, row in sorted(chosen.items())
    ]


async def cheapest_in_stock(state: ApiState) -> list[RegionCheapest]:
    """Per region, the in-stock plan with the lowest monthly price."""
    cheapest = await find_cheapest_in_stock(state.redis, state.prefix)
    return [
        RegionCheapest(
            region=region,
            city=row.city,
            plan=row.plan,
            plan_type=row.plan_type,
            monthly=row.monthly_cost,
            vcpu=row.vcpu_count,
            ram_mb=row.ram_mb,
        )
        for region, row in sorted(cheapest.items())
        if row.monthly_cost is not None
    ]


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


async def read_changes(
    state: ApiState,
    *,
    after: str | None,
    since: datetime | None,
    until: datetime | None,
    kinds: list[str],
    subject: str | None,
    limit: int,
) -> list[ChangeEvent]:
    if until is not None and until <= EPOCH:
        return []  # nothing was recorded before 1970; Redis refuses negative ids
    if since is not None and since <= EPOCH:
        since = None
    with archive_errors():
        return await state.history().changes(
            after=after, since=since, until=until, kinds=kinds or None, subject=subject, limit=limit
        )


async def latest_changes(state: ApiState, limit: int, kinds: list[str]) -> list[ChangeEvent]:
    return await ChangeFeed(state.redis, state.prefix).latest(limit=limit, kinds=kinds or None)


async def change_count(state: ApiState) -> int:
    return await ChangeFeed(state.redis, state.prefix).count()
