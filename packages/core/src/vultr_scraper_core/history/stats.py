"""Stock reliability of one (plan, region) pair, computed from its in-stock intervals.

Pure functions over ``[start, end)`` intervals (``end`` None: still in stock), so the same
numbers come out of the Redis window, the archive, the API, the pages and the CLI. Overlapping
or touching intervals are merged first: a pair that went out and came back at the same instant
was never out of stock.

Only the observed part of a window counts: when the pair (or its region) was first checked
after the window's start, ``observed_from`` moves the start up, so a plan added yesterday is not
"in stock 3 % of the last 30 days".
"""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Protocol

import msgspec

from vultr_scraper_core.store.codec import as_utc

WINDOWS: dict[str, timedelta] = {
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
    "90d": timedelta(days=90),
}
SHARE_WINDOWS = ("24h", "7d", "30d")


class Span(Protocol):
    @property
    def start(self) -> datetime: ...

    @property
    def end(self) -> datetime | None: ...


class Closed(msgspec.Struct, frozen=True, order=True):
    """A merged in-stock interval, clipped to a moment (``end`` is never None)."""

    start: datetime
    end: datetime


class StockStats(msgspec.Struct, kw_only=True):
    """One pair's reliability at ``at``. Durations are seconds."""

    at: datetime
    window: str  # what longest_out, median_back and returns cover
    in_stock: bool
    # Share of the observed part of each window (24h, 7d, 30d and ``window``) the pair was in
    # stock; None when nothing of the window was observed.
    share: dict[str, float | None]
    streak_since: datetime | None  # the current state (in or out) since; None: never in stock
    streak_seconds: float | None
    longest_out_seconds: float | None  # longest out-of-stock stretch in the window
    median_back_seconds: float | None  # median time from going out to coming back
    returns: int  # how many times it came back in the window
    last_in_stock: datetime | None  # ``at`` while in stock; None: never seen in stock


def merged(intervals: Iterable[Span], until: datetime) -> list[Closed]:
    """The intervals before ``until``, open ones closed at ``until``, merged and sorted."""
    limit = as_utc(until)
    spans = sorted(
        Closed(as_utc(i.start), min(as_utc(i.end), limit) if i.end is not None else limit)
        for i in intervals
        if as_utc(i.start) < limit
    )
    out: list[Closed] = []
    for span in spans:
        if span.end <= span.start:
            continue
        if out and span.start <= out[-1].end:
            if span.end > out[-1].end:
                out[-1] = Closed(out[-1].start, span.end)
        else:
            out.append(span)
    return out


def _clip(spans: list[Closed], since: datetime, until: datetime) -> list[Closed]:
    return [
        Closed(max(s.start, since), min(s.end, until))
        for s in spans
        if s.end > since and s.start < until
    ]


def in_stock_share(
    intervals: Iterable[Span],
    since: datetime,
    until: datetime,
    observed_from: datetime | None = None,
) -> float | None:
    """The share of ``[since, until)`` (from ``observed_from`` on, if later) in stock."""
    low = max(as_utc(since), as_utc(observed_from)) if observed_from else as_utc(since)
    high = as_utc(until)
    if high <= low:
        return None
    inside = sum(
        (s.end - s.start).total_seconds() for s in _clip(merged(intervals, high), low, high)
    )
    return inside / (high - low).total_seconds()


def day_shares(
    intervals: Iterable[Span],
    days: Sequence[datetime],
    until: datetime,
    observed_from: datetime | None = None,
) -> list[float | None]:
    """``in_stock_share`` of each ``[day, min(day + 1 day, until))``, merging the intervals
    once for all the days (the same figures: each day's share only sees its own span)."""
    spans = merged(intervals, until)
    high_limit = as_utc(until)
    observed = as_utc(observed_from) if observed_from else None
    shares: list[float | None] = []
    for day in days:
        start = as_utc(day)
        low = max(start, observed) if observed else start
        high = min(start + timedelta(days=1), high_limit)
        if high <= low:
            shares.append(None)
            continue
        inside = sum((s.end - s.start).total_seconds() for s in _clip(spans, low, high))
        shares.append(inside / (high - low).total_seconds())
    return shares


