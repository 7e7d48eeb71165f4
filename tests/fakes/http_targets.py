"""Real loopback HTTP(S) servers for health probes and notification receivers.

``HttpTarget`` answers every path from a per-path script of ``Reply`` values (the last one
repeats), records every request (method, path, headers, body), and can serve TLS with a given
certificate. Tests use it both as a probe target and as a webhook receiver.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import defaultdict
from dataclasses import dataclass, field

from aiohttp import web


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: bytes = b"ok"
    content_type: str = "text/plain"
    delay: float = 0.0


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class HttpTarget:
    ssl_context: ssl.SSLContext | None = None
    default: Reply = field(default_factory=Reply)
    scripts: dict[str, list[Reply]] = field(default_factory=dict)
    received: list[Received] = field(default_factory=list)
    hits: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    port: int = 0
    active: int = 0  # requests being handled now
    max_active: int = 0  # the most handled at once
    _runner: web.AppRunner | None = None

    def reply(self, path: str, *replies: Reply) -> None:
        """Answer ``path`` with ``replies`` in turn; the last one repeats."""
        self.scripts[path] = list(replies)

    def url(self, path: str = "/") -> str:
        scheme = "https" if self.ssl_context else "http"
        return f"{scheme}://127.0.0.1:{self.port}{path}"

    def requests_to(self, path: str) -> list[Received]:
        return [request for request in self.received if request.path == path]

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self.received.append(Received(request.method, request.path, dict(request.headers), body))
        index = self.hits[request.path]
        self.hits[request.path] += 1
        script = self.scripts.get(request.path) or [self.default]
        reply = script[min(index, len(script) - 1)]
        self.active += 1
        self.max_active = max(self.max_active, self.active)
        try:
            if reply.delay:
                await asyncio.sleep(reply.delay)
        finally:
            self.active -= 1
        return web.Response(status=reply.status, body=reply.body, content_type=reply.content_type)

    async def __aenter__(self) -> HttpTarget:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=self.ssl_context)
        await site.start()
        server = site._server
        assert server is not None
        sockets = getattr(server, "sockets", None)
        assert sockets
        self.port = int(sockets[0].getsockname()[1])
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
