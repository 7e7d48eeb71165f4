"""Failed logins: logged, and throttled per client address.

A failed login is a wrong token, at ``POST /login`` or in an ``Authorization: Bearer`` header.
Each is logged at WARNING with the client's address (never what it submitted). An address with
``[http] max_failed_logins`` failures within the last minute gets 429 with ``Retry-After`` for
every token it sends, right or wrong (otherwise the answer to a right guess would still tell),
until its oldest failure is a minute old; a successful login clears its count. A client that
does not keep failing is never throttled, and the login cookie is never checked against it.

The count lives in the server's memory: it needs no Redis (the login routes answer during an
outage), and a restart forgets it, which a guesser cannot cause.
"""

from __future__ import annotations

import ipaddress
import math
import time
from collections import deque
from collections.abc import Callable

from aiohttp import web
from loguru import logger

from vultr_scraper_worker.api.errors import ApiError

WINDOW = 60.0  # seconds over which failures are counted
MAX_ADDRESSES = 10_000  # addresses tracked at once; the stalest are forgotten past this


def client_address(request: web.Request) -> str:
    """The client's address: the peer's, or, when the peer is a reverse proxy on this host
    (a loopback address), the last address of its ``X-Forwarded-For`` (the one it appended)."""
    peer = request.remote or "local"  # a unix socket has no peer address
    forwarded = request.headers.get("X-Forwarded-For", "")
    if forwarded and _is_loopback(peer):
        last = forwarded.rsplit(",", 1)[-1].strip()
        if last:
            return last[:64]
    return peer


def _is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return address == "local"


class LoginThrottle:
    """Failures per client address within ``WINDOW`` seconds; ``limit`` 0 throttles nothing."""

    def __init__(self, limit: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self._clock = clock
        self._failures: dict[str, deque[float]] = {}

    def check(self, client: str) -> None:
        """Raise 429 if ``client`` has used up its failed logins (before its token is read)."""
        wait = self.retry_after(client)
        if wait is not None:
            seconds = math.ceil(wait)
            raise ApiError(
                429,
                f"too many failed logins from this address; try again in {seconds} s",
                headers={"Retry-After": str(seconds)},
            )

    def retry_after(self, client: str) -> float | None:
        """Seconds until ``client`` may send a token again, or None if it may now."""
        if self.limit <= 0:
            return None
        failures = self._recent(client)
        if len(failures) < self.limit:
            return None
        return max(failures[-self.limit] + WINDOW - self._clock(), 1.0)

    def failed(self, client: str, where: str) -> None:
        """Count and log one failed login (``where``: the path it was sent to)."""
        failures = self._recent(client)
        failures.append(self._clock())
        self._failures[client] = failures
        log = logger.bind(event="http.login_failed", client=client, path=where)
        log = log.bind(failures=len(failures), throttled=0 < self.limit <= len(failures))
        message = f"failed login from {client} at {where} ({len(failures)} in the last minute)"
        wait = self.retry_after(client)
        if wait is not None:
            message += f"; logins from it are refused for {math.ceil(wait)} s"
        log.warning(message)
        if len(self._failures) > MAX_ADDRESSES:
            self._forget_stalest()

    def succeeded(self, client: str) -> None:
        self._failures.pop(client, None)

    def _recent(self, client: str) -> deque[float]:
        failures = self._failures.pop(client, None) or deque()
        horizon = self._clock() - WINDOW
        while failures and failures[0] <= horizon:
            failures.popleft()
        if failures:  # re-inserted: the dict's order is then the order of last use
            self._failures[client] = failures
        return failures

    def _forget_stalest(self) -> None:
        for client in list(self._failures)[: len(self._failures) - MAX_ADDRESSES]:
            del self._failures[client]
