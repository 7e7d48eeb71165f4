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
    # A region starts or stops offering a service of its ``options`` (field = the service).
    REGION_SERVICE_ADDED = "region_service_added"
    REGION_SERVICE_REMOVED = "region_service_removed"
    APP_ADDED = "app_added"
    APP_REMOVED = "app_removed"
    K8S_VERSION_ADDED = "k8s_version_added"
    K8S_VERSION_REMOVED = "k8s_version_removed"
    STORAGE_CLUSTER_ADDED = "storage_cluster_added"
    STORAGE_CLUSTER_REMOVED = "storage_cluster_removed"
    # An object-storage cluster's ``deploy`` flips: new subscriptions accepted there or not.
    STORAGE_AVAILABILITY_CHANGED = "storage_availability_changed"
    ISO_ADDED = "iso_added"
    ISO_REMOVED = "iso_removed"
    OS_ADDED = "os_added"
    OS_REMOVED = "os_removed"
    SCHEMA_DRIFT = "schema_drift"
    ENDPOINT_DOWN = "endpoint_down"
    ENDPOINT_UP = "endpoint_up"
    # The catalogue's own condition (subject "catalog"), seen by the alert dispatcher.
    CATALOG_STALE = "catalog_stale"
    CATALOG_FRESH = "catalog_fresh"
    CATALOG_QUARANTINED = "catalog_quarantined"
    QUARANTINE_CLEARED = "quarantine_cleared"
