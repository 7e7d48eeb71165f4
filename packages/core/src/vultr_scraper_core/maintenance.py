"""Maintenance windows: when alerts about an endpoint (or about the catalogue) are held back.

Two sources, either of which puts a subject "in maintenance":

* recurring windows from the configuration: ``[[maintenance]]`` (global: every endpoint and the
  catalogue, or only the ``endpoints`` named) and ``maintenance = [...]`` inside an endpoint's
  table. A window is a wall-clock range on some weekdays in a time zone (``start``/``end`` as
  ``HH:MM``, ``end`` at or before ``start`` runs past midnight, ``24:00`` is the end of the day).
  Being wall-clock, a window follows daylight saving time: ``02:00-04:00`` in Europe/Berlin is
  01:00-03:00 UTC in winter and 00:00-02:00 UTC in summer; on the night the clocks go forward
  it is an hour shorter, on the night they go back an hour longer.
* one-off mutes set at run time (``vultr-scraper mute NAME --for 2h``, the API), kept in Redis by
  ``store.mutes`` until they expire; the target ``*`` mutes everything a global window would.

Checks still run and are recorded during maintenance; only notifications are held back.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DAY = 24 * 3600
CATALOG_SUBJECT = "catalog"  # the subject of catalogue alerts (stale, quarantined)
EVERYTHING = "*"  # the mute target that stands for a global window

_CLOCK = re.compile(r"(\d{1,2}):(\d{2})")


class WindowSpec(Protocol):
    """What a window is written as (``config.WindowConfig``)."""

    @property
    def start(self) -> str: ...
    @property
    def end(self) -> str: ...
    @property
    def days(self) -> Sequence[str]: ...
    @property
    def timezone(self) -> str: ...
    @property
    def endpoints(self) -> Sequence[str]: ...


class Mute(msgspec.Struct, frozen=True, kw_only=True):
    """A one-off window: ``target`` (an endpoint name, ``catalog`` or ``*``) until ``until``."""

    target: str
    until: datetime
    created_at: datetime
    reason: str = ""


@dataclass(frozen=True)
class Window:
    """A parsed ``WindowConfig``: seconds of the local day and ISO weekdays (Monday = 0)."""

    days: frozenset[int]
    start: int
    end: int
    zone: ZoneInfo
    endpoints: tuple[str, ...]
    text: str  # how it reads in listings: "sat,sun 02:00-04:00 Europe/Berlin"

    @property
    def overnight(self) -> bool:
        return self.end <= self.start

    def active_until(self, moment: datetime) -> datetime | None:
        """The end of the occurrence of this window that ``moment`` falls in, else None."""
        local = moment.astimezone(self.zone)
        second = local.hour * 3600 + local.minute * 60 + local.second
        today = local.weekday()
        if not self.overnight:
            if today in self.days and self.start <= second < self.end:
                return self._at(local.date(), self.end)
            return None
        if today in self.days and second >= self.start:
            return self._at(local.date() + timedelta(days=1), self.end)
        if (today - 1) % 7 in self.days and second < self.end:
            return self._at(local.date(), self.end)
        return None

    def covers(self, subject: str) -> bool:
        """Whether a global window applies to ``subject`` (an endpoint name or ``catalog``)."""
        if not self.endpoints:
            return True
        return any(fnmatch.fnmatchcase(subject, pattern) for pattern in self.endpoints)

    def _at(self, day: date, second: int) -> datetime:
        # Wall-clock arithmetic on a naive time, then placed in the zone: "24:00" is the next
        # midnight and "04:00" is four on the clock, whatever the night's length.
        local = datetime.combine(day, time(0)) + timedelta(seconds=second)
        return local.replace(tzinfo=self.zone).astimezone(UTC)


def _clock(text: str, *, end: bool) -> int:
    match = _CLOCK.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"expected HH:MM, got {text!r}")
    hours, minutes = int(match.group(1)), int(match.group(2))
    if end and (hours, minutes) == (24, 0):
        return DAY
    if hours > 23 or minutes > 59:
        raise ValueError(f"not a time of day: {text!r}")
    return hours * 3600 + minutes * 60


def parse_window(config: WindowSpec) -> Window:
    """The window, or ValueError naming what is wrong (the caller adds the key)."""
    start = _clock(config.start, end=False)
    end = _clock(config.end, end=True)
    if start == end:
        raise ValueError("start and end are the same time (use 00:00 and 24:00 for a whole day)")
    days: set[int] = set()
    for name in config.days:
        key = name.strip().lower()[:3]
        if key not in WEEKDAYS:
            raise ValueError(f"unknown day {name!r}; days are {', '.join(WEEKDAYS)}")
        days.add(WEEKDAYS.index(key))
    if not days:
        raise ValueError("days is empty")
    try:
        zone = ZoneInfo(config.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {config.timezone!r}") from None
    day_names = ",".join(WEEKDAYS[day] for day in sorted(days))
    text = f"{day_names} {config.start}-{config.end} {config.timezone}"
    return Window(
        days=frozenset(days),
        start=start,
        end=end,
        zone=zone,
        endpoints=tuple(config.endpoints),
        text=text,
    )


class Maintenance(msgspec.Struct, frozen=True, kw_only=True):
    """Why a subject is in maintenance now, and until when."""

    until: datetime
    reason: str  # "window sat,sun 02:00-04:00 Europe/Berlin" or "muted: <why>"


@dataclass(frozen=True)
class MaintenancePlan:
    """Every recurring window of a configuration, parsed once."""

    global_windows: tuple[Window, ...]
    endpoint_windows: dict[str, tuple[Window, ...]]

    @classmethod
    def build(
        cls,
        global_windows: Iterable[WindowSpec],
        endpoints: Iterable[tuple[str, Sequence[WindowSpec]]],
    ) -> MaintenancePlan:
        return cls(
            global_windows=tuple(parse_window(window) for window in global_windows),
            endpoint_windows={
                name: tuple(parse_window(window) for window in windows)
                for name, windows in endpoints
                if windows
            },
        )

    def status(
        self, subject: str, moment: datetime, mutes: Iterable[Mute] = ()
    ) -> Maintenance | None:
        """Whether ``subject`` (an endpoint name or ``catalog``) is in maintenance at
        ``moment``; when several windows or mutes apply, the one lasting longest is named."""
        found: list[Maintenance] = []
        windows = [w for w in self.global_windows if w.covers(subject)]
        windows.extend(self.endpoint_windows.get(subject, ()))
        for window in windows:
            until = window.active_until(moment)
            if until is not None:
                found.append(Maintenance(until=until, reason=f"window {window.text}"))
        for mute in mutes:
            if mute.target in (subject, EVERYTHING) and mute.until > moment:
                why = f": {mute.reason}" if mute.reason else ""
                found.append(Maintenance(until=mute.until, reason=f"muted{why}"))
        return max(found, key=lambda item: item.until) if found else None
