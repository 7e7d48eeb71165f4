"""A loopback TCP proxy in front of a real server that can cut one connection on cue.

``arm(marker, when)``: the next client chunk containing ``marker`` cuts its connection, either
``"before"`` the chunk reaches the server (the command never ran) or ``"after"`` the server
answered it (the command ran; its reply is lost). Both sides are aborted (RST), as when a
network path or a server process goes away.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Literal

When = Literal["before", "after"]


class CuttingProxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self.cuts = 0
        self._armed: tuple[bytes, When] | None = None
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def arm(self, marker: bytes, when: When) -> None:
        self._armed = (marker, when)

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self.port

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _handle(
        self, client_in: asyncio.StreamReader, client_out: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            server_in, server_out = await asyncio.open_connection(*self.target)
        except OSError:
            client_out.transport.abort()
            return
        reply_cut = asyncio.Event()  # set: the next server reply is swallowed and both cut

        def cut() -> None:
            self.cuts += 1
            client_out.transport.abort()
            server_out.transport.abort()

        async def upstream() -> None:
            while chunk := await client_in.read(65536):
                armed = self._armed
                if armed is not None and armed[0] in chunk:
                    self._armed = None
                    if armed[1] == "before":
                        cut()
                        return
                    reply_cut.set()
                server_out.write(chunk)
                await server_out.drain()

        async def downstream() -> None:
            while chunk := await server_in.read(65536):
                if reply_cut.is_set():
                    cut()
                    return
                client_out.write(chunk)
                await client_out.drain()

        try:
            pumps = [asyncio.ensure_future(upstream()), asyncio.ensure_future(downstream())]
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
            for pump in pumps:
                pump.cancel()
            await asyncio.gather(*pumps, return_exceptions=True)
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            for writer in (client_out, server_out):
                with contextlib.suppress(OSError, RuntimeError):
                    writer.close()
            self._tasks.discard(task)
