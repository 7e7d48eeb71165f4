"""Redis connections from configuration, with a retry budget that outlasts a short restart.

A Redis that is still loading its dataset (after a restart, the AOF or RDB is read back: tens
of seconds for a large one) answers every command with LOADING. That is not an outage: the
retry policy waits for the load to finish (up to ``loading_wait`` seconds) without counting
those answers against the outage budget.
"""

from __future__ import annotations

import time
from asyncio import sleep
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from loguru import logger
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import AbstractBackoff, ExponentialBackoff
from redis.exceptions import BusyLoadingError, RedisError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

T = TypeVar("T")
LOADING_POLL = 0.5  # seconds between tries while Redis loads its dataset
DEFAULT_LOADING_WAIT = 600.0


class LoadingAwareRetry(Retry):
    """redis-py's Retry, except that LOADING answers are waited out for up to
    ``loading_wait`` seconds and do not use up the attempts meant for an outage."""

    __slots__ = ("_loading_wait",)

    def __init__(self, backoff: AbstractBackoff, retries: int, loading_wait: float) -> None:
        super().__init__(backoff, retries)
        self._loading_wait = loading_wait

    async def call_with_retry(
        self, do: Callable[[], Awaitable[T]], fail: Callable[[RedisError], Any]
    ) -> T:
        # redis-py's loop, with LOADING (a ConnectionError subclass) handled first.
        self._backoff.reset()  # type: ignore[no-untyped-call]
        failures = 0
        loading_since: float | None = None
        while True:
            try:
                return await do()
            except BusyLoadingError as error:
                now = time.monotonic()
                if loading_since is None:
                    loading_since = now
                    logger.info(
                        "Redis is loading its dataset; waiting up to {:g} s for it "
                        "(not counted as an outage)",
                        self._loading_wait,
                    )
                await fail(error)  # drop the connection; the next try reconnects
                if now - loading_since >= self._loading_wait:
                    raise
                await sleep(LOADING_POLL)
            except self._supported_errors as error:
                failures += 1
                await fail(error)
                if self._retries >= 0 and failures > self._retries:
                    raise
                backoff = self._backoff.compute(failures)
                if backoff > 0:
                    await sleep(backoff)


def retry_policy(budget: float, loading_wait: float = DEFAULT_LOADING_WAIT) -> Retry:
    """Retries with exponential backoff capped at 2 s, enough attempts to cover ``budget``;
    a loading Redis is waited for separately (``loading_wait`` seconds)."""
    cap, base = 2.0, 0.1
    attempts, waited = 0, 0.0
    while waited < budget:
        waited += min(cap, base * 2**attempts)
        attempts += 1
    return LoadingAwareRetry(ExponentialBackoff(cap=cap, base=base), max(attempts, 1), loading_wait)


def connection_options(
    *, password: str | None, outage_budget: float, loading_wait: float = DEFAULT_LOADING_WAIT
) -> dict[str, Any]:
    """Keyword arguments of ``Redis.from_url`` / ``ConnectionPool.from_url`` shared by the
    store's clients and the queue's: the password, and retries that ride out ``outage_budget``
    seconds of connection errors and timeouts (``loading_wait`` seconds of LOADING)."""
    return {
        "password": password,
        "retry": retry_policy(outage_budget, loading_wait),
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
