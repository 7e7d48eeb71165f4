"""A change event in words: the one line shown by the Atom feed, the status page and alerts.

``describe_event`` is the single home of this text, so that a notification, a feed entry and
the status page say the same thing about the same change, for example::

    vcg-a100-1c-6g-4vram back in stock in fra
    price of vhp-2c-4gb-amd in fra: 26.40 -> 24.00 USD/month (-9.1%)
    new plan vc2-1c-1gb (vc2, 1 vCPU, 1024 MB, $5/month)
    endpoint api is DOWN: timed out after 10 s
"""

from __future__ import annotations

from typing import Any

from vultr_scraper_core.formats import format_money, to_decimal
from vultr_scraper_core.store.changes import ChangeEvent, EventKind

_PRICE_UNITS = {
    "monthly_cost": "USD/month",
    "hourly_cost": "USD/hour",
    "monthly_cost_preemptible": "USD/month preemptible",
    "hourly_cost_preemptible": "USD/hour preemptible",
}
_LONGEST = 80


def describe_event(event: ChangeEvent) -> str:
    """One line a person understands, without Python reprs (no ``False -> True``)."""
    kind, subject = event.kind, event.subject
    where = f" in {event.region}" if event.region else ""
    if kind == EventKind.STOCK_CHANGED:
        state = "back in stock" if event.new is True else "out of stock"
        return f"{subject} {state}{where}"
    if kind == EventKind.PRICE_CHANGED:
        return _price(event, where)
    if kind == EventKind.PLAN_ADDED and event.detail.get("collection") == "databases":
        return f"new database plan {subject}{_facts(_record(event))}"
    if kind == EventKind.PLAN_RETIRED and event.detail.get("collection") == "databases":
        return f"database plan {subject} retired{_facts(_record(event))}"
    if kind == EventKind.PLAN_ADDED:
        return f"new plan {subject}{_facts(_record(event))}"
    if kind == EventKind.PLAN_RETIRED:
        return f"plan {subject} retired{_facts(_record(event))}"
    if kind == EventKind.SPEC_CHANGED:
        field = event.field or "spec"
        return f"{subject}{where}: {field} changed {_short(event.old)} -> {_short(event.new)}"
    if kind == EventKind.REGION_ADDED:
        return f"region {subject} added{_place(_record(event))}"
    if kind == EventKind.REGION_REMOVED:
        return f"region {subject} removed{_place(_record(event))}"
    if kind == EventKind.SCHEMA_DRIFT:
        return _drift(event)
    if kind in _OFFERINGS:
        return _offering(event)
    if kind == EventKind.ENDPOINT_DOWN:
        error = event.detail.get("error") or "failing"
        return f"endpoint {subject} is DOWN: {error}"
    if kind == EventKind.ENDPOINT_UP:
        return f"endpoint {subject} is UP again{_lasted(event, 'downtime_s')}"
    if kind == EventKind.CATALOG_STALE:
        return f"the catalogue is stale: {event.detail.get('reason') or 'no recent good scrape'}"
    if kind == EventKind.CATALOG_FRESH:
        return f"the catalogue is fresh again{_lasted(event, 'stale_s')}"
    if kind == EventKind.CATALOG_QUARANTINED:
        reason = event.detail.get("reason") or "held back by the gate"
        return f"a catalogue scrape is quarantined: {reason}"
    if kind == EventKind.QUARANTINE_CLEARED:
        return f"the catalogue quarantine is cleared{_lasted(event, 'quarantined_s')}"
    changed = f": {_short(event.old)} -> {_short(event.new)}" if event.old or event.new else ""
    return f"{kind} {subject}{where}{changed}"


# The rest of the catalogue: (what it is, "added" word, "removed" word).
_OFFERINGS: dict[str, tuple[str, str]] = {
    EventKind.APP_ADDED: ("application", "added"),
    EventKind.APP_REMOVED: ("application", "removed"),
    EventKind.K8S_VERSION_ADDED: ("Kubernetes version", "offered"),
    EventKind.K8S_VERSION_REMOVED: ("Kubernetes version", "withdrawn"),
    EventKind.STORAGE_CLUSTER_ADDED: ("object-storage cluster", "added"),
    EventKind.STORAGE_CLUSTER_REMOVED: ("object-storage cluster", "removed"),
    EventKind.ISO_ADDED: ("public ISO", "added"),
    EventKind.ISO_REMOVED: ("public ISO", "removed"),
    EventKind.OS_ADDED: ("OS image", "added"),
    EventKind.OS_REMOVED: ("OS image", "removed"),
    EventKind.REGION_SERVICE_ADDED: ("", ""),
    EventKind.REGION_SERVICE_REMOVED: ("", ""),
    EventKind.STORAGE_AVAILABILITY_CHANGED: ("", ""),
}


