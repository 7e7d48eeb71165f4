"""The private redis-server (unix socket, append-only file) and Redis connections from config."""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from redis.asyncio import Redis

from tests.redis_server import RedisServer
from vultr_scraper_core.embedded_redis import (
    INSTALL_HINT,
    MAX_SOCKET_PATH,
    EmbeddedRedis,
    EmbeddedRedisError,
    answers_ping,
)
from vultr_scraper_core.redis import connect, retry_policy


@pytest.fixture
def state() -> Iterator[Path]:
    # Not tmp_path: unix socket paths must stay short (about 100 bytes at most).
    directory = Path(tempfile.mkdtemp(prefix="vs-"))
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


def fake_binary(directory: Path, script: str) -> None:
    """Put a stand-in ``redis-server`` first on PATH."""
    directory.mkdir(exist_ok=True)
    binary = directory / "redis-server"
    binary.write_text(f"#!/bin/sh\n{script}\n")
    binary.chmod(binary.stat().st_mode | stat.S_IXUSR)


async def test_start_serve_and_stop(state: Path) -> None:
    server = EmbeddedRedis(state)
    assert not server.running
    url = server.start()
    try:
        assert url == f"unix://{state / 'redis' / 'redis.sock'}"
        assert server.running
        assert answers_ping(server.socket)
        assert stat.S_IMODE(server.socket.stat().st_mode) == 0o700
        assert server.start() == url  # already running: no second server
        client = connect(url)
        try:
            await client.set("probe", "1")
            assert await client.get("probe") == b"1"
            info = await client.info("server")
            assert info["tcp_port"] == 0  # unix socket only, no TCP port
        finally:
            await client.aclose()
    finally:
        server.stop()
    assert not server.running
    assert not answers_ping(server.socket)
    server.stop()  # idempotent


async def test_append_only_file_survives_a_restart(state: Path) -> None:
    async with EmbeddedRedis(state) as server:
        client = connect(server.url)
        await client.set("vs:survivor", "still here")
        await client.aclose()
    aof = [path for path in (state / "redis").rglob("*.aof") if b"vs:survivor" in path.read_bytes()]
    assert aof, "the append-only file holds the write"

    async with EmbeddedRedis(state) as again:
        client = connect(again.url)
        assert await client.get("vs:survivor") == b"still here"
        await client.aclose()


def test_not_persistent_writes_no_append_only_file(state: Path) -> None:
    with EmbeddedRedis(state, persistent=False) as server:
        assert answers_ping(server.socket)
    assert not list((state / "redis").rglob("*.aof"))


def test_second_server_on_the_same_directory_is_refused(state: Path) -> None:
    with EmbeddedRedis(state):
        other = EmbeddedRedis(state)
        with pytest.raises(EmbeddedRedisError, match="another redis-server already serves"):
            other.start()
        assert not other.running


def test_stale_socket_file_is_replaced(state: Path) -> None:
    socket = state / "redis" / "redis.sock"
    socket.parent.mkdir(parents=True)
    socket.write_text("left over from a crash")
    with EmbeddedRedis(state) as server:
        assert answers_ping(server.socket)


def test_missing_redis_server_gives_a_clear_error(
    state: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = state / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    with pytest.raises(EmbeddedRedisError) as caught:
        EmbeddedRedis(state).start()
    assert str(caught.value) == INSTALL_HINT
    assert "redis-server was not found on PATH" in INSTALL_HINT
    assert "redis.url" in INSTALL_HINT


def test_too_long_socket_path_is_refused_before_starting(state: Path) -> None:
    deep = state / ("d" * (MAX_SOCKET_PATH - len(str(state))))
    server = EmbeddedRedis(deep)
    with pytest.raises(EmbeddedRedisError, match="too long") as caught:
        server.start()
    assert "paths.state_dir" in str(caught.value)
    assert not deep.exists()
    assert not server.running


def test_server_that_exits_at_start(state: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_binary(
        state / "bin", 'echo "FATAL CONFIG FILE ERROR" >&2\necho "Bad directive" >&2\nexit 3'
    )
    monkeypatch.setenv("PATH", f"{state / 'bin'}{os.pathsep}{os.environ['PATH']}")
    server = EmbeddedRedis(state)
    with pytest.raises(EmbeddedRedisError) as caught:
        server.start()
    assert str(caught.value) == (
        "redis-server exited at start (status 3): FATAL CONFIG FILE ERROR Bad directive"
    )
    assert not server.running
    server.stop()


def test_server_that_never_answers(state: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_binary(state / "bin", "exec sleep 30")
    monkeypatch.setenv("PATH", f"{state / 'bin'}{os.pathsep}{os.environ['PATH']}")
    server = EmbeddedRedis(state, start_timeout=0.3)
    with pytest.raises(EmbeddedRedisError, match=r"did not answer on .* in time"):
        server.start()
    assert not server.running  # and the stand-in was stopped, not left behind


def test_answers_ping_without_a_server(state: Path) -> None:
    assert not answers_ping(state / "nothing.sock")
    (state / "file.sock").write_text("")
    assert not answers_ping(state / "file.sock")


# -- connections from configuration ------------------------------------------------------------


def test_retry_policy_covers_the_outage_budget() -> None:
    for budget in (0.0, 1.0, 30.0, 120.0):
        policy = retry_policy(budget)
        retries: int = policy._retries
        waits = [policy._backoff.compute(failure) for failure in range(1, retries + 1)]
        assert sum(waits) >= budget
        assert max(waits) <= 2.0


async def test_connect_tcp_url(redis_url: str) -> None:
    client = connect(redis_url)
    try:
        assert await client.ping()
    finally:
        await client.aclose()


async def test_connect_rides_out_a_short_restart() -> None:
    with RedisServer() as server:
        client: Redis = connect(server.url, outage_budget=10.0)
        try:
            assert await client.ping()
            server.stop()
            restart = threading.Timer(0.3, server.start)
            restart.start()
            try:
                assert await client.ping()  # retried through the outage
            finally:
                restart.join()
        finally:
            await client.aclose()
