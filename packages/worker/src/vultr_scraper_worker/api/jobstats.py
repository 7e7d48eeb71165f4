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
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# Seconds. A catalogue scrape takes seconds to minutes; a health check under a second.
BUCKETS: tuple[float, ...] = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, math.inf)


def stats_key(prefix: str) -> str:
    return f"{prefix}:jobs:stats"


def bucket_label(bound: float) -> str:
    return "+Inf" if math.isinf(bound) else repr(float(bound))


def bucket_of(duration: float) -> str:
    for bound in BUCKETS:
        if duration <= bound:
            return bucket_label(bound)
    return "+Inf"  # NaN


def add_run(pipe: Any, prefix: str, function: str, outcome: str, duration: float) -> None:
    """Queue the counter increments for one finished try on ``pipe`` (a redis pipeline)."""
    key = stats_key(prefix)
    seconds = duration if math.isfinite(duration) and duration >= 0 else 0.0
    pipe.hincrby(key, f"runs|{function}|{outcome}", 1)
    pipe.hincrbyfloat(key, f"seconds|{function}", seconds)
    pipe.hincrby(key, f"le|{function}|{bucket_of(seconds)}", 1)


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
