"""What happens after an alert matched an event: maintenance, lasting conditions, reminders.

Conditions. ``endpoint_down``, ``catalog_stale`` and ``catalog_quarantined`` open a condition
that ``endpoint_up``, ``catalog_fresh`` and ``quarantine_cleared`` close. For each alert that
watches an opening kind, the dispatcher keeps the open condition (``store.conditions``): which
event opened it, the alert's sinks, when it last told them and how many reminders it sent.

Reminders. With ``remind_every`` (seconds) an alert repeats the opening notice while the
condition lasts ("endpoint api is still DOWN for 2.0 h"), one delivery per sink and reminder
(``<sink>:<event id>:reminder-<n>``), and also watches the closing kind, so the condition ends
with one recovery notice that says how long it lasted ("... UP again after 2.3 h").

Maintenance (``vultr_scraper_core.maintenance``). An event about an endpoint in maintenance (or,
for the catalogue kinds, a catalogue in maintenance) is matched and recorded but not sent: its
deliveries are logged as ``muted``. A condition whose opening was held back is announced once
when the maintenance ends, if it still lasts (as a reminder: "still DOWN for ..."). Reminders
wait while the subject is in maintenance. A recovery is sent, even during maintenance, exactly
when its opening was: it closes what the receiver was told, and only that.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from vultr_scraper_core.config import AlertConfig, Config
from vultr_scraper_core.maintenance import CATALOG_SUBJECT, Maintenance, MaintenancePlan, Mute
from vultr_scraper_core.store.changes import ChangeEvent, EventKind
from vultr_scraper_core.store.conditions import (
    ConditionStore,
    Family,
    OpenCondition,
    condition_field,
)
from vultr_scraper_core.store.deliveries import DeliveryLedger, DeliveryRecord
from vultr_scraper_core.store.health import HealthStore
from vultr_scraper_core.store.mutes import MuteStore
from vultr_scraper_jobs.context import JobDeps

OPENING: dict[str, tuple[Family, str]] = {
    EventKind.ENDPOINT_DOWN: ("endpoint", EventKind.ENDPOINT_UP),
    EventKind.CATALOG_STALE: ("stale", EventKind.CATALOG_FRESH),
    EventKind.CATALOG_QUARANTINED: ("quarantine", EventKind.QUARANTINE_CLEARED),
}
CLOSING: dict[str, Family] = {closing: family for family, closing in OPENING.values()}
_ENDPOINT_KINDS = {EventKind.ENDPOINT_DOWN, EventKind.ENDPOINT_UP}
_CATALOG_KINDS = {
    EventKind.CATALOG_STALE,
    EventKind.CATALOG_FRESH,
    EventKind.CATALOG_QUARANTINED,
    EventKind.QUARANTINE_CLEARED,
}


def implied_kinds(alert: AlertConfig) -> list[str]:
    """The closing kinds an alert with reminders watches without naming them."""
    if alert.remind_every is None:
        return []
    return [OPENING[kind][1] for kind in alert.kinds if kind in OPENING]


def maintenance_subject(event: ChangeEvent) -> str | None:
    """What must be in maintenance to hold ``event`` back; None: maintenance never mutes it."""
    if event.kind in _ENDPOINT_KINDS:
        return event.subject
    if event.kind in _CATALOG_KINDS:
        return CATALOG_SUBJECT
    return None


def maintenance_plan(config: Config) -> MaintenancePlan:
    # Deferred: health imports the probes (aiohttp, dnspython), which reminders need not load.
    from vultr_scraper_jobs.health import configured_endpoints

    return MaintenancePlan.build(
        config.maintenance,
        [(endpoint.name, endpoint.maintenance) for endpoint in configured_endpoints(config)],
    )


@dataclass
class Followups:
    """One dispatcher run's view of maintenance and open conditions (``load`` first)."""

    deps: JobDeps
    now: datetime
    plan: MaintenancePlan | None = None
    mutes: list[Mute] = field(default_factory=list)
    open: dict[str, OpenCondition] = field(default_factory=dict)

    @property
    def store(self) -> ConditionStore:
        return ConditionStore(self.deps.redis, self.deps.config.redis.key_prefix)

    async def load(self) -> Followups:
        self.plan = maintenance_plan(self.deps.config)
        prefix = self.deps.config.redis.key_prefix
        self.mutes = await MuteStore(self.deps.redis, prefix).active(self.now)
        self.open = {condition.field: condition for condition in await self.store.all()}
        return self

    def maintenance(self, subject: str | None) -> Maintenance | None:
        if subject is None or self.plan is None:
            return None
        return self.plan.status(subject, self.now, self.mutes)

    async def hold(self, alert: AlertConfig, event: ChangeEvent) -> Hold | None:
        """After ``alert`` matched ``event``: track the condition it opens or closes, and say
        why it must be held back (None: send it)."""
        window = self.maintenance(maintenance_subject(event))
        held = Hold(f"in maintenance ({window.reason})", muted=True) if window else None
        if event.kind in OPENING:
            family = OPENING[event.kind][0]
            condition = OpenCondition(
                alert=alert.name,
                family=family,
                subject=event.subject,
                event_id=event.id,
                opened_at=event.at,
                sinks=tuple(alert.sinks),
                notified_at=None if held else self.now,
            )
            self.open[condition.field] = condition
            await self.store.put(condition)
            return held
        if event.kind in CLOSING:
            field_name = condition_field(alert.name, CLOSING[event.kind], event.subject)
            closed = self.open.pop(field_name, None)
            if closed is not None:
                await self.store.remove([field_name])
                if closed.notified_at is not None:
                    return None  # the receiver was told it began: tell it that it ended
                return held or NEVER_ANNOUNCED
            if event.kind not in alert.kinds:
                return NEVER_ANNOUNCED  # an implied recovery of nothing this alert announced
        return held

    async def log_muted(self, alert: AlertConfig, event: ChangeEvent, hold: Hold) -> None:
        ledger = DeliveryLedger(self.deps.redis, self.deps.config.redis.key_prefix)
        for sink in alert.sinks:
            await ledger.log(
                DeliveryRecord(
                    at=self.now,
                    sink=sink,
                    event_id=event.id,
                    alert=alert.name,
                    outcome="muted",
                    error=hold.reason,
                )
            )

    async def due_reminders(self) -> list[OpenCondition]:
        """The open conditions to notify now; drops those whose alert is gone or that ended
        without their closing event being seen (e.g. a configuration change)."""
        alerts = {alert.name: alert for alert in self.deps.config.alerts}
        ongoing = await self._ongoing(self.open.values())
        gone = [
            key for key, cond in self.open.items() if cond.alert not in alerts or key not in ongoing
        ]
        for key in gone:
            self.open.pop(key)
        await self.store.remove(gone)
        due: list[OpenCondition] = []
        for condition in self.open.values():
            if self.maintenance(_subject(condition)) is not None:
                continue
            every = alerts[condition.alert].remind_every
            if condition.notified_at is None or (
                every is not None and (self.now - condition.notified_at).total_seconds() >= every
            ):
                due.append(condition)
        return due

    async def reminded(self, condition: OpenCondition) -> OpenCondition:
        """Record that reminder ``condition.reminders + 1`` was queued now."""
        updated = OpenCondition(
            alert=condition.alert,
            family=condition.family,
            subject=condition.subject,
            event_id=condition.event_id,
            opened_at=condition.opened_at,
            sinks=condition.sinks,
            notified_at=self.now,
            reminders=condition.reminders + 1,
        )
        self.open[updated.field] = updated
        await self.store.put(updated)
        return updated

    async def _ongoing(self, conditions: Iterable[OpenCondition]) -> set[str]:
        conditions = list(conditions)
        config = self.deps.config
        endpoints = sorted({c.subject for c in conditions if c.family == "endpoint"})
        health = HealthStore(self.deps.redis, config.redis.key_prefix)
        states = await health.states(endpoints) if endpoints else {}
        flags = await self.store.catalog_flags()
        still: set[str] = set()
        for condition in conditions:
            if condition.family == "endpoint":
                lasting = states[condition.subject].state == "down"
            else:
                lasting = ("stale" if condition.family == "stale" else "quarantined") in flags
            if lasting:
                still.add(condition.field)
        return still


def _subject(condition: OpenCondition) -> str:
    return condition.subject if condition.family == "endpoint" else CATALOG_SUBJECT


@dataclass(frozen=True)
class Hold:
    """Why a matched event is not sent; ``muted`` ones are logged as deliveries."""

    reason: str
    muted: bool


# A recovery whose opening nobody was told about: nothing to close, nothing to log.
NEVER_ANNOUNCED = Hold("its opening was never announced", muted=False)
