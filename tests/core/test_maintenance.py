"""Maintenance windows: wall-clock ranges in a time zone, across midnight, a time-zone boundary
and both daylight-saving changes; one-off mutes kept in Redis."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from redis.asyncio import Redis

from vultr_scraper_core.config import WindowConfig
from vultr_scraper_core.maintenance import MaintenancePlan, Mute, parse_window
from vultr_scraper_core.store.mutes import MuteStore


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def active(window: WindowConfig, moment: datetime) -> datetime | None:
    return parse_window(window).active_until(moment)


def test_window_in_another_time_zone() -> None:
    # 09:00-17:00 in New York on weekdays; 2026-01-14 is a Wednesday (EST, UTC-5).
    office = WindowConfig(start="09:00", end="17:00", days=["mon", "tue", "wed", "thu", "fri"],
                          timezone="America/New_York")  # fmt: skip
    assert active(office, utc(2026, 1, 14, 13, 59)) is None  # 08:59 local
    assert active(office, utc(2026, 1, 14, 14, 0)) == utc(2026, 1, 14, 22, 0)
    assert active(office, utc(2026, 1, 14, 21, 59)) == utc(2026, 1, 14, 22, 0)
    assert active(office, utc(2026, 1, 14, 22, 0)) is None  # 17:00 local: the end is exclusive
    # Saturday 01:00 UTC is still Friday 20:00 in New York: not in the window, and Friday
    # 23:00 UTC is Friday 18:00 there.
    assert active(office, utc(2026, 1, 17, 1, 0)) is None


def test_window_across_midnight_and_a_date_line() -> None:
    # Saturday 22:00 to Sunday 02:00 in Auckland (NZDT, UTC+13 in January).
    night = WindowConfig(start="22:00", end="02:00", days=["sat"], timezone="Pacific/Auckland")
    # Saturday 2026-01-17 22:30 in Auckland is Saturday 09:30 UTC.
    assert active(night, utc(2026, 1, 17, 9, 30)) == utc(2026, 1, 17, 13, 0)
    # Sunday 01:30 local (12:30 UTC Saturday) is the same occurrence, started on Saturday.
    assert active(night, utc(2026, 1, 17, 12, 30)) == utc(2026, 1, 17, 13, 0)
    # Sunday 22:30 local is not: the window starts on Saturdays only.
    assert active(night, utc(2026, 1, 18, 9, 30)) is None


def test_spring_forward_shortens_the_window() -> None:
    # Europe/Berlin goes from 02:00 CET to 03:00 CEST on Sunday 2026-03-29.
    window = WindowConfig(start="01:30", end="03:30", days=["sun"], timezone="Europe/Berlin")
    before = utc(2026, 3, 29, 0, 30)  # 01:30 CET: the start
    assert active(window, before - timedelta(seconds=1)) is None
    assert active(window, before) == utc(2026, 3, 29, 1, 30)  # 03:30 CEST
    assert active(window, utc(2026, 3, 29, 1, 29)) == utc(2026, 3, 29, 1, 30)
    assert active(window, utc(2026, 3, 29, 1, 30)) is None
    # One hour of wall clock vanished: the window lasted 1 h, not 2 h.


def test_fall_back_lengthens_the_window() -> None:
    # Europe/Berlin goes from 03:00 CEST back to 02:00 CET on Sunday 2026-10-25.
    window = WindowConfig(start="01:30", end="03:30", days=["sun"], timezone="Europe/Berlin")
    start = utc(2026, 10, 24, 23, 30)  # 01:30 CEST
    assert active(window, start - timedelta(seconds=1)) is None
    end = utc(2026, 10, 25, 2, 30)  # 03:30 CET
    for moment in (
        start,
        utc(2026, 10, 25, 0, 30),
        utc(2026, 10, 25, 1, 30),
        end - timedelta(seconds=1),
    ):
        assert active(window, moment) == end
    assert active(window, end) is None  # three hours of real time


def test_same_wall_clock_is_a_different_utc_hour_in_summer() -> None:
    daily = WindowConfig(start="02:00", end="04:00", timezone="Europe/Berlin")
    assert active(daily, utc(2026, 1, 10, 1, 0)) == utc(2026, 1, 10, 3, 0)  # CET
    assert active(daily, utc(2026, 7, 10, 0, 0)) == utc(2026, 7, 10, 2, 0)  # CEST
    assert active(daily, utc(2026, 7, 10, 2, 30)) is None


def test_end_of_day_and_whole_days() -> None:
    weekend = WindowConfig(start="00:00", end="24:00", days=["sat", "sun"], timezone="UTC")
    assert active(weekend, utc(2026, 1, 17, 0, 0)) == utc(2026, 1, 18, 0, 0)
    assert active(weekend, utc(2026, 1, 18, 23, 59)) == utc(2026, 1, 19, 0, 0)
    assert active(weekend, utc(2026, 1, 19, 0, 0)) is None


@pytest.mark.parametrize(
    ("window", "message"),
    [
        (WindowConfig(start="2:00", end="2:00"), "start and end are the same time"),
        (WindowConfig(start="02:00", end="24:01"), "not a time of day: '24:01'"),
        (WindowConfig(start="24:00", end="02:00"), "not a time of day: '24:00'"),
        (WindowConfig(start="0200", end="03:00"), "expected HH:MM, got '0200'"),
        (WindowConfig(start="02:00", end="03:00", days=[]), "days is empty"),
    ],
)
def test_invalid_windows_say_why(window: WindowConfig, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_window(window)


def test_plan_scopes_global_and_endpoint_windows() -> None:
    plan = MaintenancePlan.build(
        [WindowConfig(start="02:00", end="03:00", endpoints=["db-*"])],
        [("shop", [WindowConfig(start="10:00", end="11:00")])],
    )
    at_two, at_ten = utc(2026, 1, 14, 2, 30), utc(2026, 1, 14, 10, 30)
    assert plan.status("db-main", at_two) is not None
    assert plan.status("shop", at_two) is None
    assert plan.status("catalog", at_two) is None  # a scoped global window spares the rest
    found = plan.status("shop", at_ten)
    assert (
        found is not None and found.reason == "window mon,tue,wed,thu,fri,sat,sun 10:00-11:00 UTC"
    )
    assert found.until == utc(2026, 1, 14, 11, 0)


def test_mutes_and_the_longest_reason_wins() -> None:
    plan = MaintenancePlan.build([WindowConfig(start="02:00", end="03:00")], [])
    now = utc(2026, 1, 14, 2, 30)
    mute = Mute(target="shop", until=now + timedelta(hours=2), created_at=now, reason="deploy")
    everything = Mute(target="*", until=now + timedelta(minutes=5), created_at=now)
    assert plan.status("shop", now, [mute]) is not None
    assert plan.status("shop", now, [mute]).reason == "muted: deploy"  # type: ignore[union-attr]
    assert plan.status("other", now + timedelta(hours=1), [mute]) is None
    assert plan.status("other", now + timedelta(hours=1), [mute, everything]) is None
    assert plan.status("other", now + timedelta(minutes=40), [everything]) is None
    assert plan.status("other", now + timedelta(minutes=40)) is None
    assert plan.status("catalog", now + timedelta(minutes=1), [everything]) is not None


async def test_mute_store_keeps_until_expiry(redis: Redis) -> None:
    store = MuteStore(redis, "vs")
    now = utc(2026, 1, 14, 12, 0)
    await store.set(Mute(target="shop", until=now + timedelta(hours=2), created_at=now))
    await store.set(Mute(target="*", until=now + timedelta(minutes=1), created_at=now, reason="x"))
    assert [mute.target for mute in await store.active(now)] == ["*", "shop"]
    later = now + timedelta(minutes=30)
    assert [mute.target for mute in await store.active(later)] == ["shop"]
    assert await redis.hlen(store.key) == 1  # type: ignore[misc]  # the expired one is gone
    assert await store.remove("shop") is True
    assert await store.remove("shop") is False
    assert await store.active(later) == []
