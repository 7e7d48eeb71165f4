"""Saved-search alerts and the ``dispatch-alerts`` job.

Vocabulary: the ``kinds`` an ``[[alerts]]`` table may watch, and the change events they match.

=================  ==================  ==============================================
alert kind         change event        condition on the event
=================  ==================  ==============================================
new_plan           plan_added
plan_retired       plan_retired
price_changed      price_changed       any direction (also a price appearing/vanishing)
price_dropped      price_changed       ``new < old`` (both present)
price_increased    price_changed       ``new > old`` (both present)
back_in_stock      stock_changed       ``new`` is true
out_of_stock       stock_changed       ``new`` is false
stock_changed      stock_changed       either
spec_changed       spec_changed
region_added       region_added
region_removed     region_removed
schema_drift       schema_drift
endpoint_down      endpoint_down
endpoint_up        endpoint_up
region_service_*   region_service_*    a region starts / stops offering a service
app_*, iso_*,      the event of the    (added / removed); storage_availability_changed:
os_*, k8s_version_*, storage_cluster_*, storage_availability_changed    same name
=================  ==================  ==============================================

``collections`` (empty: any) restricts every catalogue event to the collections named in its
``detail.collection`` (``plans``, ``metal``, ``databases``, ``apps``, ...). ``subject`` is a
glob on the subject of app, Kubernetes version, storage-cluster, ISO and OS events and on the
service of ``region_service_*`` events. Database-plan events (``plan_added``,
``price_changed``, ... with collection ``databases``) match on ``plan``, ``regions`` and
``collections``; the compute attributes (vCPU, GPU, stock, price caps) do not apply to them.

Filters. For plan events (plan_*, price_*, stock_*, spec_changed) the plan's *current*
attributes are matched (``store.queries.plan_matches`` on its rows, one per region it is sold
in): ``plan_type``, ``plan`` (id or glob), ``min_vcpu``, ``min_ram_mb``, ``min_gpu_vram_gb``,
``gpu_type`` (substring of the GPU type or brand, any case), ``max_monthly`` / ``max_hourly``
(the region's price, exact decimals), ``in_stock``, ``regions`` and the stock reliability
``min_in_stock_share_24h`` / ``_7d`` / ``_30d`` (the share of that window the pair was in stock,
``history.stats.in_stock_share`` over its intervals, counting from the region's first stock
check; a pair never observed has no share and does not match). An event about one region
(stock, regional price) is matched against that region's row only, and only if the region is
among ``regions`` (when set); an event about the whole plan (added, base price, spec) matches
when any of its rows in ``regions`` matches. A retired plan is matched as it was just before
it was retired. Region events match when the region is in ``regions`` (or ``regions`` is
empty); endpoint events when the endpoint name matches ``endpoint`` (name or glob, empty: any).

Dispatch. The job reads the change feed after a cursor kept in Redis, matches every event
against every alert, and enqueues one ``deliver-notification`` job per (event, sink) with the
job id ``deliver:<sink>:<event id>`` (two alerts matching one event share one notification per
sink: the first alert in the file names it), or one digest for a sink that would get more
than its ``storm_limit`` in this run (``storm``). The cursor then moves past the events read. On
its very first run the dispatcher only sets the cursor to the newest event: the history that
already exists, in particular the first catalogue snapshot where every plan is "added", is the
baseline and is never notified.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from redis.asyncio import Redis

from vultr_scraper_core.config import ALERT_KINDS, AlertConfig, alert_share_conditions
from vultr_scraper_core.history import stats
from vultr_scraper_core.history.query import History
from vultr_scraper_core.history.tables import StockInterval
from vultr_scraper_core.store.changes import ChangeEvent, ChangeFeed, EventKind
from vultr_scraper_core.store.deliveries import DeliveryLedger
from vultr_scraper_core.store.queries import PlanFilter, PlanRow, find_plans, plan_matches
from vultr_scraper_core.store.stock import RegionCheck, StockStore
from vultr_scraper_jobs.catalog_watch import watch_catalogue
from vultr_scraper_jobs.context import JobDeps, deps
from vultr_scraper_jobs.notify import ledger_id
from vultr_scraper_jobs.reminders import Followups, implied_kinds
from vultr_scraper_jobs.storm import DELIVER_JOB, Planned, delivery_job_id, queue_planned

MAX_EVENTS_PER_RUN = 2000


def _decimal(value: Any) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None


def _dropped(event: ChangeEvent) -> bool:
    old, new = _decimal(event.old), _decimal(event.new)
    return old is not None and new is not None and new < old


def _increased(event: ChangeEvent) -> bool:
    old, new = _decimal(event.old), _decimal(event.new)
    return old is not None and new is not None and new > old


@dataclass(frozen=True)
class Watch:
    kind: EventKind
    condition: Callable[[ChangeEvent], bool] | None = None

    def covers(self, event: ChangeEvent) -> bool:
        return event.kind == self.kind and (self.condition is None or self.condition(event))


WATCHES: dict[str, Watch] = {
    "new_plan": Watch(EventKind.PLAN_ADDED),
    "plan_retired": Watch(EventKind.PLAN_RETIRED),
    "price_changed": Watch(EventKind.PRICE_CHANGED),
    "price_dropped": Watch(EventKind.PRICE_CHANGED, _dropped),
    "price_increased": Watch(EventKind.PRICE_CHANGED, _increased),
    "back_in_stock": Watch(EventKind.STOCK_CHANGED, lambda event: event.new is True),
    "out_of_stock": Watch(EventKind.STOCK_CHANGED, lambda event: event.new is False),
    "stock_changed": Watch(EventKind.STOCK_CHANGED),
    "spec_changed": Watch(EventKind.SPEC_CHANGED),
    "region_added": Watch(EventKind.REGION_ADDED),
    "region_removed": Watch(EventKind.REGION_REMOVED),
    "schema_drift": Watch(EventKind.SCHEMA_DRIFT),
    "endpoint_down": Watch(EventKind.ENDPOINT_DOWN),
    "endpoint_up": Watch(EventKind.ENDPOINT_UP),
    "catalog_stale": Watch(EventKind.CATALOG_STALE),
    "catalog_fresh": Watch(EventKind.CATALOG_FRESH),
    "catalog_quarantined": Watch(EventKind.CATALOG_QUARANTINED),
    "quarantine_cleared": Watch(EventKind.QUARANTINE_CLEARED),
    **{
        str(kind): Watch(kind)
        for kind in (
            EventKind.REGION_SERVICE_ADDED,
            EventKind.REGION_SERVICE_REMOVED,
            EventKind.APP_ADDED,
            EventKind.APP_REMOVED,
            EventKind.K8S_VERSION_ADDED,
            EventKind.K8S_VERSION_REMOVED,
            EventKind.STORAGE_CLUSTER_ADDED,
            EventKind.STORAGE_CLUSTER_REMOVED,
            EventKind.STORAGE_AVAILABILITY_CHANGED,
            EventKind.ISO_ADDED,
            EventKind.ISO_REMOVED,
            EventKind.OS_ADDED,
            EventKind.OS_REMOVED,
        )
    },
}
assert set(WATCHES) == set(ALERT_KINDS), "the config vocabulary and the matcher disagree"

PLAN_EVENTS = {
    EventKind.PLAN_ADDED,
    EventKind.PLAN_RETIRED,
    EventKind.PRICE_CHANGED,
    EventKind.SPEC_CHANGED,
    EventKind.STOCK_CHANGED,
}
REGION_EVENTS = {EventKind.REGION_ADDED, EventKind.REGION_REMOVED}
SERVICE_EVENTS = {EventKind.REGION_SERVICE_ADDED, EventKind.REGION_SERVICE_REMOVED}
# Events about the rest of the catalogue: filtered by subject glob and, when they name one,
# their region (a storage cluster's).
OFFERING_EVENTS = {
    EventKind.APP_ADDED,
    EventKind.APP_REMOVED,
    EventKind.K8S_VERSION_ADDED,
    EventKind.K8S_VERSION_REMOVED,
    EventKind.STORAGE_CLUSTER_ADDED,
    EventKind.STORAGE_CLUSTER_REMOVED,
    EventKind.STORAGE_AVAILABILITY_CHANGED,
    EventKind.ISO_ADDED,
    EventKind.ISO_REMOVED,
    EventKind.OS_ADDED,
    EventKind.OS_REMOVED,
}
ENDPOINT_EVENTS = {EventKind.ENDPOINT_DOWN, EventKind.ENDPOINT_UP}


def watches(alert: AlertConfig, event: ChangeEvent) -> bool:
    kinds = [*alert.kinds, *implied_kinds(alert)]
    return any(WATCHES[kind].covers(event) for kind in kinds if kind in WATCHES)


def plan_filter(alert: AlertConfig) -> PlanFilter:
    """The attribute part of an alert as a query filter (``plan`` globs are matched apart)."""
    return PlanFilter(
        plan_type=alert.plan_type,
        min_vcpu=alert.min_vcpu,
        min_ram_mb=alert.min_ram_mb,
        min_gpu_vram_gb=alert.min_gpu_vram_gb,
        gpu_type=alert.gpu_type,
        max_monthly=alert.max_monthly,
        max_hourly=alert.max_hourly,
        in_stock=alert.in_stock,
        regions=list(alert.regions),
    )


def has_plan_conditions(alert: AlertConfig) -> bool:
    flt = plan_filter(alert)
    return flt != PlanFilter(regions=[]) or bool(alert_share_conditions(alert))


class PlanAttributes:
    """The rows of each plan: current ones, and for a retired plan those just before the event;
    and each plan's stock shares at ``now``. Loaded lazily, once per dispatch run. ``history``
    reads the stock intervals (default: the Redis window alone)."""

    def __init__(
        self,
        redis: Redis,
        prefix: str,
        *,
        history: History | None = None,
        now: datetime | None = None,
    ) -> None:
        self.redis = redis
        self.prefix = prefix
        self.history = history if history is not None else History(redis, prefix, None)
        self.now = now or datetime.now(UTC)
        self._current: dict[str, list[PlanRow]] | None = None
        self._before: dict[tuple[str, datetime], list[PlanRow]] = {}
        self._stock: dict[str, dict[str, list[StockInterval]]] = {}
        self._checks: dict[str, RegionCheck] | None = None

    async def share(self, plan: str, region: str, window: str) -> float | None:
        """The share of the ``window`` before ``now`` that ``plan`` was in stock in ``region``
        (observed part only); None when the region was never checked in that window."""
        if plan not in self._stock:
            since = self.now - max(stats.WINDOWS[name] for name in ("24h", "7d", "30d"))
            by_region: dict[str, list[StockInterval]] = {}
            for row in await self.history.stock_intervals(since, self.now, plan):
                by_region.setdefault(row.region, []).append(row)
            self._stock[plan] = by_region
        if self._checks is None:
            self._checks = await StockStore(self.redis, self.prefix).region_checks()
        check = self._checks.get(region)
        if check is None:
            return None
        return stats.in_stock_share(
            self._stock[plan].get(region, []),
            self.now - stats.WINDOWS[window],
            self.now,
            observed_from=check.first_checked,
        )

    async def reliable(self, alert: AlertConfig, row: PlanRow) -> bool:
        """Whether ``row``'s pair meets every ``min_in_stock_share_*`` of ``alert``."""
        for window, least in alert_share_conditions(alert).items():
            if row.region is None:
                return False
            share = await self.share(row.plan, row.region, window)
            if share is None or share < least:
                return False
        return True

    async def rows(self, event: ChangeEvent) -> list[PlanRow]:
        if self._current is None:
            self._current = {}
            for row in await find_plans(self.redis, self.prefix, PlanFilter()):
                self._current.setdefault(row.plan, []).append(row)
        found = self._current.get(event.subject)
        if found or event.kind != EventKind.PLAN_RETIRED:
            return found or []
        key = (event.subject, event.at)
        if key not in self._before:
            moment = event.at - timedelta(milliseconds=1)
            self._before[key] = await find_plans(
                self.redis, self.prefix, PlanFilter(plan=event.subject), at=moment
            )
        return self._before[key]