def gaps(intervals: Iterable[Span], since: datetime, until: datetime) -> list[Closed]:
    """The out-of-stock stretches within ``[since, until)`` (clipped to it)."""
    low, high = as_utc(since), as_utc(until)
    out: list[Closed] = []
    cursor = low
    for span in _clip(merged(intervals, high), low, high):
        if span.start > cursor:
            out.append(Closed(cursor, span.start))
        cursor = max(cursor, span.end)
    if cursor < high:
        out.append(Closed(cursor, high))
    return out


def longest_out(intervals: Iterable[Span], since: datetime, until: datetime) -> timedelta | None:
    """The longest out-of-stock stretch in the window; None for an empty window."""
    found = gaps(intervals, since, until)
    if as_utc(until) <= as_utc(since):
        return None
    return max((g.end - g.start for g in found), default=timedelta(0))


def times_to_return(intervals: Iterable[Span], since: datetime, until: datetime) -> list[timedelta]:
    """For each return to stock within ``[since, until)``: how long it had been out (the gap
    from the previous interval's end, which may lie before ``since``). A first appearance is
    not a return: nothing says how long it was out before."""
    low, high = as_utc(since), as_utc(until)
    spans = merged(intervals, high)
    return [
        after.start - before.end
        for before, after in itertools.pairwise(spans)
        if low <= after.start < high
    ]


def median_time_to_return(
    intervals: Iterable[Span], since: datetime, until: datetime
) -> timedelta | None:
    found = times_to_return(intervals, since, until)
    if not found:
        return None
    return timedelta(seconds=statistics.median(t.total_seconds() for t in found))


def current_streak(intervals: Iterable[Span], at: datetime) -> tuple[bool, datetime | None]:
    """(in stock at ``at``, since when): in stock since the merged interval's start, or out of
    stock since the last interval's end; (False, None) when never in stock before ``at``."""
    moment = as_utc(at)
    spans = merged(intervals, moment)
    if not spans:
        return False, None
    last = spans[-1]
    return (True, last.start) if last.end >= moment else (False, last.end)


def last_in_stock(intervals: Iterable[Span], at: datetime) -> datetime | None:
    """``at`` while in stock, else the end of the last interval; None: never in stock."""
    spans = merged(intervals, as_utc(at))
    return spans[-1].end if spans else None


def stock_stats(
    intervals: Iterable[Span],
    at: datetime,
    observed_from: datetime | None = None,
    window: str = "30d",
) -> StockStats:
    """Every statistic of one pair at ``at`` (see ``StockStats``); the longest stretch out
    and the times until back are over ``window`` (a key of ``WINDOWS``), whose share is
    given too."""
    moment = as_utc(at)
    listed = list(intervals)
    in_stock, since = current_streak(listed, moment)
    month_start = moment - WINDOWS[window]
    if observed_from is not None:
        month_start = max(month_start, as_utc(observed_from))
    returns = times_to_return(listed, month_start, moment)
    longest = longest_out(listed, month_start, moment) if month_start < moment else None
    return StockStats(
        at=moment,
        in_stock=in_stock,
        share={
            name: in_stock_share(listed, moment - WINDOWS[name], moment, observed_from)
            for name in dict.fromkeys((*SHARE_WINDOWS, window))
        },
        window=window,
        streak_since=since,
        streak_seconds=(moment - since).total_seconds() if since is not None else None,
        longest_out_seconds=longest.total_seconds() if longest is not None else None,
        median_back_seconds=(
            statistics.median(t.total_seconds() for t in returns) if returns else None
        ),
        returns=len(returns),
        last_in_stock=last_in_stock(listed, moment),
    )
