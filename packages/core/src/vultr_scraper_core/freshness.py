"""Is the catalogue fresh, stale or quarantined? One rule for ``/healthz``, the catalogue badge and
the catalogue alerts.

* stale: the last good scrape is older than ``[http] catalog_max_age`` seconds (or there never
  was one: ``state`` is ``unknown`` then, and no alert is raised before a first scrape);
* quarantined: a scrape is held back by the gate, waiting for a person;
* ``state`` names the worse of the two (stale first: the data shown is old), else ``fresh``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Literal

import msgspec

from vultr_scraper_core.describe import duration
from vultr_scraper_core.store.queries import CatalogueSummary

CatalogueState = Literal["fresh", "stale", "quarantined", "unknown"]


class CatalogueCondition(msgspec.Struct, frozen=True, kw_only=True):
    state: CatalogueState
    stale: bool
    quarantined: bool
    reason: str  # why it is not fresh, or how fresh it is
    stale_since: datetime | None = None  # when the last good scrape became too old
    quarantined_at: datetime | None = None
    quarantine_reason: str = ""


def catalogue_condition(
    summary: CatalogueSummary, max_age: float, now: datetime | None = None
) -> CatalogueCondition:
    moment = now or datetime.now(UTC)
    quarantine = summary.quarantine
    quarantined_at = quarantine.quarantined_at if quarantine is not None else None
    quarantine_reason = quarantine.reason if quarantine is not None else ""
    last = summary.last_success_at
    stale = last is not None and (moment - last).total_seconds() > max_age
    if last is None:
        reason = "no successful catalogue scrape yet"
    else:
        age = (moment - last).total_seconds()
        limit = f" (more than {duration(max_age)})" if stale else ""
        reason = f"the last good scrape was {duration(max(age, 0.0))} ago{limit}"
    state: CatalogueState = "fresh"
    if stale:
        state = "stale"
    elif quarantine is not None:
        state = "quarantined"
    elif last is None:
        state = "unknown"
    return CatalogueCondition(
        state=state,
        stale=stale,
        quarantined=quarantine is not None,
        reason=reason,
        stale_since=last + timedelta(seconds=max_age) if stale and last is not None else None,
        quarantined_at=quarantined_at,
        quarantine_reason=quarantine_reason,
    )