def _offering(event: ChangeEvent) -> str:
    """``load_balancers now offered in sgp``, ``application 1028 added (WordPress)``."""
    kind, subject = event.kind, event.subject
    if kind == EventKind.REGION_SERVICE_ADDED:
        return f"{event.field} now offered in {subject}"
    if kind == EventKind.REGION_SERVICE_REMOVED:
        return f"{event.field} no longer offered in {subject}"
    if kind == EventKind.STORAGE_AVAILABILITY_CHANGED:
        where = f" in {event.region}" if event.region else ""
        now = "open for new subscriptions" if event.new == "yes" else "closed to new subscriptions"
        return f"object-storage cluster {subject}{where} {now}"
    what, verb = _OFFERINGS[kind]
    record = _record(event)
    name = record.get("name") or record.get("hostname") or record.get("region")
    named = f" ({_short(name)})" if isinstance(name, str) and name else ""
    return f"{what} {subject} {verb}{named}"


def _drift(event: ChangeEvent) -> str:
    records, total = event.detail.get("records"), event.detail.get("of")
    carried = f" on {records} of {total} records" if records is not None and total else ""
    if event.detail.get("change") == "new_field" and event.field:
        kinds = ", ".join(str(kind) for kind in event.detail.get("kinds") or [])
        typed = f" ({kinds})" if kinds else ""
        return f"schema drift at {event.subject}: new field {event.field}{typed}{carried}"
    field = f" {event.field}" if event.field else ""
    changed = f"{_short(event.old)} -> {_short(event.new)}"
    return f"schema drift at {event.subject}:{field} {changed}{carried}"


# An event that opens a condition, and how that condition reads while it lasts.
_ONGOING: dict[str, str] = {
    EventKind.ENDPOINT_DOWN: "endpoint {subject} is still DOWN",
    EventKind.CATALOG_STALE: "the catalogue is still stale",
    EventKind.CATALOG_QUARANTINED: "a catalogue scrape is still quarantined",
}


def describe_ongoing(event: ChangeEvent, elapsed_s: float) -> str:
    """A reminder's line: the condition ``event`` opened, ``elapsed_s`` seconds on."""
    template = _ONGOING.get(event.kind)
    if template is None:
        return describe_event(event)
    reason = event.detail.get("error") or event.detail.get("reason")
    since = f" for {duration(elapsed_s)}"
    return template.format(subject=event.subject) + since + (f" ({reason})" if reason else "")


def _lasted(event: ChangeEvent, key: str) -> str:
    seconds = event.detail.get(key)
    return f" after {duration(float(seconds))}" if seconds is not None else ""


def _price(event: ChangeEvent, where: str) -> str:
    field = event.field or "price"
    unit = _PRICE_UNITS.get(field, "")
    scope = where or " (base price)"
    label = "price" if field in _PRICE_UNITS else field
    old, new = _money(event.old), _money(event.new)
    text = f"{label} of {event.subject}{scope}: {old} -> {new}"
    if unit:
        text += f" {unit}"
    percent = _percent(event.old, event.new)
    return f"{text} ({percent})" if percent else text


def _money(value: Any) -> str:
    """At least two decimals (``24`` -> ``24.00``), more when published (``0.007``)."""
    if value is None:
        return "none"
    shown = format_money(to_decimal(value))
    return shown if shown is not None else _short(value)


def _percent(old: Any, new: Any) -> str:
    before, after = to_decimal(old), to_decimal(new)
    if before is None or after is None or before == 0:
        return ""
    return f"{(after - before) / before * 100:+.1f}%"


def _record(event: ChangeEvent) -> dict[str, Any]:
    """The plan or region record of an added / retired event (``new``, ``old`` or detail)."""
    for candidate in (event.new, event.old, event.detail.get("plan"), event.detail):
        if isinstance(candidate, dict) and candidate:
            return candidate
    return {}


def _facts(record: dict[str, Any]) -> str:
    facts = []
    if record.get("type"):
        facts.append(str(record["type"]))
    cpus = record.get("vcpu_count") or record.get("cpu_count")
    if cpus:
        facts.append(f"{cpus} vCPU")
    if record.get("ram"):
        facts.append(f"{record['ram']} MB")
    if record.get("gpu_type"):
        facts.append(str(record["gpu_type"]))
    if record.get("monthly_cost") is not None:
        facts.append(f"${record['monthly_cost']}/month")
    return f" ({', '.join(facts)})" if facts else ""


def _place(record: dict[str, Any]) -> str:
    place = ", ".join(str(record[key]) for key in ("city", "country") if record.get(key))
    return f" ({place})" if place else ""


def _value(value: Any) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{key}: {_value(item)}" for key, item in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_value(item) for item in value) + "]"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return "none" if value is None else str(value)


def _short(value: Any) -> str:
    text = _value(value)
    return text if len(text) <= _LONGEST else text[: _LONGEST - 3] + "..."


def duration(seconds: float) -> str:
    """``45 s``, ``10 min``, ``2.5 h``."""
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def plural(count: int, singular: str, many: str | None = None) -> str:
    """``1 job``, ``2 jobs``, ``0 jobs``; ``many`` for irregular plurals (``1 entry``)."""
    word = singular if count == 1 else (many if many is not None else singular + "s")
    return f"{count} {word}"
