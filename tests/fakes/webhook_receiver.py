"""A webhook receiver on loopback that can go away and come back on the same port.

``WebhookReceiver`` records every request it reads (with the monotonic time it arrived) and
answers with its current ``status`` after its current ``delay``; a test changes both while the
worker keeps delivering. ``stop`` closes the listening socket (the sender then gets connection
refused) and ``start`` opens it again on the same port. ``first_seen`` is what a receiver that
de-duplicates by ``webhook-id`` would process: the first request of each id that it accepted.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from aiohttp import web


@dataclass(frozen=True)
class Request:
    at: float  # time.monotonic() when the request was read
    headers: dict[str, str]
    body: bytes
    status: int  # what the receiver answered (or was about to, for a request that timed out)


@dataclass
class WebhookReceiver:
    status: int = 200
    delay: float = 0.0
    received: list[Request] = field(default_factory=list)
    port: int = 0
    _runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        status, delay = self.status, self.delay
        self.received.append(Request(time.monotonic(), dict(request.headers), body, status))
        if delay:
            await asyncio.sleep(delay)
        return web.Response(status=status, text="ok" if status < 400 else "not now")

    async def start(self) -> None:
        """Listen (on the same port as before, once one was given)."""
        app = web.Application()
        app.router.add_post("/hook", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port, reuse_address=True)
        await site.start()
        server = site._server
        assert server is not None
        sockets = getattr(server, "sockets", None)
        assert sockets
        self.port = int(sockets[0].getsockname()[1])

    async def stop(self) -> None:
        """Stop listening: connections are refused until ``start``."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def accepted(self) -> list[Request]:
        return [request for request in self.received if request.status < 300]

    def first_seen(self) -> list[Request]:
        """The accepted requests a receiver de-duplicating by ``webhook-id`` would process."""
        seen: set[str] = set()
        kept: list[Request] = []
        for request in self.accepted():
            webhook_id = request.headers["webhook-id"]
            if webhook_id not in seen:
                seen.add(webhook_id)
                kept.append(request)
        return kept

    async def __aenter__(self) -> WebhookReceiver:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
