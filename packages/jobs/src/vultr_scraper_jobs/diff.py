"""Catalogue diffs as typed change events, their inverse (apply), and schema-drift detection.

``diff_catalogues(a, b)`` describes every difference in plans, metal plans and regions as
events carrying old and new values, so that ``apply_events(a, diff_catalogues(a, b))`` rebuilds
``b`` exactly (the property tests check this). Event mapping:

* a record appears / disappears: ``plan_added`` / ``plan_retired`` (plans and metal plans),
  ``region_added`` / ``region_removed``, with the whole record as ``new`` / ``old``;
* a base price changes: ``price_changed`` with ``field`` = the price kind and ``region`` None;
* a ``location_cost`` price changes: ``price_changed`` with that ``region``. A base price that
  changes is one event, not one per region, so nothing is counted twice;
* any other field (including unknown ones): ``spec_changed`` with ``field``.

The rest of the catalogue follows the same rules with its own lifecycle kinds: ``os_added`` /
``os_removed``, ``app_added`` / ``app_removed``, ``k8s_version_added`` / ``..._removed``,
``storage_cluster_added`` / ``..._removed``, ``iso_added`` / ``iso_removed``; database plans
are plans (``plan_added``, ``price_changed``, ...). Two fields get events of their own:

* a region's ``options`` (the services it offers): ``region_service_added`` /
  ``region_service_removed`` with ``field`` = the service ("load_balancers now offered in
  sgp"); a change of order alone stays a ``spec_changed``;
* an object-storage cluster's ``deploy``: ``storage_availability_changed`` (old/new "yes"/"no")
  with ``region`` = the cluster's region.

``detail["collection"]`` names the collection (``plans``, ``metal``, ``regions``, ``os``,
``apps``, ``k8s_versions``, ``storage_clusters``, ``isos``, ``databases``). Values are plain
JSON with money as exact decimal text.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import msgspec

from vultr_scraper_core.models import (
    COLLECTIONS,
    PRICE_KINDS,
    Catalogue,
    FieldCensus,
    Observation,
    Record,
    Shape,
    parse_record,
    plain,
    record_document,
    record_fields,
    same_record,
    same_value,
)
from vultr_scraper_core.store.changes import ChangeEvent, EventKind

_LIFECYCLE = {
    "plans": (EventKind.PLAN_ADDED, EventKind.PLAN_RETIRED),
    "metal": (EventKind.PLAN_ADDED, EventKind.PLAN_RETIRED),
    "regions": (EventKind.REGION_ADDED, EventKind.REGION_REMOVED),
    "os": (EventKind.OS_ADDED, EventKind.OS_REMOVED),
    "apps": (EventKind.APP_ADDED, EventKind.APP_REMOVED),
    "k8s_versions": (EventKind.K8S_VERSION_ADDED, EventKind.K8S_VERSION_REMOVED),
    "storage_clusters": (EventKind.STORAGE_CLUSTER_ADDED, EventKind.STORAGE_CLUSTER_REMOVED),
    "isos": (EventKind.ISO_ADDED, EventKind.ISO_REMOVED),
    "databases": (EventKind.PLAN_ADDED, EventKind.PLAN_RETIRED),
}
DIFFED = tuple(_LIFECYCLE)
PRICED = ("plans", "metal", "databases")
_ABSENT: Any = object()


def diff_catalogues(old: Catalogue, new: Catalogue, *, at: datetime) -> list[ChangeEvent]:
    events: list[ChangeEvent] = []
    for name in DIFFED:
        before: Mapping[str, Record] = getattr(old, name)
        after: Mapping[str, Record] = getattr(new, name)
        added_kind, removed_kind = _LIFECYCLE[name]
        for record_id in sorted(before.keys() | after.keys()):
            left, right = before.get(record_id), after.get(record_id)
            if left is None and right is not None:
                events.append(
                    ChangeEvent(
                        kind=added_kind,
                        at=at,
                        subject=record_id,
                        new=record_document(right),
                        detail=_detail(name, right),
                    )
                )
            elif right is None and left is not None:
                events.append(
                    ChangeEvent(
                        kind=removed_kind,
                        at=at,
                        subject=record_id,
                        old=record_document(left),
                        detail=_detail(name, left),
                    )
                )
            elif left is not None and right is not None and not same_record(left, right):
                # same_record first: it settles an unchanged record (nearly all of them) from
                # its encoding, without the field-by-field walk below.
                events.extend(_record_changes(name, record_id, left, right, at))
    return events


def _detail(collection: str, record: Record) -> dict[str, Any]:
    detail: dict[str, Any] = {"collection": collection}
    for key in ("type", "gpu_type", "gpu_brand", "region"):
        value = getattr(record, key, None)
        if isinstance(value, str):
            detail[key] = value
    return detail


def _typed_location_cost(record: Record, view: Mapping[str, Any]) -> bool:
    """Absent, or a well-formed region -> prices map (not a drifted value kept in extra)."""
    return "location_cost" not in view or getattr(record, "location_cost", None) is not None


def _record_changes(
    name: str, record_id: str, left: Record, right: Record, at: datetime
) -> list[ChangeEvent]:
    before, after = record_fields(left), record_fields(right)
    detail = _detail(name, right)
    priced = name in PRICED
    events: list[ChangeEvent] = []

    def event(kind: EventKind, field: str, old: Any, new: Any, region: str | None = None) -> None:
        events.append(
            ChangeEvent(
                kind=kind,
                at=at,
                subject=record_id,
                region=region,
                field=field,
                old=None if old is _ABSENT else plain(old),
                new=None if new is _ABSENT else plain(new),
                detail=dict(detail),  # events are independent values
            )
        )

    for key in sorted(before.keys() | after.keys()):
        old_value, new_value = before.get(key, _ABSENT), after.get(key, _ABSENT)
        if old_value is not _ABSENT and new_value is not _ABSENT:
            if same_value(old_value, new_value):
                continue
        if (
            priced
            and key == "location_cost"
            and _typed_location_cost(left, before)
            and _typed_location_cost(right, after)
        ):
            old_map = {} if old_value is _ABSENT else old_value
            new_map = {} if new_value is _ABSENT else new_value
            for region in sorted(old_map.keys() | new_map.keys()):
                old_prices, new_prices = old_map.get(region, {}), new_map.get(region, {})
                for kind in sorted(old_prices.keys() | new_prices.keys()):
                    old_price = old_prices.get(kind, _ABSENT)
                    new_price = new_prices.get(kind, _ABSENT)
                    if (
                        old_price is _ABSENT
                        or new_price is _ABSENT
                        or not same_value(old_price, new_price)
                    ):
                        event(EventKind.PRICE_CHANGED, kind, old_price, new_price, region)
        elif priced and key in PRICE_KINDS:
            event(EventKind.PRICE_CHANGED, key, old_value, new_value)
        elif name == "regions" and key == "options" and _service_lists(old_value, new_value):
            events.extend(_service_changes(record_id, old_value, new_value, at, detail))
        elif name == "storage_clusters" and key == "deploy":
            region = getattr(right, "region", None) or getattr(left, "region", None)
            event(EventKind.STORAGE_AVAILABILITY_CHANGED, key, old_value, new_value, region)
        else:
            event(EventKind.SPEC_CHANGED, key, old_value, new_value)
    return events


def _service_lists(old: Any, new: Any) -> bool:
    """Both sides are lists of service names (absent counts as none offered)."""
    return all(
        value is _ABSENT or (isinstance(value, list) and all(isinstance(v, str) for v in value))
        for value in (old, new)
    )


def _services_after(old: list[str], added: Iterable[str], removed: Iterable[str]) -> list[str]:
    """What ``region_service_added`` / ``_removed`` events make of ``old``."""
    gone = set(removed)
    return [service for service in old if service not in gone] + list(added)


def _service_changes(
    region: str, old: Any, new: Any, at: datetime, detail: Mapping[str, Any]
) -> list[ChangeEvent]:
    before = [] if old is _ABSENT else list(old)
    after = [] if new is _ABSENT else list(new)
    added = list(dict.fromkeys(service for service in after if service not in before))
    removed = list(dict.fromkeys(service for service in before if service not in after))

    def service_event(kind: EventKind, service: str, present: bool) -> ChangeEvent:
        return ChangeEvent(
            kind=kind,
            at=at,
            subject=region,
            region=region,
            field=service,
            old=None if present else service,
            new=service if present else None,
            detail=dict(detail),
        )

    events = [service_event(EventKind.REGION_SERVICE_REMOVED, s, False) for s in removed]
    events += [service_event(EventKind.REGION_SERVICE_ADDED, s, True) for s in added]
    rebuilt = _services_after(before, added, removed)
    if rebuilt != after or new is _ABSENT or (old is _ABSENT and not after):
        # The order changed too, or the list itself vanished or appeared empty: say so exactly.
        events.append(
            ChangeEvent(
                kind=EventKind.SPEC_CHANGED,
                at=at,
                subject=region,
                field="options",
                old=None if old is _ABSENT else plain(old),
                new=None if new is _ABSENT else plain(new),
                detail=dict(detail),
            )
        )
    return events


def apply_events(base: Catalogue, events: Iterable[ChangeEvent]) -> Catalogue:
    """``base`` with ``events`` applied in order (stock, drift and endpoint events ignored)."""
    collections: dict[str, dict[str, Any]] = {
        name: dict(getattr(base, name)) for name in COLLECTIONS
    }
    for event in events:
        name = event.detail.get("collection")
        if name not in DIFFED:
            continue
        records = collections[name]
        record_type = COLLECTIONS[name]
        added_kind, removed_kind = _LIFECYCLE[name]
        if event.kind == added_kind:
            records[event.subject] = parse_record(record_type, event.new)
        elif event.kind == removed_kind:
            records.pop(event.subject, None)
        elif event.kind in _SERVICE_KINDS and event.field:
            view = {"id": event.subject, **record_fields(records[event.subject])}
            present = event.kind == EventKind.REGION_SERVICE_ADDED
            options = _services_after(
                list(view.get("options", [])),
                [event.field] if present else [],
                [] if present else [event.field],
            )
            view["options"] = options
            records[event.subject] = parse_record(record_type, view)
        elif event.kind in _FIELD_KINDS and event.field:
            view = {"id": event.subject, **record_fields(records[event.subject])}
            if event.region is not None and event.kind == EventKind.PRICE_CHANGED:
                _set_regional_price(view, event.region, event.field, event.new)
            elif event.new is None:
                view.pop(event.field, None)
            else:
                view[event.field] = event.new
            records[event.subject] = parse_record(record_type, view)
    return Catalogue(**collections)


_SERVICE_KINDS = (EventKind.REGION_SERVICE_ADDED, EventKind.REGION_SERVICE_REMOVED)
_FIELD_KINDS = (
    EventKind.PRICE_CHANGED,
    EventKind.SPEC_CHANGED,
    EventKind.STORAGE_AVAILABILITY_CHANGED,
)


def _set_regional_price(view: dict[str, Any], region: str, kind: str, value: Any) -> None:
    regional: dict[str, dict[str, Any]] = view.setdefault("location_cost", {})
    prices = regional.setdefault(region, {})
    if value is None:
        prices.pop(kind, None)
    else:
        prices[kind] = value
    if not prices:
        regional.pop(region)
    if not regional:
        view.pop("location_cost")


def keep_readable_prices(current: Catalogue, fetched: Catalogue) -> Catalogue:
    """``fetched`` with every price it could not read replaced by the committed one.

    A price the model kept in ``extra`` (``"N/A"``, a malformed ``location_cost``) is not a
    price, so it must never become a ``price_changed`` event: the plan keeps its last
    readable value (none for a new plan). The text as received stays in the raw archive."""
    collections: dict[str, Any] = {}
    for name in PRICED:
        before: Mapping[str, Any] = getattr(current, name)
        records = dict(getattr(fetched, name))
        for record_id, record in records.items():
            unreadable = [key for key in (*PRICE_KINDS, "location_cost") if key in record.extra]
            if not unreadable:
                continue
            old = before.get(record_id)
            extra = {key: value for key, value in record.extra.items() if key not in unreadable}
            kept = {key: getattr(old, key) if old is not None else None for key in unreadable}
            records[record_id] = msgspec.structs.replace(record, extra=extra, **kept)
        collections[name] = records
    return msgspec.structs.replace(fetched, **collections)


def fold_new_fields(events: Iterable[ChangeEvent], current: Catalogue) -> list[ChangeEvent]:
    """``events`` without the ``spec_changed`` of a field that no record of its collection had.

    A field appearing on every plan at once is one ``schema_drift`` event (per endpoint), not
    one ``spec_changed`` per plan; the values are still stored with the records. A field that
    some record already had is ordinary data: its appearance elsewhere is a spec change."""
    known: dict[str, set[str]] = {}
    for name in DIFFED:
        fields: set[str] = set()
        for record in getattr(current, name).values():
            fields.update(record_fields(record))
        known[name] = fields
    return [
        event
        for event in events
        if not (
            event.kind == EventKind.SPEC_CHANGED
            and event.old is None
            and event.field not in known.get(str(event.detail.get("collection")), {event.field})
        )
    ]


def keep_missing(current: Catalogue, fetched: Catalogue, collections: Iterable[str]) -> Catalogue:
    """``fetched`` plus the records of ``current`` it lacks in ``collections`` (retire nothing)."""
    merged = {name: dict(getattr(fetched, name)) for name in COLLECTIONS}
    for name in collections:
        for record_id, record in getattr(current, name).items():
            merged[name].setdefault(record_id, record)
    return Catalogue(**merged)


# -- schema drift ----------------------------------------------------------------------------


def schema_drift(
    endpoint: str,
    known: Mapping[str, Iterable[str]],
    observation: Observation,
    *,
    at: datetime,
    census: FieldCensus | None = None,
) -> tuple[list[ChangeEvent], Shape]:
    """Events for fields or JSON kinds ``known`` lacks; returns them and the merged shape.

    One event per field, however many records carry it: with ``census`` its detail says how
    many (``records`` of ``of``). Fields that stop appearing are not drift (fields come and go
    between plans); kinds only accumulate, so each new field or kind is reported once.
    """
    events: list[ChangeEvent] = []
    merged: dict[str, set[str]] = {key: set(kinds) for key, kinds in known.items()}
    for field in sorted(observation):
        seen = observation[field]
        expected = merged.get(field)
        new_kinds = sorted(set(seen) - (expected or set()))
        if not new_kinds:
            continue
        detail: dict[str, Any] = {
            "change": "new_field" if expected is None else "type_changed",
            "kinds": new_kinds,
            "example": seen[new_kinds[0]],
        }
        if census is not None:
            detail["records"] = census.fields.get(field, 0)
            detail["of"] = census.items
        events.append(
            ChangeEvent(
                kind=EventKind.SCHEMA_DRIFT,
                at=at,
                subject=endpoint,
                field=field,
                old=sorted(expected) if expected is not None else None,
                new=sorted(set(seen) | (expected or set())),
                detail=detail,
            )
        )
        merged.setdefault(field, set()).update(seen)
    return events, {key: sorted(kinds) for key, kinds in sorted(merged.items())}
