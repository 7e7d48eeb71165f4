"""Redis connections from configuration, with a retry budget that outlasts a short restart.

``connection_pool`` is the one factory: every client (the queue, the store, the HTTP API's
short-deadline client, the CLI) gets its pool from it, for a single server or a primary found
through Sentinel, over TLS or not (``vultr_scraper_core.redis_target``).

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
from redis.asyncio import ConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import (
    Sentinel,
    SentinelConnectionPool,
    SentinelManagedConnection,
    SentinelManagedSSLConnection,
)
from redis.backoff import AbstractBackoff, ExponentialBackoff, NoBackoff
from redis.exceptions import BusyLoadingError, RedisError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from vultr_scraper_core.redis_target import RedisTarget, TlsOptions, from_url

T = TypeVar("T")
LOADING_POLL = 0.5  # seconds between tries while Redis loads its dataset
DEFAULT_LOADING_WAIT = 600.0
# Asking a sentinel where the primary is: a dead or hung sentinel is skipped after this long.
SENTINEL_CONNECT_TIMEOUT = 1.0
SENTINEL_SOCKET_TIMEOUT = 2.0


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
    *, outage_budget: float, loading_wait: float = DEFAULT_LOADING_WAIT
) -> dict[str, Any]:
    """Pool options for long work (the worker, jobs, the CLI): retries that ride out
    ``outage_budget`` seconds of connection errors and timeouts (``loading_wait`` seconds of
    LOADING). A failover behind Sentinel is such an outage: each retry asks the sentinels again
    where the primary is."""
    return {
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


def deadline_options(deadline: float) -> dict[str, Any]:
    """Pool options for HTTP requests: every call (connecting, or waiting for the answer) gives
    up after ``deadline`` seconds and is not retried, so an outage is a fast 503."""
    return {
        "socket_timeout": deadline,
        "socket_connect_timeout": deadline,
        "retry": Retry(NoBackoff(), 0),
        "retry_on_timeout": False,
        "retry_on_error": [],
    }


def tls_options(tls: TlsOptions) -> dict[str, Any]:
    """redis-py's TLS keywords: the server is always verified (``ca_file``, else the system's
    trust store), its host name too unless ``check_hostname`` is off."""
    return {
        "ssl_cert_reqs": "required",
        "ssl_ca_certs": tls.ca_file,
        "ssl_certfile": tls.cert_file,
        "ssl_keyfile": tls.key_file,
        "ssl_check_hostname": tls.check_hostname,
    }


_ONE_TRY = Retry(NoBackoff(), 0)


class _FailoverConnection(SentinelManagedConnection):
    """redis-py's Sentinel connection, except that one address is tried once.

    redis-py connects to the address the sentinels gave through the plain ``Connection.connect``,
    which retries that *same* address for the whole retry budget: after a failover, a client
    kept knocking on the dead primary for the full outage budget (measured: 17 s with a 15 s
    budget, for a failover that took 2 s). Tried once, a refused address sends the retry loop
    back to the sentinels, which name the new primary as soon as they have promoted it."""

    async def connect_to(self, address: Any) -> None:
        retry, self.retry = self.retry, _ONE_TRY
        try:
            await super().connect_to(address)  # type: ignore[no-untyped-call]
        finally:
            self.retry = retry


class _FailoverSSLConnection(_FailoverConnection, SentinelManagedSSLConnection):
    pass


class _SentinelPool(SentinelConnectionPool):
    """redis-py's Sentinel pool, which logs a change of primary (a failover seen by this
    client: one INFO line, even when the retries hid the outage itself) and also closes its
    connections to the sentinels (redis-py leaves them open when the client is closed)."""

    async def get_master_address(self) -> Any:
        previous = self.master_address
        address = await super().get_master_address()  # type: ignore[no-untyped-call]
        if previous is not None and address != previous:
            logger.bind(
                event="redis.primary_changed",
                service=self.service_name,
                primary=_address(address),
                previous=_address(previous),
            ).info(
                f"Redis primary of {self.service_name} is now {_address(address)} "
                f"(was {_address(previous)}): the sentinels failed over"
            )
        return address

    async def disconnect(self, inuse_connections: bool = True) -> None:
        await super().disconnect(inuse_connections)
        for sentinel in self.sentinel_manager.sentinels:
            await sentinel.connection_pool.disconnect()


def _address(address: Any) -> str:
    host, port = address
    return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"


def connection_pool(target: RedisTarget | str, options: dict[str, Any]) -> ConnectionPool:
    """A pool to ``target`` (a ``RedisTarget``, or a bare URL without password) with
    ``options`` (``connection_options`` or ``deadline_options``). Nothing connects until used."""
    if isinstance(target, str):
        target = from_url(target)
    tls = tls_options(target.tls) if target.tls is not None else {}
    if not target.is_sentinel:
        return ConnectionPool.from_url(target.url, password=target.password, **tls, **options)
    deadline = options.get("socket_timeout")
    sentinel_kwargs: dict[str, Any] = {
        "password": target.sentinel_password,
        "socket_connect_timeout": min(
            deadline or SENTINEL_CONNECT_TIMEOUT, SENTINEL_CONNECT_TIMEOUT
        ),
        "socket_timeout": min(deadline or SENTINEL_SOCKET_TIMEOUT, SENTINEL_SOCKET_TIMEOUT),
    }
    if target.tls is not None:
        sentinel_kwargs.update(ssl=True, **tls)
    manager = Sentinel(list(target.sentinels), sentinel_kwargs=sentinel_kwargs)  # type: ignore[no-untyped-call]
    pool: ConnectionPool = _SentinelPool(  # type: ignore[no-untyped-call]
        target.service_name,
        manager,
        is_master=True,
        db=target.database,
        username=target.username,
        password=target.password,
        connection_class=_FailoverSSLConnection if target.tls else _FailoverConnection,
        **tls,
        **options,
    )
    return pool


def connect(
    target: RedisTarget | str,
    *,
    password: str | None = None,
    outage_budget: float = 30.0,
    loading_wait: float = DEFAULT_LOADING_WAIT,
) -> Redis:
    """A client for ``target``, or for a ``redis://``, ``rediss://`` or ``unix://`` URL with
    ``password`` (not connected until used)."""
    if isinstance(target, str):
        target = from_url(target, password=password)
    pool = connection_pool(
        target, connection_options(outage_budget=outage_budget, loading_wait=loading_wait)
    )
    client: Redis = Redis.from_pool(pool)  # closing the client closes its pool
    return client
