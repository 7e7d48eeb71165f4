"""Stock statistics from hand-built interval sets with answers worked out by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vultr_scraper_core.history import stats
from vultr_scraper_core.store.stock import Interval

NOW = datetime(2026, 3, 31, 12, 0, tzinfo=UTC)
H = timedelta(hours=1)
D = timedelta(days=1)


def iv(start: datetime, end: datetime | None = None) -> Interval:
    return Interval(start=start, end=end)


def test_never_in_stock() -> None:
    found = stats.stock_stats([], NOW)
    assert found.in_stock is False
    assert found.share == {"24h": 0.0, "7d": 0.0, "30d": 0.0}
    assert found.streak_since is None and found.streak_seconds is None
    assert found.longest_out_seconds == (30 * D).total_seconds()
    assert found.median_back_seconds is None and found.returns == 0
    assert found.last_in_stock is None


def test_always_in_stock() -> None:
    found = stats.stock_stats([iv(NOW - 400 * D)], NOW)
    assert found.in_stock is True
    assert found.share == {"24h": 1.0, "7d": 1.0, "30d": 1.0}
    assert found.streak_since == NOW - 400 * D
    assert found.streak_seconds == (400 * D).total_seconds()
    assert found.longest_out_seconds == 0.0
    assert found.last_in_stock == NOW


def test_window_starting_mid_interval() -> None:
    # In stock from 30 h ago to 18 h ago: 6 of the last 24 hours.
    intervals = [iv(NOW - 30 * H, NOW - 18 * H)]
    assert stats.in_stock_share(intervals, NOW - 24 * H, NOW) == pytest.approx(0.25)
    found = stats.stock_stats(intervals, NOW)
    assert found.share["24h"] == pytest.approx(0.25)
    assert found.share["7d"] == pytest.approx(12 / (7 * 24))
    assert found.in_stock is False
    assert found.streak_since == NOW - 18 * H
    assert found.last_in_stock == NOW - 18 * H
    # Out from 30 days ago to 30 h ago is the longest stretch of the month.
    assert found.longest_out_seconds == (30 * D - 30 * H).total_seconds()


def test_open_interval_counts_up_to_now() -> None:
    intervals = [iv(NOW - 10 * D, NOW - 9 * D), iv(NOW - 6 * H)]
    found = stats.stock_stats(intervals, NOW)
    assert found.in_stock is True
    assert found.share["24h"] == pytest.approx(0.25)
    assert found.share["7d"] == pytest.approx(6 / (7 * 24))
    assert found.share["30d"] == pytest.approx(30 / (30 * 24))
    assert found.streak_since == NOW - 6 * H
    assert found.returns == 1
    assert found.median_back_seconds == (9 * D - 6 * H).total_seconds()
    assert found.last_in_stock == NOW


def test_median_time_until_back_and_longest_out() -> None:
    # Out for 1 h, 3 h and 2 h between four intervals: median 2 h, longest stretch the
    # 20 days before the first interval.
    start = NOW - 10 * D
    intervals = [
        iv(start, start + H),
        iv(start + 2 * H, start + 3 * H),
        iv(start + 6 * H, start + 7 * H),
        iv(start + 9 * H, start + 10 * H),
    ]
    found = stats.stock_stats(intervals, NOW)
    assert found.returns == 3
    assert found.median_back_seconds == (2 * H).total_seconds()
    assert found.longest_out_seconds == (20 * D).total_seconds()
    assert found.share["30d"] == pytest.approx(4 / (30 * 24))


def test_touching_and_overlapping_intervals_are_one_stretch() -> None:
    intervals = [iv(NOW - 5 * H, NOW - 3 * H), iv(NOW - 3 * H, NOW - 2 * H), iv(NOW - 4 * H)]
    found = stats.stock_stats(intervals, NOW)
    assert found.in_stock is True and found.streak_since == NOW - 5 * H
    assert found.returns == 0
    assert found.share["24h"] == pytest.approx(5 / 24)


def test_observed_from_shortens_the_window() -> None:
    # First checked 12 h ago and in stock for 6 h of them: half, not a quarter of a day.
    intervals = [iv(NOW - 6 * H)]
    found = stats.stock_stats(intervals, NOW, observed_from=NOW - 12 * H)
    assert found.share == {"24h": 0.5, "7d": 0.5, "30d": 0.5}
    assert found.longest_out_seconds == (6 * H).total_seconds()
    assert stats.in_stock_share(intervals, NOW - D, NOW, observed_from=NOW) is None


def test_intervals_after_the_moment_are_ignored() -> None:
    intervals = [iv(NOW - 2 * H, NOW - H), iv(NOW + H)]
    found = stats.stock_stats(intervals, NOW)
    assert found.in_stock is False and found.last_in_stock == NOW - H


# -- properties ---------------------------------------------------------------------------


@st.composite
def interval_sets(draw: st.DrawFn) -> list[Interval]:
    starts = draw(st.lists(st.integers(0, 60 * 24 * 40), max_size=12))
    out: list[Interval] = []
    for minute in starts:
        length = draw(st.one_of(st.none(), st.integers(1, 60 * 24 * 5)))
        start = NOW - 40 * D + timedelta(minutes=minute)
        out.append(iv(start, None if length is None else start + timedelta(minutes=length)))
    return out


@given(interval_sets())
def test_share_and_gaps_add_up_to_the_window(intervals: list[Interval]) -> None:
    for name in stats.SHARE_WINDOWS:
        since = NOW - stats.WINDOWS[name]
        share = stats.in_stock_share(intervals, since, NOW)
        assert share is not None and 0.0 <= share <= 1.0
        out = sum((g.end - g.start).total_seconds() for g in stats.gaps(intervals, since, NOW))
        window = (NOW - since).total_seconds()
        assert share * window + out == pytest.approx(window)


@given(interval_sets())
def test_order_does_not_matter_and_streak_agrees_with_share(intervals: list[Interval]) -> None:
    forward = stats.stock_stats(intervals, NOW)
    assert stats.stock_stats(list(reversed(intervals)), NOW) == forward
    if forward.in_stock:
        assert forward.last_in_stock == NOW
        assert forward.streak_since is not None
        recent = stats.in_stock_share(intervals, forward.streak_since, NOW)
        assert recent == pytest.approx(1.0)
    elif forward.streak_since is not None:
        assert stats.in_stock_share(intervals, forward.streak_since, NOW) == 0.0


def test_a_longer_window_covers_older_returns() -> None:
    # One return 60 days ago: outside the 30-day window, inside the 90-day one.
    intervals = [iv(NOW - 62 * D, NOW - 61 * D), iv(NOW - 60 * D, NOW - 59 * D)]
    month = stats.stock_stats(intervals, NOW)
    quarter = stats.stock_stats(intervals, NOW, window="90d")
    assert month.returns == 0 and month.median_back_seconds is None
    assert quarter.returns == 1 and quarter.median_back_seconds == D.total_seconds()
    assert quarter.share["90d"] == pytest.approx(2 / 90)
    assert "90d" not in month.share


_HOURS = st.integers(min_value=0, max_value=24 * 16)


@given(
    spans=st.lists(st.tuples(_HOURS, st.none() | st.integers(1, 24 * 4)), max_size=8),
    now_hour=st.integers(24 * 10, 24 * 16),
    observed_hour=st.none() | _HOURS,
)
def test_day_shares_are_each_days_in_stock_share(
    spans: list[tuple[int, int | None]], now_hour: int, observed_hour: int | None
) -> None:
    base = datetime(2026, 3, 1, tzinfo=UTC)
    hour = timedelta(hours=1)
    intervals = [
        iv(base + start * hour, None if length is None else base + (start + length) * hour)
        for start, length in spans
    ]
    now = base + now_hour * hour + timedelta(minutes=17)
    observed = None if observed_hour is None else base + observed_hour * hour
    days = [base + timedelta(days=n) for n in range(17)]
    expected = [
        stats.in_stock_share(intervals, day, min(day + timedelta(days=1), now), observed)
        for day in days
    ]
    assert stats.day_shares(intervals, days, now, observed) == expected