def _glob(pattern: str | None, name: str) -> bool:
    return pattern is None or fnmatch.fnmatchcase(name, pattern)


async def matches(alert: AlertConfig, event: ChangeEvent, plans: PlanAttributes) -> bool:
    """Whether ``event`` is one ``alert`` asks for (see the module docstring)."""
    if not watches(alert, event):
        return False
    if event.kind in ENDPOINT_EVENTS:
        return _glob(alert.endpoint, event.subject)
    collection = event.detail.get("collection")
    if alert.collections and collection is not None and collection not in alert.collections:
        return False
    if event.kind in REGION_EVENTS:
        return not alert.regions or event.subject in alert.regions
    if event.kind in SERVICE_EVENTS:
        in_region = not alert.regions or event.subject in alert.regions
        return in_region and _glob(alert.subject, event.field or "")
    if event.kind in OFFERING_EVENTS:
        region = event.region or event.detail.get("region")
        if alert.regions and region not in alert.regions:
            return False
        return _glob(alert.subject, event.subject)
    if event.kind not in PLAN_EVENTS:
        return True  # schema drift: nothing to filter on
    if not _glob(alert.plan, event.subject):
        return False
    if event.region is not None and alert.regions and event.region not in alert.regions:
        return False
    if collection == "databases":
        return True  # database plans have no compute rows to match attributes against
    rows = await plans.rows(event)
    if event.region is not None:
        rows = [row for row in rows if row.region == event.region]
    if not rows:
        return not has_plan_conditions(alert)
    flt = plan_filter(alert)
    for row in rows:
        if plan_matches(flt, row) and await plans.reliable(alert, row):
            return True
    return False


