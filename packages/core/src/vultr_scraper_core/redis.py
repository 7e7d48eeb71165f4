"""Redis connections from configuration, with a retry budget that outlasts a short restart."""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError


def retry_policy(budget: float) -> Retry:
    """Retries with exponential backoff capped at 2 s, enough attempts to cover ``budget``."""
    cap, base = 2.0, 0.1
    attempts, waited = 0, 0.0
    while waited < budget:
        waited += min(cap, base * 2**attempts)
        attempts += 1
    return Retry(ExponentialBackoff(cap=cap, base=base), max(attempts, 1))


def connection_options(*, password: str | None, outage_budget: float) -> dict[str, Any]:
    """Keyword arguments of ``Redis.from_url`` / ``ConnectionPool.from_url`` shared by the
    store's clients and the queue's: the password, and retries that ride out ``outage_budget``
    seconds of connection errors and timeouts."""
    return {
        "password": password,
        "retry": retry_policy(outage_budget),
        "retry_on_error": [RedisConnectionError, RedisTimeoutError, OSError],
        "retry_on_timeout": True,
        "socket_connect_timeout": 5,
        # No socket_timeout: redis-py would wrap every read in asyncio.timeout, which costs
        # about a fifth of arq's per-job time. No health_check_interval either: a connection
        # that went stale (a Redis restart) fails its next command with a connection error,
        # which the retry policy answers with a fresh connection, so the PING buys nothing;
        # while it costs two event-loop lookups per command (each a getpid() on Python 3.11),
        # about 4 % of arq's per-job time.
    }


def connect(url: str, *, password: str | None = None, outage_budget: float = 30.0) -> Redis:
    """A client for ``redis://``, ``rediss://`` or ``unix://`` URLs (not connected until used)."""
    client: Redis = Redis.from_url(
        url, **connection_options(password=password, outage_budget=outage_budget)
    )
    return client
