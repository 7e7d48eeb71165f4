"""The kinds of change event, apart from the feed itself.

A module of its own without Redis or msgspec: ``vultr-scraper changes --help`` lists them, and
help must not load the store. ``store.changes`` re-exports ``EventKind``.
"""

from __future__ import annotations

import enum


class EventKind(enum.StrEnum):
    PLAN_ADDED = "plan_added"
    PLAN_RETIRED = "plan_retired"
    PRICE_CHANGED = "price_changed"
    SPEC_CHANGED = "spec_changed"
    REGION_ADDED = "region_added"
    REGION_REMOVED = "region_removed"
    STOCK_CHANGED = "stock_changed"
    SCHEMA_DRIFT = "schema_drift"
    ENDPOINT_DOWN = "endpoint_down"
    ENDPOINT_UP = "endpoint_up"
    # The catalogue's own condition (subject "catalog"), seen by the alert dispatcher.
    CATALOG_STALE = "catalog_stale"
    CATALOG_FRESH = "catalog_fresh"
    CATALOG_QUARANTINED = "catalog_quarantined"
    QUARANTINE_CLEARED = "quarantine_cleared"
