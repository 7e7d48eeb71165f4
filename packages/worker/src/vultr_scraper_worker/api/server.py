"""Start and stop the HTTP server inside the worker process (called from the worker's hooks).

``[http] listen`` is ``HOST:PORT`` (``127.0.0.1:8080``, ``[::1]:8080``, ``:8080`` for every
interface, port 0 for any free port) or ``unix:/path/to.sock``; empty disables the server. It is
parsed (and validated when the configuration is loaded) by ``vultr_scraper_core.config``.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass

from aiohttp import web
from loguru import logger

from vultr_scraper_core.config import ListenAddress, parse_listen
from vultr_scraper_worker.api.app import create_app
from vultr_scraper_worker.api.state import ApiState


@dataclass
class HttpServerHandle:
    runner: web.AppRunner
    app: web.Application
    url: str  # http://host:port (the bound port when 0 was asked for) or unix:/path


async def start_http_server(state: ApiState) -> HttpServerHandle | None:
    """Serve the API for ``state`` on its ``[http] listen``; None when that is empty. Raises on
    a bad address or a port that cannot be bound (the caller logs it and keeps working)."""
    listen = parse_listen(state.config.http.listen)
    if listen is None:
        logger.info("HTTP server disabled ([http] listen is empty)")
        return None
    app = create_app(state)
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    try:
        site: web.BaseSite
        if listen.path is not None:
            _remove_stale_socket(listen.path)
            site = web.UnixSite(runner, listen.path)
        else:
            site = web.TCPSite(runner, listen.host, listen.port, reuse_address=True)
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    url = _bound_url(runner, listen)
    logger.bind(url=url).info("HTTP server listening on {}", url)
    return HttpServerHandle(runner=runner, app=app, url=url)


def _remove_stale_socket(path: str) -> None:
    """A socket file left behind by a killed worker would make the bind fail."""
    if os.path.exists(path) and stat.S_ISSOCK(os.stat(path).st_mode):
        os.unlink(path)


def _bound_url(runner: web.AppRunner, listen: ListenAddress) -> str:
    if listen.path is not None:
        return f"unix:{listen.path}"
    for address in runner.addresses:
        if isinstance(address, tuple) and len(address) >= 2:
            host, port = str(address[0]), int(address[1])
            shown = f"[{host}]" if ":" in host else host
            return f"http://{shown}:{port}"
    return f"http://{listen.host or '0.0.0.0'}:{listen.port}"


async def stop_http_server(handle: HttpServerHandle | None) -> None:
    """Stop accepting, let requests in flight finish (briefly), release the socket."""
    if handle is None:
        return
    await handle.runner.cleanup()
    logger.info("HTTP server stopped")
