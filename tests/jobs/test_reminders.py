"""Reminders, recoveries and maintenance in the alert dispatcher, on a controlled clock.

Endpoint transitions are recorded by the real health store (so the change events are the ones
``check-health`` writes); each dispatcher run is given its own "now"; the queued deliveries are
captured from the job context's ``enqueue``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from redis.asyncio import Redis

from vultr_scraper_core.config import (
    AlertConfig,
    Config,
    EndpointConfig,
    HealthConfig,
    HttpConfig,
    Secrets,
    SinkConfig,
    WindowConfig,
)
from vultr_scraper_core.http import HttpClient
from vultr_scraper_core.maintenance import Mute
from vultr_scraper_core.store.catalog import CatalogueStore
from vultr_scraper_core.store.changes import ChangeFeed, EventKind
from vultr_scraper_core.store.conditions import ConditionStore
from vultr_scraper_core.store.deliveries import DeliveryLedger
from vultr_scraper_core.store.health import HealthStore, ProbeResult
from vultr_scraper_core.store.mutes import MuteStore
from vultr_scraper_jobs.alerts import dispatch_alerts
from vultr_scraper_jobs.context import make_context
from vultr_scraper_jobs.maintenance import remove_mute, set_mute

PREFIX = "vs"
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
MINUTE = timedelta(minutes=1)


@dataclass
class Queue:
    """What the dispatcher enqueued: (sink, event id, alert, reminder number)."""

    jobs: list[tuple[str, str, str, int]] = field(default_factory=list)
    ids: set[str] = field(default_factory=set)

    async def __call__(
        self, job_name: str, *args: Any, job_id: str | None = None, defer_by: float | None = None
    ) -> str | None:
        assert job_name == "deliver-notification"
        if job_id in self.ids:
            return None
        self.ids.add(str(job_id))
        sink, event_id, alert, *rest = args
        self.jobs.append((sink, event_id, alert, rest[0] if rest else 0))
        return job_id

    def take(self) -> list[tuple[str, str, str, int]]:
        taken, self.jobs = self.jobs, []
        return taken


def config(**alert: Any) -> Config:
    values: dict[str, Any] = {"name": "api-down", "kinds": ["endpoint_down"], "sinks": ["hook"]}
    values.update(alert)
    return Config(
        health=HealthConfig(
            check_vultr_api=False, endpoints=[EndpointConfig(name="api", url="http://api.test/")]
        ),
        alerts=[AlertConfig(**values)],
        sinks=[SinkConfig(name="hook", url="http://hook.test/")],
    )


@dataclass
class World:
    redis: Redis
    config: Config
    queue: Queue = field(default_factory=Queue)

    async def dispatch(self, now: datetime) -> dict[str, Any]:
        ctx = make_context(
            config=self.config,
            secrets=Secrets(),
            redis=self.redis,
            http=HttpClient.__new__(HttpClient),  # the dispatcher sends nothing itself
            enqueue=self.queue,
        )
        return await dispatch_alerts(ctx, now=now)

    async def probe(self, at: datetime, ok: bool, times: int) -> None:
        store = HealthStore(self.redis, PREFIX)
        feed = ChangeFeed(self.redis, PREFIX)
        for index in range(times):
            result = ProbeResult(at=at + index * MINUTE, ok=ok, error="" if ok else "timed out")
            await store.record(
                "api", "http://api.test/", result, failure_threshold=2, success_threshold=2,
                feed=feed,
            )  # fmt: skip

    async def start(self) -> None:
        await DeliveryLedger(self.redis, PREFIX).set_cursor("0-1")  # past the (empty) baseline


async def world(redis: Redis, **alert: Any) -> World:
    made = World(redis, config(**alert))
    await made.start()
    return made


async def test_reminders_at_the_interval_and_one_recovery(redis: Redis) -> None:
    w = await world(redis, remind_every=3600)
    await w.probe(T0, ok=False, times=2)  # DOWN at T0 + 1 min
    [down] = await ChangeFeed(redis, PREFIX).latest(1)
    assert down.kind == EventKind.ENDPOINT_DOWN

    await w.dispatch(T0 + 2 * MINUTE)
    assert w.queue.take() == [("hook", down.id, "api-down", 0)]
    await w.dispatch(T0 + 30 * MINUTE)
    await w.dispatch(T0 + 61 * MINUTE)  # 59 min after the notice: not yet
    assert w.queue.take() == []
    result = await w.dispatch(T0 + 62 * MINUTE)
    assert w.queue.take() == [("hook", down.id, "api-down", 1)]
    assert result["reminders"] == [{"alert": "api-down", "subject": "api", "reminder": 1}]
    await w.dispatch(T0 + 2 * HOUR)
    assert w.queue.take() == []
    await w.dispatch(T0 + 2 * HOUR + 2 * MINUTE)
    assert w.queue.take() == [("hook", down.id, "api-down", 2)]

    await w.probe(T0 + 150 * MINUTE, ok=True, times=2)  # UP at T0 + 151 min
    [up] = await ChangeFeed(redis, PREFIX).latest(1)
    assert up.kind == EventKind.ENDPOINT_UP and up.detail["downtime_s"] == 150 * 60
    # The alert names only endpoint_down: with reminders it is also told of the recovery, once.
    await w.dispatch(T0 + 152 * MINUTE)
    assert w.queue.take() == [("hook", up.id, "api-down", 0)]
    for later in (3 * HOUR, 5 * HOUR):
        await w.dispatch(T0 + later)
    assert w.queue.take() == []
    assert await ConditionStore(redis, PREFIX).all() == []


async def test_without_reminders_no_repeat_and_no_implied_recovery(redis: Redis) -> None:
    w = await world(redis)
    await w.probe(T0, ok=False, times=2)
    await w.dispatch(T0 + 2 * MINUTE)
    assert len(w.queue.take()) == 1
    await w.dispatch(T0 + 5 * HOUR)
    await w.probe(T0 + 6 * HOUR, ok=True, times=2)
    await w.dispatch(T0 + 6 * HOUR + 5 * MINUTE)
    assert w.queue.take() == []


async def test_condition_that_ended_unseen_gets_no_reminder(redis: Redis) -> None:
    w = await world(redis, remind_every=600)
    await w.probe(T0, ok=False, times=2)
    await w.dispatch(T0 + 2 * MINUTE)
    w.queue.take()
    # The endpoint recovers but the dispatcher's cursor is moved past the UP event (e.g. a
    # backlog it skipped): the condition is over, so no reminder repeats a stale alarm.
    await w.probe(T0 + 5 * MINUTE, ok=True, times=2)
    [up] = await ChangeFeed(redis, PREFIX).latest(1)
    await DeliveryLedger(redis, PREFIX).set_cursor(up.id)
    await w.dispatch(T0 + HOUR)
    assert w.queue.take() == []
    assert await ConditionStore(redis, PREFIX).all() == []


async def test_mute_holds_back_then_announces_once_it_ends(redis: Redis) -> None:
    w = await world(redis, remind_every=3600)
    await MuteStore(redis, PREFIX).set(
        Mute(target="api", until=T0 + 30 * MINUTE, created_at=T0, reason="deploy")
    )
    await w.probe(T0, ok=False, times=2)
    [down] = await ChangeFeed(redis, PREFIX).latest(1)
    result = await w.dispatch(T0 + 2 * MINUTE)
    assert w.queue.take() == [] and result["muted"] == 1
    [record] = await DeliveryLedger(redis, PREFIX).recent()
    assert (record.outcome, record.error) == ("muted", "in maintenance (muted: deploy)")
    await w.dispatch(T0 + 29 * MINUTE)
    assert w.queue.take() == []
    # The mute is over and the endpoint still DOWN: announced now, as "still DOWN".
    await w.dispatch(T0 + 31 * MINUTE)
    assert w.queue.take() == [("hook", down.id, "api-down", 1)]
    await w.dispatch(T0 + 91 * MINUTE)
    assert w.queue.take() == [("hook", down.id, "api-down", 2)]


async def test_recovery_inside_maintenance(redis: Redis) -> None:
    window = WindowConfig(start="09:30", end="11:00", timezone="UTC")
    w = await world(redis, remind_every=3600)
    w.config = Config(
        health=w.config.health, alerts=w.config.alerts, sinks=w.config.sinks, maintenance=[window]
    )
    # Down before the window: announced. Up inside it: sent, it closes what was announced.
    await w.probe(T0, ok=False, times=2)
    await w.dispatch(T0 + 2 * MINUTE)
    assert len(w.queue.take()) == 1
    await w.dispatch(T0 + 65 * MINUTE)  # 10:05, in the window: the reminder waits
    assert w.queue.take() == []
    await w.probe(T0 + 70 * MINUTE, ok=True, times=2)
    [up] = await ChangeFeed(redis, PREFIX).latest(1)
    await w.dispatch(T0 + 75 * MINUTE)
    assert w.queue.take() == [("hook", up.id, "api-down", 0)]
    # Down and up again, both inside the window: nothing at all, then or after.
    await w.probe(T0 + 80 * MINUTE, ok=False, times=2)
    await w.dispatch(T0 + 83 * MINUTE)
    await w.probe(T0 + 85 * MINUTE, ok=True, times=2)
    await w.dispatch(T0 + 88 * MINUTE)
    await w.dispatch(T0 + 3 * HOUR)
    assert w.queue.take() == []


async def test_catalogue_stale_reminded_and_fresh_again(redis: Redis) -> None:
    w = World(
        redis,
        Config(
            http=HttpConfig(catalog_max_age=3600),
            alerts=[
                AlertConfig(
                    name="stale", kinds=["catalog_stale"], sinks=["hook"], remind_every=7200
                )
            ],
            sinks=[SinkConfig(name="hook", url="http://hook.test/")],
        ),
    )
    await w.start()
    store = CatalogueStore(redis, PREFIX)
    await _commit(store, T0)
    await w.dispatch(T0 + 30 * MINUTE)
    assert w.queue.take() == []
    result = await w.dispatch(T0 + 61 * MINUTE)  # the last good scrape is now over an hour old
    [stale] = await ChangeFeed(redis, PREFIX).latest(1, kinds=[EventKind.CATALOG_STALE])
    assert stale.subject == "catalog" and "more than 60 min" in stale.detail["reason"]
    assert w.queue.take() == [("hook", stale.id, "stale", 0)] and result["events"] == 1
    await w.dispatch(T0 + 62 * MINUTE)  # seen once: no second event
    assert await ChangeFeed(redis, PREFIX).count() == 1
    await w.dispatch(T0 + 3 * HOUR + 2 * MINUTE)
    assert w.queue.take() == [("hook", stale.id, "stale", 1)]
    await _commit(store, T0 + 4 * HOUR)
    await w.dispatch(T0 + 4 * HOUR + MINUTE)
    [fresh] = await ChangeFeed(redis, PREFIX).latest(1)
    assert fresh.kind == EventKind.CATALOG_FRESH
    assert fresh.detail["stale_s"] == pytest.approx((3 * 60 + 1) * 60)
    assert w.queue.take() == [("hook", fresh.id, "stale", 0)]


async def _commit(store: CatalogueStore, at: datetime) -> None:
    """A successful scrape at ``at``: what the freshness rule reads."""
    await store.redis.hset(  # type: ignore[misc]
        store.keys.meta, mapping={"last_success_at": at.isoformat(), "version": "1"}
    )
    assert (await store.meta()).last_success_at == at


# Sundays 02:00-04:00 in Berlin, and Mondays 08:00-10:00 in Auckland (13 hours ahead of UTC in
# March, so that window is Sunday evening UTC). In 2026 Berlin's clocks go forward on Sunday
# 29 March at 02:00: that night the window is 01:00-02:00 UTC, a week before 01:00-03:00 UTC,
# a week after 00:00-02:00 UTC.
WINDOWS = [
    WindowConfig(days=["sun"], start="02:00", end="04:00", timezone="Europe/Berlin"),
    WindowConfig(days=["mon"], start="08:00", end="10:00", timezone="Pacific/Auckland"),
]


@pytest.mark.parametrize(
    ("now", "muted"),
    [
        (datetime(2026, 3, 22, 2, 30, tzinfo=UTC), True),  # 03:30 CET
        (datetime(2026, 3, 29, 1, 30, tzinfo=UTC), True),  # 03:30 CEST, the short night
        (datetime(2026, 3, 29, 2, 30, tzinfo=UTC), False),  # 04:30 CEST: the window is over
        (datetime(2026, 4, 5, 0, 30, tzinfo=UTC), True),  # 02:30 CEST
        (datetime(2026, 4, 5, 2, 30, tzinfo=UTC), False),  # 04:30 CEST
        (datetime(2026, 3, 22, 20, 0, tzinfo=UTC), True),  # Monday 09:00 in Auckland
        (datetime(2026, 3, 22, 22, 0, tzinfo=UTC), False),  # Monday 11:00 in Auckland
    ],
    ids=str,
)
async def test_windows_across_a_dst_change_and_the_date_line(
    redis: Redis, now: datetime, muted: bool
) -> None:
    w = await world(redis)
    w.config = Config(
        health=w.config.health, alerts=w.config.alerts, sinks=w.config.sinks, maintenance=WINDOWS
    )
    await w.probe(now - 2 * MINUTE, ok=False, times=2)
    [down] = await ChangeFeed(redis, PREFIX).latest(1)
    result = await w.dispatch(now)
    if muted:
        assert w.queue.take() == [] and result["muted"] == 1
        [record] = await DeliveryLedger(redis, PREFIX).recent()
        assert record.outcome == "muted" and "window" in record.error
    else:
        assert w.queue.take() == [("hook", down.id, "api-down", 0)]


async def test_mute_set_like_the_cli_does_holds_alerts_until_unmuted(redis: Redis) -> None:
    w = await world(redis, remind_every=3600)
    await set_mute(redis, w.config, "api", until=T0 + 5 * HOUR, now=T0, reason="migration")
    await w.probe(T0, ok=False, times=2)
    [down] = await ChangeFeed(redis, PREFIX).latest(1)
    await w.dispatch(T0 + 2 * MINUTE)
    assert w.queue.take() == []
    # Ended early by `unmute`: the next run announces what still lasts, once.
    assert await remove_mute(redis, w.config, "api", T0 + 10 * MINUTE)
    await w.dispatch(T0 + 10 * MINUTE)
    assert w.queue.take() == [("hook", down.id, "api-down", 1)]
    await w.dispatch(T0 + 11 * MINUTE)
    assert w.queue.take() == []