async def queue_reminders(d: JobDeps, followups: Followups) -> list[dict[str, Any]]:
    """One delivery per sink for each open condition whose reminder is due."""
    queued: list[dict[str, Any]] = []
    for condition in await followups.due_reminders():
        number = condition.reminders + 1
        for sink in condition.sinks:
            job_id = delivery_job_id(sink, ledger_id(condition.event_id, number))
            await d.enqueue(
                DELIVER_JOB, sink, condition.event_id, condition.alert, number, job_id=job_id
            )
        await followups.reminded(condition)
        queued.append({"alert": condition.alert, "subject": condition.subject, "reminder": number})
    return queued


async def dispatch_alerts(ctx: dict[str, Any], now: datetime | None = None) -> dict[str, Any]:
    """Match new change events against ``[[alerts]]`` and queue one delivery per event and sink;
    then the reminders that are due (``reminders``). ``now`` is for tests (a controlled clock)."""
    d = deps(ctx)
    clock = now or datetime.now(UTC)
    prefix = d.config.redis.key_prefix
    ledger = DeliveryLedger(d.redis, prefix)
    feed = ChangeFeed(d.redis, prefix)
    await watch_catalogue(d.redis, d.config, clock)
    cursor = await ledger.cursor()
    if cursor is None:
        newest = await feed.latest(limit=1)
        if newest:
            await ledger.set_cursor(newest[0].id)
        baseline = newest[0].id if newest else None
        return {"status": "success", "baseline": baseline, "events": 0, "enqueued": 0}
    events = await feed.read(after=cursor, limit=MAX_EVENTS_PER_RUN)
    plans = PlanAttributes(
        d.redis, prefix, history=History.from_config(d.redis, d.config, d.secrets), now=clock
    )
    followups = await Followups(d, clock).load()
    matched: list[dict[str, str]] = []
    planned: list[Planned] = []  # queued after the loop: a storm is one digest per sink
    muted = 0
    done: str | None = None
    queued: dict[str, Any] = {"enqueued": 0, "already_queued": 0, "digests": {}}
    try:
        for event in events:
            sinks_done: set[str] = set()
            for alert in d.config.alerts:
                if not await matches(alert, event, plans):
                    continue
                matched.append({"alert": alert.name, "event": event.id, "kind": event.kind})
                hold = await followups.hold(alert, event)
                if hold is not None:
                    if hold.muted:
                        muted += 1
                        await followups.log_muted(alert, event, hold)
                    continue
                for sink in alert.sinks:
                    if sink not in sinks_done:
                        sinks_done.add(sink)
                        planned.append(Planned(sink=sink, event=event, alert=alert.name))
            done = event.id
    finally:
        # What was planned is queued before the cursor moves past it, even when the loop
        # stopped early: nothing read is ever skipped.
        if done is not None:
            queued = await queue_planned(d, planned, after=cursor, until=done)
            await ledger.set_cursor(done)
    reminders = await queue_reminders(d, followups)
    return {
        "status": "success",
        "events": len(events),
        "matched": matched,
        **queued,
        "muted": muted,
        "reminders": reminders,
        "cursor": done or cursor,
        "more": len(events) == MAX_EVENTS_PER_RUN,
    }
