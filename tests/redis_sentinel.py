"""A real primary, a replica and three sentinels on loopback, for failover tests.

Built from ``RedisServer`` (free ports, a temp dir each). The sentinels run ``redis-server
sentinel.conf --sentinel`` with a short ``down-after-milliseconds`` so a killed primary is
replaced within a few seconds.
"""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType

from tests.redis_server import RedisServer, free_port

SERVICE = "vsprimary"
DOWN_AFTER_MS = 1000
FAILOVER_TIMEOUT_MS = 5000


def _ask(port: int, command: bytes, timeout: float = 0.5) -> bytes:
    """One inline command to a server on loopback; its raw answer (b"" if unreachable)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
            sock.sendall(command + b"\r\n")
            sock.settimeout(timeout)
            chunks = b""
            while True:
                try:
                    chunk = sock.recv(65536)
                except TimeoutError:
                    break
                if not chunk:
                    break
                chunks += chunk
                if len(chunk) < 65536:
                    break
            return chunks
    except OSError:
        return b""


class SentinelProcess:
    def __init__(self, directory: Path, primary_port: int, quorum: int) -> None:
        self.port = free_port()
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.conf = directory / "sentinel.conf"
        self.conf.write_text(
            "\n".join(
                [
                    f"port {self.port}",
                    "bind 127.0.0.1",
                    f"dir {directory}",
                    f"logfile {directory / 'sentinel.log'}",
                    f"sentinel monitor {SERVICE} 127.0.0.1 {primary_port} {quorum}",
                    f"sentinel down-after-milliseconds {SERVICE} {DOWN_AFTER_MS}",
                    f"sentinel failover-timeout {SERVICE} {FAILOVER_TIMEOUT_MS}",
                    f"sentinel parallel-syncs {SERVICE} 1",
                    "",
                ]
            )
        )
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, binary: str) -> None:
        self.process = subprocess.Popen(
            [binary, str(self.conf), "--sentinel"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"sentinel exited: {self.log_tail()}")
            if _ask(self.port, b"PING").startswith(b"+PONG"):
                return
            time.sleep(0.05)
        raise RuntimeError(f"sentinel did not start: {self.log_tail()}")

    def primary_port(self) -> int | None:
        answer = _ask(self.port, f"SENTINEL get-master-addr-by-name {SERVICE}".encode())
        lines = answer.split(b"\r\n")
        # *2 $9 127.0.0.1 $4 6380
        if len(lines) >= 5 and lines[0] == b"*2":
            return int(lines[4])
        return None

    def log_tail(self) -> str:
        log = self.directory / "sentinel.log"
        return log.read_text(errors="replace")[-2000:] if log.exists() else ""

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
            self.process = None


class SentinelSetup:
    """``with SentinelSetup() as setup: setup.url`` -> ``redis+sentinel://...``."""

    def __init__(self) -> None:
        self.primary = RedisServer()
        self.replica = RedisServer()
        self.sentinels: list[SentinelProcess] = []

    @property
    def url(self) -> str:
        hosts = ",".join(f"127.0.0.1:{sentinel.port}" for sentinel in self.sentinels)
        return f"redis+sentinel://{hosts}/{SERVICE}/0"

    def start(self) -> None:
        self.primary.start()
        self.replica.options = ("--replicaof", "127.0.0.1", str(self.primary.port))
        self.replica.start()
        self.wait_replicated(timeout=20)
        for index in range(3):
            sentinel = SentinelProcess(
                self.primary.directory / f"sentinel-{index}", self.primary.port, quorum=2
            )
            self.sentinels.append(sentinel)
            sentinel.start(self.primary.binary)
        self._wait_sentinels_agree(timeout=20)

    def _wait_sentinels_agree(self, timeout: float) -> None:
        """Each sentinel knows the replica and the other two sentinels (so a failover can be
        voted on)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ready = 0
            for sentinel in self.sentinels:
                info = _ask(sentinel.port, f"SENTINEL master {SERVICE}".encode())
                fields = info.split(b"\r\n")
                values = {
                    fields[i].decode(): fields[i + 2].decode()
                    for i in range(2, len(fields) - 2, 4)
                    if i + 2 < len(fields)
                }
                if values.get("num-slaves") == "1" and values.get("num-other-sentinels") == "2":
                    ready += 1
            if ready == len(self.sentinels):
                return
            time.sleep(0.2)
        raise RuntimeError("sentinels did not discover each other: " + self.sentinels[0].log_tail())

    def wait_replicated(self, timeout: float = 10) -> None:
        """Until the replica has applied every write the primary has taken so far."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            answer = _ask(self.primary.port, b"WAIT 1 1000", timeout=2)
            if answer.startswith(b":") and int(answer[1:].split(b"\r\n")[0]) >= 1:
                return
            time.sleep(0.1)
        raise RuntimeError("the replica did not catch up")

    def kill_primary(self) -> int:
        """SIGKILL the primary; its port."""
        port = self.primary.port
        self.primary.stop(kill=True)
        return port

    def wait_failover(self, old_port: int, timeout: float = 30) -> int:
        """Until a majority of sentinels name a primary other than ``old_port``; its port."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            named = [sentinel.primary_port() for sentinel in self.sentinels]
            moved = [port for port in named if port is not None and port != old_port]
            if len(moved) >= 2 and _ask(moved[0], b"ROLE").startswith(b"*3\r\n$6\r\nmaster"):
                return moved[0]
            time.sleep(0.2)
        raise RuntimeError(
            "no failover within the time: " + " | ".join(s.log_tail() for s in self.sentinels)
        )

    def cleanup(self) -> None:
        for sentinel in self.sentinels:
            sentinel.stop()
        self.replica.cleanup()
        self.primary.cleanup()

    def __enter__(self) -> SentinelSetup:
        try:
            self.start()
        except BaseException:
            self.cleanup()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.cleanup()
