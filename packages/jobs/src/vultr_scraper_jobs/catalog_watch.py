"""The catalogue's own condition as change events: ``catalog_stale`` / ``catalog_fresh`` and
``catalog_quarantined`` / ``quarantine_cleared`` (subject ``catalog``).

Staleness comes from time passing, not from a scrape, so the alert dispatcher (every minute)
looks at the catalogue (``freshness.catalogue_condition``), compares it with what it saw last
(``store.conditions``) and appends an event for each change, in the same transaction as the new
flags. Those events are then matched against ``[[alerts]]`` like any other.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from redis.asyncio import Redis

from vultr_scraper_core.config import Config
from vultr_scraper_core.formats import format_instant
from vultr_scraper_core.freshness import CatalogueCondition, catalogue_condition
from vultr_scraper_core.store.changes import ChangeEvent, ChangeFeed, EventKind
from vultr_scraper_core.store.conditions import CatalogFlag, ConditionStore
from vultr_scraper_core.store.queries import catalogue_summary

CATALOG = "catalog"


def flags_of(condition: CatalogueCondition) -> dict[CatalogFlag, datetime]:
    flags: dict[CatalogFlag, datetime] = {}
    if condition.stale and condition.stale_since is not None:
        flags["stale"] = condition.stale_since
    if condition.quarantined and condition.quarantined_at is not None:
        flags["quarantined"] = condition.quarantined_at
    return flags


def transitions(
    before: dict[CatalogFlag, datetime],
    condition: CatalogueCondition,
    now: datetime,
) -> list[ChangeEvent]:
    """The events that take the stored flags ``before`` to ``condition``."""
    events: list[ChangeEvent] = []
    after = flags_of(condition)
    if "stale" in after and "stale" not in before:
        detail: dict[str, Any] = {
            "reason": condition.reason,
            "stale_since": format_instant(after["stale"]),
        }
        events.append(_event(EventKind.CATALOG_STALE, now, "fresh", "stale", detail))
    elif "stale" in before and "stale" not in after:
        lasted = round((now - before["stale"]).total_seconds(), 3)
        detail = {"stale_since": format_instant(before["stale"]), "stale_s": lasted}
        events.append(_event(EventKind.CATALOG_FRESH, now, "stale", "fresh", detail))
    if "quarantined" in after and "quarantined" not in before:
        detail = {"reason": condition.quarantine_reason}
        at = after["quarantined"]
        events.append(_event(EventKind.CATALOG_QUARANTINED, at, "current", "quarantined", detail))
    elif "quarantined" in before and "quarantined" not in after:
        lasted = round((now - before["quarantined"]).total_seconds(), 3)
        detail = {
            "quarantined_since": format_instant(before["quarantined"]),
            "quarantined_s": lasted,
        }
        events.append(_event(EventKind.QUARANTINE_CLEARED, now, "quarantined", "current", detail))
    return events


def _event(
    kind: EventKind, at: datetime, old: str, new: str, detail: dict[str, Any]
) -> ChangeEvent:
    return ChangeEvent(kind=kind, at=at, subject=CATALOG, old=old, new=new, detail=detail)


async def watch_catalogue(redis: Redis, config: Config, now: datetime) -> list[ChangeEvent]:
    """Append the events of the catalogue's condition changes since the last look; return them."""
    prefix = config.redis.key_prefix
    store = ConditionStore(redis, prefix)
    condition = catalogue_condition(
        await catalogue_summary(redis, prefix), config.http.catalog_max_age, now
    )
    before = await store.catalog_flags()
    events = transitions(before, condition, now)
    after = flags_of(condition)
    if after == before:
        return []
    changed = await store.change_catalog_flags(before, after, events, ChangeFeed(redis, prefix))
    return events if changed else []  # another dispatcher recorded this change first
