"""``rediss://``: a real worker and the CLI on a redis-server that only speaks TLS and wants a
client certificate; the wrong CA, or no client certificate, is refused with a clear line."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes.tls import HAVE_OPENSSL, self_signed
from tests.redis_server import env_without_project_vars, free_port
from tests.worker.processes import (
    WorkerProcess,
    cli,
    eventually,
    worker_env,
    workers,
)
from vultr_scraper_core.redis_target import TlsOptions, from_url
from vultr_scraper_worker.enqueue import close_client, enqueue_job, queue_client
from vultr_scraper_worker.records.runs import JobHistory

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not HAVE_OPENSSL, reason="the openssl CLI makes the test certificates"),
]


class TlsRedis:
    """``redis-server`` with TLS only (no plain port), requiring a client certificate."""

    def __init__(self, directory: Path, server: tuple[Path, Path], client_ca: Path) -> None:
        self.directory = directory
        self.port = free_port()
        binary = shutil.which("redis-server")
        assert binary is not None
        command = [
            binary,
            "--port", "0",
            "--tls-port", str(self.port),
            "--bind", "127.0.0.1",
            "--tls-cert-file", str(server[0]),
            "--tls-key-file", str(server[1]),
            "--tls-ca-cert-file", str(client_ca),
            "--tls-auth-clients", "yes",
            "--dir", str(directory),
            "--save", "",
            "--appendonly", "no",
            "--logfile", str(directory / "redis.log"),
        ]  # fmt: skip
        self.process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
        )
        self.url = f"rediss://127.0.0.1:{self.port}/0"

    def wait_listening(self) -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                log = (self.directory / "redis.log").read_text(errors="replace")[-1000:]
                raise RuntimeError(f"redis-server exited: {log}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("redis-server with TLS did not start")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


def _redis_tls_missing() -> str | None:
    """Why this redis-server cannot serve TLS, or None if it can. A build with TLS exits at once
    on ``--port 0 --tls-port 0`` ("not listen anywhere"); one without rejects the directive."""
    binary = shutil.which("redis-server")
    if binary is None:
        return "redis-server is not installed"
    probe = subprocess.run(
        [binary, "--port", "0", "--tls-port", "0", "--save", ""],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    output = probe.stdout + probe.stderr
    if "Bad directive" in output or "tls-port" in output:
        return "this redis-server was built without TLS support (--tls-port is rejected)"
    return None


@pytest.fixture
def certificates() -> Iterator[dict[str, Path]]:
    folder = Path(tempfile.mkdtemp(prefix="vs-tls-"))
    try:
        server_cert, server_key = self_signed(folder, "server", 2)
        client_cert, client_key = self_signed(folder, "client", 2)
        other_cert, _ = self_signed(folder, "other", 2)
        yield {
            "server_cert": server_cert,
            "server_key": server_key,
            "client_cert": client_cert,
            "client_key": client_key,
            "other_ca": other_cert,
        }
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def tls_redis(certificates: dict[str, Path], tmp_path: Path) -> Iterator[TlsRedis]:
    missing = _redis_tls_missing()
    if missing is not None:
        pytest.skip(missing)
    directory = tmp_path / "redis"
    directory.mkdir()
    server = TlsRedis(
        directory,
        (certificates["server_cert"], certificates["server_key"]),
        client_ca=certificates["client_cert"],
    )
    try:
        server.wait_listening()
        yield server
    finally:
        server.stop()


def _tls_env(certificates: dict[str, Path], ca: str = "server_cert") -> dict[str, str]:
    return {
        "VULTR_SCRAPER__REDIS__CA_FILE": str(certificates[ca]),
        "VULTR_SCRAPER__REDIS__CERT_FILE": str(certificates["client_cert"]),
        "VULTR_SCRAPER__REDIS__KEY_FILE": str(certificates["client_key"]),
    }


async def test_worker_and_cli_over_tls(
    tls_redis: TlsRedis, certificates: dict[str, Path], tmp_path: Path
) -> None:
    env = worker_env(tls_redis.url, tmp_path / "state", **_tls_env(certificates))
    tls = TlsOptions(
        ca_file=str(certificates["server_cert"]),
        cert_file=str(certificates["client_cert"]),
        key_file=str(certificates["client_key"]),
    )
    queue = queue_client(from_url(tls_redis.url, tls=tls), queue_name="arq:queue", outage_budget=5)
    try:
        with workers(WorkerProcess(env, tmp_path)) as (worker,):
            await worker.wait_ready()
            job_id = await enqueue_job(queue, "noop", "over-tls")
            assert job_id is not None
            history = JobHistory(queue, "vs")

            async def ran() -> bool:
                runs = await history.recent("noop")
                return any(run.job_id == job_id and run.outcome == "success" for run in runs)

            await eventually(ran, message=worker.output)
            # The worker's log names the server without any secret, and the CLI gets there too.
            started = [line for line in worker.lines() if "starting with" in line["message"]]
            assert started and started[0]["redis"] == tls_redis.url, started
            result = await cli(env, "check", "--json")
            assert result.returncode == 0, result.stderr
    finally:
        await close_client(queue)


async def test_the_wrong_ca_or_no_client_certificate_is_refused(
    tls_redis: TlsRedis, certificates: dict[str, Path], tmp_path: Path
) -> None:
    base = env_without_project_vars()
    base.update(
        {
            "VULTR_SCRAPER__REDIS__URL": tls_redis.url,
            "VULTR_SCRAPER__PATHS__STATE_DIR": str(tmp_path / "state"),
        }
    )
    wrong_ca = await cli({**base, **_tls_env(certificates, ca="other_ca")}, "jobs")
    assert wrong_ca.returncode == 69, wrong_ca.stderr
    (line,) = wrong_ca.stderr.splitlines()
    assert "certificate verify failed" in line.lower(), line

    no_client_cert = await cli(
        {**base, "VULTR_SCRAPER__REDIS__CA_FILE": str(certificates["server_cert"])}, "jobs"
    )
    assert no_client_cert.returncode == 69, no_client_cert.stderr
    assert len(no_client_cert.stderr.splitlines()) == 1, no_client_cert.stderr

    # Plain text to a TLS-only port never gets an answer from Redis.
    plain = await cli(
        {**base, "VULTR_SCRAPER__REDIS__URL": f"redis://127.0.0.1:{tls_redis.port}/0"}, "jobs"
    )
    assert plain.returncode == 69, plain.stderr
