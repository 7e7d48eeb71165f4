"""Real worker processes for tests: ``python -m vultr_scraper_worker worker`` on a private Redis.

Each ``WorkerProcess`` writes its stdout (the JSON log stream) and stderr to files in the
test's temp dir, so a test can read every line the worker wrote, even after killing it.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

from arq.connections import ArqRedis

from tests.redis_server import env_without_project_vars
from vultr_scraper_worker.enqueue import close_client, queue_client

ROOT = Path(__file__).resolve().parents[2]
QUIET_JOBS = "tests.worker.sample_quiet"
SCHEDULED_JOBS = "tests.worker.sample_jobs"
# Generous bounds for "this should have happened by now"; they only fail a broken test, they
# never decide how fast something must be.
WAIT = 30.0


def worker_env(redis_url: str, state_dir: Path, **overrides: str) -> dict[str, str]:
    """A clean environment configuring a fast-polling worker on the test's Redis."""
    env = env_without_project_vars()
    env.update(
        {
            "VULTR_SCRAPER__REDIS__URL": redis_url,
            "VULTR_SCRAPER__PATHS__STATE_DIR": str(state_dir),
            "VULTR_SCRAPER__HTTP__LISTEN": "",
            "VULTR_SCRAPER__WORKER__POLL_DELAY": "0.05",
            "VULTR_SCRAPER__WORKER__HEALTH_CHECK_INTERVAL": "1",
            "VULTR_SCRAPER__WORKER__RETRY_BACKOFF_BASE": "0.4",
            "VULTR_SCRAPER__WORKER__RETRY_BACKOFF_CAP": "4",
            "VULTR_SCRAPER__WORKER__JOB_COMPLETION_WAIT": "1",
            "VULTR_SCRAPER__WORKER__REDIS_OUTAGE_BUDGET": "15",
            "VULTR_SCRAPER__LOG__LEVEL": "INFO",
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(overrides)
    return env


class WorkerProcess:
    def __init__(
        self,
        env: Mapping[str, str],
        directory: Path,
        *,
        name: str = "worker",
        jobs_module: str | None = QUIET_JOBS,
        args: tuple[str, ...] = (),
    ) -> None:
        self.env = dict(env)
        self.name = name
        self.stdout_path = directory / f"{name}.stdout"
        self.stderr_path = directory / f"{name}.stderr"
        self.jobs_module = jobs_module
        self.args = args
        self.process: subprocess.Popen[bytes] | None = None
        self.started_at = 0.0

    def start(self) -> WorkerProcess:
        command = [sys.executable, "-m", "vultr_scraper_worker", "worker", *self.args]
        if self.jobs_module:
            command += ["--jobs-module", self.jobs_module]
        with self.stdout_path.open("ab") as stdout, self.stderr_path.open("ab") as stderr:
            self.process = subprocess.Popen(
                command, cwd=ROOT, env=self.env, stdout=stdout, stderr=stderr
            )
        self.started_at = time.monotonic()
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def send(self, signum: signal.Signals) -> None:
        assert self.process is not None
        self.process.send_signal(signum)

    def kill(self) -> None:
        if self.running():
            assert self.process is not None
            self.process.kill()
            self.process.wait(timeout=10)

    async def wait_exit(self, timeout: float = WAIT) -> int:
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while self.process.poll() is None:
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.name} did not exit in {timeout} s\n{self.output()}")
            await asyncio.sleep(0.05)
        return int(self.process.returncode)

    def stop(self) -> None:
        """Cleanup: SIGTERM, then SIGKILL if it lingers."""
        if not self.running():
            return
        assert self.process is not None
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)

    def raw_lines(self) -> list[str]:
        if not self.stdout_path.exists():
            return []
        return self.stdout_path.read_text(errors="replace").splitlines()

    def lines(self) -> list[dict[str, Any]]:
        """Every complete stdout line as JSON (raises on a line that is not JSON)."""
        parsed: list[dict[str, Any]] = []
        for line in self.raw_lines():
            document = json.loads(line)
            assert isinstance(document, dict), line
            parsed.append(document)
        return parsed

    def events(self, event: str, **fields: Any) -> list[dict[str, Any]]:
        return [
            line
            for line in self.lines()
            if line.get("event") == event
            and all(line.get(key) == value for key, value in fields.items())
        ]

    def output(self) -> str:
        stderr = self.stderr_path.read_text(errors="replace") if self.stderr_path.exists() else ""
        tail = "\n".join(self.raw_lines()[-40:])
        return f"--- {self.name} stdout (tail) ---\n{tail}\n--- stderr ---\n{stderr[-3000:]}"

    async def wait_ready(self, timeout: float = WAIT) -> None:
        """Until the worker logs that it polls the queue, or fail with the output."""
        await eventually(
            lambda: _ready(self), timeout=timeout, message=lambda: f"{self.name} not ready"
        )


async def _ready(worker: WorkerProcess) -> bool:
    if not worker.running():
        raise AssertionError(f"{worker.name} exited early\n{worker.output()}")
    return any('"worker.ready"' in line for line in worker.raw_lines())


async def eventually(
    check: Callable[[], Awaitable[bool]],
    *,
    timeout: float = WAIT,
    interval: float = 0.05,
    message: Callable[[], str] | str = "condition not met",
) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if await check():
            return
        if time.monotonic() > deadline:
            text = message() if callable(message) else message
            raise AssertionError(f"{text} (waited {timeout} s)")
        await asyncio.sleep(interval)


@contextmanager
def workers(*processes: WorkerProcess) -> Iterator[tuple[WorkerProcess, ...]]:
    """Start the processes; always stop them (and show their output if the test failed)."""
    try:
        for process in processes:
            process.start()
        yield processes
    finally:
        for process in processes:
            process.stop()


def tries(entries: list[bytes]) -> list[tuple[str, int, float]]:
    """Decode the ``key:tries`` list written by the sample jobs: (job id, try, time)."""
    decoded: list[tuple[str, int, float]] = []
    for entry in entries:
        job_id, job_try, at = entry.decode().split(" ")
        decoded.append((job_id, int(job_try), float(at)))
    return decoded


@asynccontextmanager
async def queue_for(redis_url: str, queue_name: str = "arq:queue") -> AsyncIterator[ArqRedis]:
    """The producer side, as ``vultr-scraper enqueue`` builds it (msgpack serialiser)."""
    client = queue_client(redis_url, queue_name=queue_name, outage_budget=5)
    try:
        yield client
    finally:
        await close_client(client)


async def cli(env: Mapping[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """``python -m vultr_scraper_worker ARGS`` in another process, without blocking the loop."""
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "vultr_scraper_worker", *args],
        cwd=ROOT,
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=WAIT,
        check=False,
    )
