"""Cumulative job counters in Redis, for Prometheus: runs by outcome and a duration histogram.

The job history keeps only the latest runs of each job, which is right for people and wrong for
Prometheus, whose counters must only ever grow. So every recorded run also increments, in the
same pipeline as its history record, one hash ``<prefix>:jobs:stats``:

* ``runs|<job>|<outcome>``: number of tries that ended with ``outcome``;
* ``seconds|<job>``: their summed duration; ``le|<job>|<bucket>``: tries whose duration fell in
  that bucket (not cumulative: ``/metrics`` accumulates them).

Labels stay bounded: job names come from the registry, outcomes from a fixed list, buckets from
``BUCKETS``.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from redis.asyncio import Redis

# Seconds. A catalogue scrape takes seconds to minutes; a health check under a second.
BUCKETS: tuple[float, ...] = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, math.inf)


def stats_key(prefix: str) -> str:
    return f"{prefix}:jobs:stats"


def bucket_label(bound: float) -> str:
    return "+Inf" if math.isinf(bound) else repr(float(bound))


_LABELS = tuple((bound, bucket_label(bound)) for bound in BUCKETS)


def bucket_of(duration: float) -> str:
    for bound, label in _LABELS:
        if duration <= bound:
            return label
    return "+Inf"  # NaN


def add_runs(pipe: Any, prefix: str, runs: Iterable[tuple[str, str, float]]) -> None:
    """Queue the counter increments for finished tries on ``pipe`` (a redis pipeline).

    ``runs`` are ``(job, outcome, duration)``. Runs with the same field are summed first, so a
    batch costs one command per field, not three per run.
    """
    outcomes: Counter[tuple[str, str]] = Counter()  # (job, outcome) -> tries
    buckets: Counter[tuple[str, str]] = Counter()  # (job, bucket) -> tries
    seconds: dict[str, float] = {}
    for function, outcome, duration in runs:
        duration = duration if math.isfinite(duration) and duration >= 0 else 0.0
        outcomes[function, outcome] += 1
        buckets[function, bucket_of(duration)] += 1
        seconds[function] = seconds.get(function, 0.0) + duration
    key = stats_key(prefix)
    for (function, outcome), count in outcomes.items():
        pipe.hincrby(key, f"runs|{function}|{outcome}", count)
    for function, total in seconds.items():
        pipe.hincrbyfloat(key, f"seconds|{function}", total)
    for (function, bucket), count in buckets.items():
        pipe.hincrby(key, f"le|{function}|{bucket}", count)


@dataclass
class JobStats:
    runs: dict[tuple[str, str], int] = field(default_factory=dict)  # (job, outcome) -> count
    seconds: dict[str, float] = field(default_factory=dict)
    buckets: dict[str, dict[str, int]] = field(default_factory=dict)  # job -> bucket -> count

    def histogram(self, function: str) -> list[tuple[str, int]]:
        """Cumulative ``(le, count)`` pairs, ``+Inf`` last, as Prometheus expects."""
        counts = self.buckets.get(function, {})
        total, result = 0, []
        for bound in BUCKETS:
            label = bucket_label(bound)
            total += counts.get(label, 0)
            result.append((label, total))
        return result


def parse_stats(raw: Mapping[bytes | str, bytes | str]) -> JobStats:
    stats = JobStats()
    labels = {bucket_label(bound) for bound in BUCKETS}
    for key, value in raw.items():
        name = key.decode() if isinstance(key, bytes) else key
        text = value.decode() if isinstance(value, bytes) else value
        parts = name.split("|")
        try:
            if parts[0] == "runs" and len(parts) == 3:
                stats.runs[(parts[1], parts[2])] = int(text)
            elif parts[0] == "seconds" and len(parts) == 2:
                stats.seconds[parts[1]] = float(text)
            elif parts[0] == "le" and len(parts) == 3 and parts[2] in labels:
                stats.buckets.setdefault(parts[1], {})[parts[2]] = int(text)
        except ValueError:
            continue  # a field this version does not understand
    return stats


async def read_stats(redis: Redis, prefix: str) -> JobStats:
    raw = await redis.hgetall(stats_key(prefix))  # type: ignore[misc]
    return parse_stats(raw)
