"""A private ``redis-server`` owned by this process, for when no ``redis.url`` is configured.

It listens only on a unix socket in the state directory (no TCP port), keeps an append-only file
there so history survives restarts, and is stopped when its owner exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from types import TracebackType

SERVER_BINARY = "redis-server"
# sun_path holds 108 bytes on Linux and 104 on the BSDs and macOS, terminating NUL included.
MAX_SOCKET_PATH = 103
INSTALL_HINT = (
    "redis-server was not found on PATH; install it (Debian/Ubuntu: apt-get install redis-server, "
    "Nix: nix run gives it) or set redis.url to an existing Redis"
)


class EmbeddedRedisError(RuntimeError):
    pass


class EmbeddedRedis:
    """``with EmbeddedRedis(state_dir) as server: server.url`` -> ``unix://.../redis.sock``."""

    def __init__(self, state_dir: Path, *, persistent: bool = True, start_timeout: float = 10.0):
        self.directory = state_dir / "redis"
        self.socket = self.directory / "redis.sock"
        self.persistent = persistent
        self.start_timeout = start_timeout
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    def start(self) -> str:
        if self.running:
            return self.url
        binary = shutil.which(SERVER_BINARY)
        if binary is None:
            raise EmbeddedRedisError(INSTALL_HINT)
        length = len(os.fsencode(self.socket))
        if length > MAX_SOCKET_PATH:
            raise EmbeddedRedisError(
                f"unix socket path {self.socket} is too long ({length} bytes, the limit is "
                f"{MAX_SOCKET_PATH}); choose a shorter paths.state_dir"
            )
        try:
            self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as exc:
            raise EmbeddedRedisError(
                f"cannot create {self.directory}: {exc.strerror or exc}"
            ) from None
        if self.socket.exists():
            if answers_ping(self.socket):
                raise EmbeddedRedisError(
                    f"another redis-server already serves {self.socket}; "
                    "is another vultr-scraper process running with the same state directory?"
                )
            self.socket.unlink()
        persistence = (
            ["--appendonly", "yes", "--appendfsync", "everysec", "--save", ""]
            if self.persistent
            else ["--appendonly", "no", "--save", ""]
        )
        command = [
            binary,
            "--port",
            "0",
            "--unixsocket",
            str(self.socket),
            "--unixsocketperm",
            "700",
            "--dir",
            str(self.directory),
            "--daemonize",
            "no",
            "--logfile",
            str(self.directory / "redis.log"),
            *persistence,
        ]
        # Its own session: a Ctrl-C meant for the owner must not stop Redis under running jobs;
        # the owner stops it last, after its jobs have finished and saved.
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        self._process = process
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                self._process = None
                stderr = process.stderr.read().decode(errors="replace") if process.stderr else ""
                if process.stderr:
                    process.stderr.close()
                log = self.directory / "redis.log"
                detail = stderr.strip() or (
                    log.read_text(errors="replace")[-500:] if log.exists() else ""
                )
                detail = " ".join(detail.split())
                raise EmbeddedRedisError(
                    f"redis-server exited at start (status {process.returncode}): {detail}"
                )
            if self.socket.exists() and answers_ping(self.socket):
                return self.url
            time.sleep(0.02)
        self.stop()
        raise EmbeddedRedisError(f"redis-server did not answer on {self.socket} in time")

    @property
    def running(self) -> bool:
        """True while the server this object started is alive."""
        return self._process is not None and self._process.poll() is None

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)  # redis-server flushes the AOF on SIGTERM
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if process.stderr:
            process.stderr.close()  # also when it had already exited: no ResourceWarning

    def __enter__(self) -> EmbeddedRedis:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    async def __aenter__(self) -> EmbeddedRedis:
        await asyncio.to_thread(self.start)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await asyncio.to_thread(self.stop)


def answers_ping(socket_path: Path) -> bool:
    import socket

    with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        sock.connect(os.fspath(socket_path))
        sock.sendall(b"PING\r\n")
        return sock.recv(16).startswith(b"+PONG")
    return False
