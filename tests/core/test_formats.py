"""The one parser and formatter for times, cursors and money (CLI, API, page, feed, alerts)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vultr_scraper_core.formats import (
    AGE_PATTERN,
    CURSOR_PATTERN,
    format_instant,
    format_money,
    format_time,
    format_unix,
    from_unix,
    parse_cursor,
    parse_money,
    parse_time,
    to_decimal,
)

NOW = datetime(2026, 1, 31, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-01-31", datetime(2026, 1, 31, tzinfo=UTC)),
        ("2026-01-31T00:00Z", datetime(2026, 1, 31, tzinfo=UTC)),
        ("2026-01-31T10:00:00Z", datetime(2026, 1, 31, 10, tzinfo=UTC)),
        ("2026-01-31t10:00:00z", datetime(2026, 1, 31, 10, tzinfo=UTC)),
        ("2026-01-31 10:00", datetime(2026, 1, 31, 10, tzinfo=UTC)),  # no zone: UTC
        ("2026-01-31T10:00:00.25+02:00", datetime(2026, 1, 31, 8, 0, 0, 250000, tzinfo=UTC)),
        ("2026-01-31T10:00:00.123456789-01:30", datetime(2026, 1, 31, 11, 30, 0, 123456, UTC)),
        ("2016-12-31T23:59:60Z", datetime(2016, 12, 31, 23, 59, 59, tzinfo=UTC)),  # leap second
        (" 7d ", NOW - timedelta(days=7)),
        ("90m", NOW - timedelta(minutes=90)),
        ("24H", NOW - timedelta(hours=24)),
        ("2w", NOW - timedelta(weeks=2)),
    ],
)
def test_every_time_form(text: str, expected: datetime) -> None:
    parsed = parse_time(text, NOW)
    assert parsed == expected and parsed.tzinfo is UTC


def test_a_valid_time_just_past_the_calendar_reads_as_its_edge() -> None:
    """RFC 3339 allows 0001-01-01T00:30+01:00, which is before year 1 in UTC: the earliest
    representable instant answers the same (nothing happened then), not a 400."""
    earliest, latest = datetime.min.replace(tzinfo=UTC), datetime.max.replace(tzinfo=UTC)
    assert parse_time("0001-01-01T01:00:00.0+01:52") == earliest
    assert parse_time("9999-12-31T23:30:00-01:00") == latest
    assert parse_time("0001-01-01T02:00:00+01:00") == datetime(1, 1, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    "text",
    [
        "soon",
        "yesterday-ish",
        "",
        "2026-13-01",
        "2026-02-30",
        "2026-01-31T25:00Z",
        "2026-01-31T10:00:61Z",
        "2026-01-31T10:00+24:00",
        "2026-01-31T10",
        "7 days",
        "100000d",  # more than five digits
        "-5d",
    ],
)
def test_anything_else_is_refused_with_the_accepted_forms(text: str) -> None:
    accepted = r"use a date \(2026-01-15\), a date and time \(RFC 3339"
    with pytest.raises(ValueError, match=accepted):
        parse_time(text, NOW)


@given(st.datetimes(timezones=st.just(UTC), min_value=datetime(1, 1, 2), allow_imaginary=False))
def test_a_shown_time_reads_back_to_the_second(moment: datetime) -> None:
    shown = format_time(moment)
    assert shown.endswith("Z") and len(shown) == 20
    assert parse_time(shown) == moment.replace(microsecond=0)


@given(st.integers(min_value=0, max_value=99999), st.sampled_from("smhdw"))
def test_every_age_the_pattern_allows_is_a_time(amount: int, unit: str) -> None:
    text = f"{amount}{unit}"
    assert re.fullmatch(AGE_PATTERN, text)
    assert parse_time(text, NOW) <= NOW


def test_ages_in_seconds() -> None:
    assert parse_time("90s", NOW) == NOW - timedelta(seconds=90)
    assert parse_time("0S", NOW) == NOW


@given(st.datetimes(timezones=st.just(UTC), min_value=datetime(1, 1, 2), allow_imaginary=False))
def test_an_instant_is_written_with_z_and_reads_back_exactly(moment: datetime) -> None:
    written = format_instant(moment)
    assert written.endswith("Z") and "+00:00" not in written
    assert parse_time(written) == moment


def test_formatting_times() -> None:
    assert (
        format_time(datetime(2026, 1, 31, 10, 0, 0, 999999, tzinfo=UTC)) == "2026-01-31T10:00:00Z"
    )
    berlin = timezone(timedelta(hours=1))
    assert format_time(datetime(2026, 1, 31, 11, tzinfo=berlin)) == "2026-01-31T10:00:00Z"
    assert format_time(None) is None
    assert format_unix(0) == "1970-01-01T00:00:00Z"
    assert format_unix(None) is None
    assert from_unix(1e20) is None  # out of range: shown as absent, not an error


def test_cursors() -> None:
    assert parse_cursor(" 1795850240691-3 ") == "1795850240691-3"
    assert parse_cursor("1795850240691") == "1795850240691"
    assert parse_cursor("0") == "0"
    for bad in ("12-x", "yesterday", "1-2-3", "", "1" * 20):
        with pytest.raises(ValueError, match="is not an event id"):
            parse_cursor(bad)


@given(st.from_regex(CURSOR_PATTERN, fullmatch=True))
def test_every_cursor_the_pattern_allows_is_accepted(text: str) -> None:
    assert parse_cursor(text) == text.strip()


@pytest.mark.parametrize(
    ("text", "expected"),
    [("5", "5"), ("$5.50", "5.50"), (" 0.007 ", "0.007"), ("1e2", "1E+2"), (".5", "0.5")],
)
def test_money_is_read_exactly(text: str, expected: str) -> None:
    assert parse_money(text) == Decimal(expected)
    assert isinstance(parse_money(text), Decimal)


@pytest.mark.parametrize("text", ["NaN", "inf", "cheap", "5,50", "", "$", "1" * 101, "0x10"])
def test_what_is_not_an_amount_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="is not an amount"):
        parse_money(text)


def test_money_is_shown_with_at_least_cents() -> None:
    shown = [format_money(Decimal(value)) for value in ("5", "7.5", "0.007", "1241.60", "1E+2")]
    assert shown == ["5.00", "7.50", "0.007", "1241.60", "100.00"]
    assert format_money(None) is None


@given(st.decimals(allow_nan=False, allow_infinity=False, places=4, min_value=0, max_value=10**6))
def test_shown_money_reads_back_to_the_same_amount(amount: Decimal) -> None:
    shown = format_money(amount)
    assert shown is not None
    assert parse_money(shown) == amount


def test_stored_prices_become_decimals() -> None:
    assert to_decimal(5) == Decimal(5)
    assert to_decimal("0.007") == Decimal("0.007")
    assert to_decimal(7.5) == Decimal("7.5")
    assert to_decimal(True) is None and to_decimal("n/a") is None and to_decimal("NaN") is None
