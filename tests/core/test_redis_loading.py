"""A Redis still loading its dataset is waited for, not counted as an outage."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest
import redis as sync_redis

from tests.redis_server import free_port
from vultr_scraper_core.redis import connect

KEYS = 4000


def _answer(port: int, command: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
        sock.sendall(command)
        return sock.recv(128)


def _start(directory: Path, port: int, *extra: str) -> subprocess.Popen[bytes]:
    binary = shutil.which("redis-server")
    assert binary is not None
    return subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(directory),
         "--save", "", "--appendonly", "no", "--logfile", str(directory / "redis.log"), *extra],
        stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
    )  # fmt: skip


def _wait_until(check: object, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():  # type: ignore[operator]
                return
        except OSError:
            pass
        time.sleep(0.02)
    raise AssertionError("condition not reached in time")


@pytest.mark.slow
async def test_a_loading_redis_is_waited_for_beyond_the_outage_budget(tmp_path: Path) -> None:
    port = free_port()
    server = _start(tmp_path, port)
    try:
        _wait_until(lambda: _answer(port, b"PING\r\n").startswith(b"+PONG"))
        filler = sync_redis.Redis(port=port)
        with filler.pipeline(transaction=False) as pipe:
            for index in range(KEYS):
                pipe.set(f"key:{index}", "x")
            pipe.execute()
        filler.save()
        filler.close()
    finally:
        server.terminate()
        server.wait(10)
    # Restart, loading each key 1 ms slower: about 4 s of LOADING answers.
    slow = ("--key-load-delay", "1000", "--loading-process-events-interval-bytes", "1024")
    server = _start(tmp_path, port, *slow)
    try:
        _wait_until(lambda: _answer(port, b"PING\r\n").startswith(b"-LOADING"))
        client = connect(f"redis://127.0.0.1:{port}/0", outage_budget=0.5)
        began = time.monotonic()
        value = await client.get(f"key:{KEYS - 1}")
        waited = time.monotonic() - began
        await client.aclose()
        assert value == b"x"
        assert waited > 1.0  # far beyond the 0.5 s outage budget, and no error
    finally:
        server.terminate()
        server.wait(10)


async def test_a_redis_that_is_down_still_fails_within_the_budget() -> None:
    client = connect(f"redis://127.0.0.1:{free_port()}/0", outage_budget=0.5)
    began = time.monotonic()
    with pytest.raises(sync_redis.exceptions.ConnectionError):
        await client.ping()
    assert time.monotonic() - began < 5
    await client.aclose()
