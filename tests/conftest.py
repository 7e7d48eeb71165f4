"""Shared fixtures: a private real redis-server for the session, flushed between tests."""

from __future__ import annotations

import inspect
import logging
import os
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import aiohttp
import aioresponses.core
import pytest
from loguru import logger
from redis.asyncio import Redis

from tests.redis_server import RedisServer
from vultr_scraper_core.logs import _InterceptHandler

# Captured real Vultr payloads live outside the repository (they are not ours to redistribute);
# tests that read them skip when the folder is absent.
SAMPLES_DIR = Path(
    os.environ.get("VULTR_SAMPLES_DIR")
    or Path(__file__).resolve().parents[2] / "shared" / "vultr-samples"
)

# aioresponses 0.7.9 builds ClientResponse without the `stream_writer` argument that aiohttp
# 3.14 requires (pnuckowski/aioresponses#289). Supply a dummy writer until a fix is released.
if "stream_writer" in inspect.signature(aiohttp.ClientResponse.__init__).parameters:

    class _MockableResponse(aiohttp.ClientResponse):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs.setdefault("stream_writer", mock.Mock(output_size=0))
            super().__init__(*args, **kwargs)

    aioresponses.core.ClientResponse = _MockableResponse  # type: ignore[attr-defined]


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """``setup_logging`` rewires loguru and the stdlib root logger for the whole process; undo
    that after each test that called it, so no test logs into another test's (closed) stream."""
    root = logging.getLogger()
    level = root.level
    yield
    intercepts = [handler for handler in root.handlers if isinstance(handler, _InterceptHandler)]
    if not intercepts:
        return
    for handler in intercepts:
        root.removeHandler(handler)
    root.setLevel(level)
    logger.remove()
    # loguru's default sink, but resolving sys.stderr at write time: pytest swaps it per test.
    logger.add(_to_current_stderr, level="DEBUG")


def _to_current_stderr(message: str) -> None:
    sys.stderr.write(message)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    with RedisServer() as server:
        yield server


@pytest.fixture
def redis_url(redis_server: RedisServer) -> Iterator[str]:
    """The URL of the session's private Redis, empty at the start of every test."""
    if not redis_server.ping():  # a test may have stopped or restarted it
        redis_server.start()
    _flush(redis_server)
    yield redis_server.url
    if not redis_server.ping():
        redis_server.start()
    _flush(redis_server)


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


@pytest.fixture
def samples_dir() -> Path:
    if not SAMPLES_DIR.is_dir():
        pytest.skip(f"captured Vultr payloads not present (expected at {SAMPLES_DIR})")
    return SAMPLES_DIR


def _flush(server: RedisServer) -> None:
    import socket

    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(b"FLUSHALL\r\n")
        sock.recv(16)
