"""Redis outages as the worker's poll loop sees them: logged once, waited out, bounded.

Any Redis error in a poll (unreachable, out of memory, a read-only replica, loading, a timeout)
starts an outage: one WARNING naming the cause in words, then polls again with capped
exponential backoff and jitter. The first poll that works ends it with one INFO line giving its
length. An outage longer than ``worker.redis_outage_budget`` raises ``OutageTooLong`` (the
worker exits 69 for its supervisor); a Redis that is loading its dataset gets
``LOADING_WAIT`` instead, as loading a large dataset is slow but not a fault.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable

from loguru import logger
from redis.asyncio import Redis

from vultr_scraper_core.redis import DEFAULT_LOADING_WAIT
from vultr_scraper_core.redis_faults import redis_cause

BACKOFF_BASE = 0.25
BACKOFF_CAP = 5.0
_DETAIL_TIMEOUT = 1.0


class OutageTooLong(Exception):
    """Redis has been failing for longer than the outage budget."""

    def __init__(self, cause: str, seconds: float, budget: float) -> None:
        super().__init__(f"{cause}; for {seconds:.0f} s, longer than the outage budget")
        self.cause = cause
        self.seconds = seconds
        self.budget = budget


class RedisOutage:
    """The state of at most one outage at a time (see the module docstring)."""

    def __init__(
        self,
        budget: float,
        *,
        loading_wait: float = DEFAULT_LOADING_WAIT,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.budget = budget
        self.loading_wait = loading_wait
        self.clock = clock
        self.started: float | None = None
        self.cause = ""
        self.failures = 0

    @property
    def ongoing(self) -> bool:
        return self.started is not None

    async def failed(
        self, error: BaseException, redis: Redis | None = None, *, since: float | None = None
    ) -> float:
        """Note a failed poll (begun at ``since``, on ``clock``); returns how long to wait
        before the next one. Raises ``OutageTooLong`` once the outage outlasts its budget."""
        now = self.clock()
        cause = redis_cause(error)
        if self.started is None:
            self.started, self.failures = (now if since is None else since), 0
            detail = await _detail(cause, redis)
            logger.bind(
                event="redis.outage", cause=cause + detail, error_type=type(error).__name__
            ).warning(
                f"{cause}{detail}; the worker waits for Redis and retries its jobs "
                f"(gives up after {self.budget:g} s)"
            )
        elif cause != self.cause:
            logger.bind(event="redis.outage", cause=cause).info(f"Redis outage goes on: {cause}")
        self.cause = cause
        self.failures += 1
        lasted = now - self.started
        allowed = self.loading_wait if cause.startswith("Redis is loading") else self.budget
        if lasted > allowed:
            raise OutageTooLong(cause, lasted, allowed)
        delay = min(BACKOFF_CAP, BACKOFF_BASE * 2 ** (self.failures - 1))
        return float(delay * random.uniform(0.8, 1.2))

    def recovered(self) -> None:
        """Note a poll that worked; ends the outage, if any, with one INFO line."""
        if self.started is None:
            return
        lasted = self.clock() - self.started
        logger.bind(
            event="redis.recovered", outage_seconds=round(lasted, 1), cause=self.cause
        ).info(f"Redis is back after an outage of {lasted:.1f} s ({self.cause})")
        self.started = None
        self.cause = ""
        self.failures = 0


async def _detail(cause: str, redis: Redis | None) -> str:
    """ " (maxmemory 5mb)" for an out-of-memory Redis, when it tells; else ""."""
    if redis is None or "out of memory" not in cause:
        return ""
    try:
        async with asyncio.timeout(_DETAIL_TIMEOUT):
            reply = await redis.config_get("maxmemory")
        limit = int(reply.get("maxmemory") or reply.get(b"maxmemory") or 0)
    except Exception:  # CONFIG may be renamed or forbidden; the cause stands on its own
        return ""
    return f" (maxmemory {_size(limit)})" if limit else ""


def _size(octets: int) -> str:
    """Bytes as redis.conf writes them: 5mb, 1gb, 512kb, or plain bytes."""
    for unit, size in (("gb", 1 << 30), ("mb", 1 << 20), ("kb", 1 << 10)):
        if octets % size == 0:
            return f"{octets // size}{unit}"
    return f"{octets} bytes"
