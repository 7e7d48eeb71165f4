"""The one parser and formatter for times, change-feed cursors and money.

The CLI's options, the API's query parameters, the status page, the feed and the alerts all go
through these functions, so ``--since 24h`` and ``?since=24h`` mean the same, and a time or a
price reads the same wherever it is shown. Parsers raise ``ValueError`` with a message that says
what they accept (the CLI turns it into a usage error, the API into a 400).

* A time is a date (``2026-01-15``, midnight UTC), a date and time (``2026-01-15T10:00Z``,
  ``2026-01-15 10:00:30.5+02:00``; seconds and zone optional, no zone meaning UTC; RFC 3339's
  leap second reads as :59), or an age (``90s``, ``30m``, ``24h``, ``7d``, ``2w``: that long
  ago). It is shown as RFC 3339 in UTC to the second: ``2026-01-15T10:00:00Z``; times written
  for machines keep their fraction (``format_instant``), with the same ``Z``.
* A cursor is a change-feed event id, ``<ms>-<seq>`` or ``<ms>`` (at most 19 digits each, so
  always a valid Redis stream id).
* Money is an exact decimal (``24``, ``0.007``, ``$5.50``, ``1e2``), never a float, and is shown
  with at least cents: ``5`` -> ``5.00``, ``7.5`` -> ``7.50``, ``0.007`` -> ``0.007``.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import Any, overload

# -- times ----------------------------------------------------------------------------------

TIME_FORMS = (
    "a date (2026-01-15), a date and time (RFC 3339: 2026-01-15T10:00:00Z) "
    "or an age (90s, 30m, 24h, 7d, 2w)"
)

_DATE_TIME = re.compile(
    r"(?P<date>[0-9]{4}-[0-9]{2}-[0-9]{2})"
    r"(?:[Tt ](?P<h>[0-9]{2}):(?P<m>[0-9]{2})(?::(?P<s>[0-9]{2})(?:\.(?P<frac>[0-9]{1,9}))?)?"
    r"(?P<tz>[Zz]|[+-][0-9]{2}:[0-9]{2})?)?"
)
# At most 99999 units: 99999 weeks is about 1900 years, still a valid datetime.
AGE_PATTERN = r"^[0-9]{1,5}[smhdw]$"
_AGE = re.compile(AGE_PATTERN)
_AGE_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_time(text: str, now: datetime | None = None) -> datetime:
    """A timezone-aware UTC datetime from any of the forms above; ``now`` anchors ages."""
    value = text.strip()
    if _AGE.fullmatch(value.lower()):
        amount, unit = int(value[:-1]), _AGE_UNITS[value[-1].lower()]
        return (now or datetime.now(UTC)) - timedelta(**{unit: amount})
    match = _DATE_TIME.fullmatch(value)
    if not match:
        raise ValueError(f"{text!r} is not a time; use {TIME_FORMS}")
    try:
        return _moment(match)
    except (ValueError, OverflowError):
        raise ValueError(f"{text!r} is not a valid time; use {TIME_FORMS}") from None


def _moment(match: re.Match[str]) -> datetime:
    day = date.fromisoformat(match["date"])
    if match["h"] is None:
        return datetime.combine(day, time(), UTC)
    second = int(match["s"] or 0)
    zone: timezone = UTC
    if match["tz"] and match["tz"] not in ("Z", "z"):
        sign = 1 if match["tz"][0] == "+" else -1
        offset = timedelta(hours=int(match["tz"][1:3]), minutes=int(match["tz"][4:6]))
        if offset >= timedelta(hours=24):
            raise ValueError("offset out of range")
        zone = timezone(sign * offset)
    value = datetime(
        day.year,
        day.month,
        day.day,
        int(match["h"]),
        int(match["m"]),
        59 if second == 60 else second,  # a leap second reads as :59
        int((match["frac"] or "0")[:6].ljust(6, "0")),
        zone,
    )
    try:
        return value.astimezone(UTC)
    except OverflowError:
        # A valid RFC 3339 time just past datetime's range once in UTC (0001-01-01T00:30+01:00,
        # 9999-12-31T23:30-01:00): the nearest representable instant, which answers the same.
        return (datetime.min if day.year == 1 else datetime.max).replace(tzinfo=UTC)


@overload
def format_time(moment: datetime) -> str: ...
@overload
def format_time(moment: None) -> None: ...
@overload
def format_time(moment: datetime | None) -> str | None: ...


def format_time(moment: datetime | None) -> str | None:
    """``2026-01-15T10:00:00Z``: RFC 3339, UTC, to the second (None stays None)."""
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def format_instant(moment: datetime) -> str:
    """``2026-01-15T10:00:00.123456Z``: RFC 3339 in UTC at full precision, for times written
    for machines (event details, job results, webhook bodies) where a rounded time would no
    longer equal the stored one."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def from_unix(seconds: float | None) -> datetime | None:
    """A Unix time (the job records' form) as an aware UTC datetime; None when absent or out
    of datetime's range."""
    if seconds is None:
        return None
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        return None


def format_unix(seconds: float | None) -> str | None:
    """A Unix time shown like ``format_time``."""
    return format_time(from_unix(seconds))


# -- cursors --------------------------------------------------------------------------------

# 19 digits always fit Redis' unsigned 64-bit id parts, so the pattern alone decides.
CURSOR_PATTERN = r"^[0-9]{1,19}(-[0-9]{1,19})?$"
_CURSOR = re.compile(CURSOR_PATTERN)


def parse_cursor(text: str) -> str:
    """A change-feed event id (``1764300000000-3``) used as a page cursor."""
    value = text.strip()
    if not _CURSOR.fullmatch(value):
        raise ValueError(f"{text!r} is not an event id; use an id such as 1764300000000-3")
    return value


# -- money ----------------------------------------------------------------------------------

_AMOUNT = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_MAX_AMOUNT_TEXT = 100  # longer text is refused before Decimal reads it


def parse_money(text: str) -> Decimal:
    """An exact amount (USD): digits with an optional sign, point, exponent and leading ``$``."""
    value = text.strip().removeprefix("$")
    amount = None
    if len(value) <= _MAX_AMOUNT_TEXT and _AMOUNT.fullmatch(value):
        try:
            amount = Decimal(value)
        except InvalidOperation:
            amount = None
    if amount is None or not amount.is_finite():
        raise ValueError(f"{text!r} is not an amount; use a number such as 24.5")
    return amount


def to_decimal(value: Any) -> Decimal | None:
    """A stored price (Decimal, int, float or text) as an exact Decimal; None if it is not a
    finite number (``True`` is not a price)."""
    if value is None or isinstance(value, bool):
        return None
    try:
        number = value if isinstance(value, Decimal) else Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    return number if number.is_finite() else None


def format_money(value: Decimal | None) -> str | None:
    """At least cents, more when published: ``5`` -> ``5.00``, ``0.007`` -> ``0.007``."""
    if value is None:
        return None
    exponent = value.as_tuple().exponent
    places = max(2, -exponent) if isinstance(exponent, int) else 2
    return f"{value:.{places}f}"
