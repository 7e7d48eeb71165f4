"""``/api/v1/plans``, ``/api/v1/availability``, ``/api/v1/changes``, ``/api/v1/catalog`` and
``/api/v1/stock/stats``."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec
from msgspec import Meta

from vultr_scraper_core.history.plan_view import RegionStats
from vultr_scraper_core.store.catalog import QuarantineInfo
from vultr_scraper_core.store.changes import ChangeEvent
from vultr_scraper_core.store.queries import PlanRow, StockRow
from vultr_scraper_core.store.stock import HeldStock
from vultr_scraper_worker.documents.common import Count, HasMore, NextCursor


class PlansPage(msgspec.Struct, kw_only=True):
    """A page of (plan, region) rows, cheapest first."""

    plans: list[PlanRow]
    count: Annotated[Count, Meta(description="matching rows in total")]
    truncated: Annotated[bool, Meta(description="true when `limit` cut the list")]
    at: datetime | None
    cursor: NextCursor
    has_more: HasMore


class AvailabilityPage(msgspec.Struct, kw_only=True):
    """A page of (plan, region) stock rows."""

    availability: list[StockRow]
    count: Annotated[Count, Meta(description="matching pairs in total")]
    cursor: NextCursor
    has_more: HasMore


class StockStatsPage(msgspec.Struct, kw_only=True):
    """A page of stock statistics per (plan, region), by plan then region."""

    at: datetime
    window: str
    pairs: list[RegionStats]
    count: Annotated[Count, Meta(description="matching pairs in total")]
    cursor: NextCursor
    has_more: HasMore


class ChangesPage(msgspec.Struct, kw_only=True):
    """A page of the change feed, oldest first."""

    events: list[ChangeEvent]
    cursor: Annotated[
        str | None,
        Meta(
            description="the id of the last event returned (else the `after` given): "
            "pass it as `after` for the next page or to poll for newer events"
        ),
    ]
    has_more: bool


class CatalogReport(msgspec.Struct, kw_only=True):
    """The catalogue's size, freshness and quarantine state."""

    counts: dict[str, int]
    version: int
    fetched_at: datetime | None = None
    last_success_at: datetime | None
    last_attempt_at: datetime | None
    last_status: str | None = None
    last_reason: str | None = None
    stock_checked_at: datetime | None = None
    fresh: bool
    freshness: str
    quarantine: QuarantineInfo | None
    stock: Annotated[dict[str, int], Meta(description="in_stock / out_of_stock -> pairs")] = (
        msgspec.field(default_factory=dict)
    )
    held_stock: Annotated[
        list[HeldStock],
        Meta(description="availability answers the stock gate holds back, by region"),
    ] = msgspec.field(default_factory=list)
    errors: Annotated[
        dict[str, str],
        Meta(description="collection -> why the last scrape left it as it was"),
    ] = msgspec.field(default_factory=dict)
