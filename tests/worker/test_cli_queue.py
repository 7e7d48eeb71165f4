"""``vultr-scraper enqueue``, ``jobs``, ``retry``, ``check`` and ``run`` against a real Redis."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis as sync_redis

from tests.worker.cli_harness import cli_env, invoke
from vultr_scraper_core.config import load_config
from vultr_scraper_worker.enqueue import close_client, queue_client
from vultr_scraper_worker.plans import load_job_set
from vultr_scraper_worker.records.failed import FailedJob, FailedJobs
from vultr_scraper_worker.serialization import deserialize
from vultr_scraper_worker.worker_main import build_worker

QUIET = "tests.worker.sample_quiet"


@pytest.fixture
def env(redis_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    return cli_env(redis_url, tmp_path, monkeypatch) | {
        "VULTR_SCRAPER__WORKER__RETRY_BACKOFF_BASE": "0.02",
        "VULTR_SCRAPER__WORKER__RETRY_BACKOFF_CAP": "0.05",
    }


@pytest.fixture
def db(redis_url: str) -> Iterator[sync_redis.Redis]:
    client = sync_redis.Redis.from_url(redis_url)
    yield client
    client.close()


def test_enqueue_puts_a_msgpack_job_on_the_queue(env: dict[str, str], db: sync_redis.Redis) -> None:
    result = invoke(env, "enqueue", "flaky", "t:key", "2", "--jobs-module", QUIET)
    assert result.exit_code == 0, result.output
    job_id = result.stdout.strip()
    raw = db.get(f"arq:job:{job_id}")
    assert isinstance(raw, bytes)
    job = deserialize(raw)
    assert (job["f"], job["a"]) == ("flaky", ["t:key", 2])
    assert db.zscore("arq:queue", job_id) is not None


def test_enqueue_with_an_id_twice_and_json(env: dict[str, str]) -> None:
    first = invoke(env, "enqueue", "noop", "--job-id", "fixed", "--json", "--jobs-module", QUIET)
    assert first.exit_code == 0, first.output
    assert json.loads(first.stdout) == {"job": "noop", "job_id": "fixed", "enqueued": True}
    second = invoke(env, "enqueue", "noop", "--job-id", "fixed", "--jobs-module", QUIET)
    assert second.exit_code == 1
    assert "already queued" in second.stderr


def test_enqueue_unknown_job_is_a_usage_error(env: dict[str, str]) -> None:
    result = invoke(env, "enqueue", "no-such-job", "--jobs-module", QUIET)
    assert result.exit_code == 2
    assert "unknown job 'no-such-job'" in result.stderr


def _add_failure(redis_url: str, record: FailedJob) -> None:
    async def add() -> None:
        client = queue_client(redis_url, queue_name="arq:queue")
        try:
            await FailedJobs(client, "vs").add(record)
        finally:
            await close_client(client)

    asyncio.run(add())


def _failure(job_id: str, **fields: Any) -> FailedJob:
    values: dict[str, Any] = {
        "id": job_id,
        "function": "noop",
        "args": ["t:retried"],
        "error": "HTTP 502 from http://x/: Bad Gateway",
        "error_type": "TransientHttpError",
        "tries": 3,
        "failed_at": time.time(),
    }
    values.update(fields)
    return FailedJob(**values)


def test_jobs_lists_queued_failed_recent_and_schedules(env: dict[str, str], redis_url: str) -> None:
    assert invoke(env, "enqueue", "noop", "--job-id", "q1", "--jobs-module", QUIET).exit_code == 0
    assert invoke(env, "enqueue", "slow", "x", "1", "--defer", "600", "--jobs-module", QUIET)
    _add_failure(redis_url, _failure("f1"))
    run = invoke(env, "run", "noop", "t:ran", "--jobs-module", QUIET)
    assert run.exit_code == 0, run.output

    result = invoke(env, "jobs", "--json", "--jobs-module", QUIET)
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["queue_total"] == 2
    states = {job["function"]: job["state"] for job in document["queued"]}
    assert states == {"noop": "queued", "slow": "deferred"}
    assert document["running"] == []
    assert [record["id"] for record in document["failed"]] == ["f1"]
    assert document["failed"][0]["error"].startswith("HTTP 502")
    assert [run["function"] for run in document["recent"]] == ["noop"]
    assert document["recent"][0]["job_id"].startswith("cli-")
    noop = next(item for item in document["schedules"] if item["name"] == "noop")
    assert noop["last_run"]["outcome"] == "success" and noop["last_success"]
    tick = next(item for item in document["schedules"] if item["name"] == "tick")
    assert tick["schedule"] == "off" and tick["next_run"] is None

    table = invoke(env, "jobs", "--jobs-module", QUIET)
    assert table.exit_code == 0, table.output
    for heading in ("Running", "Queued", "Failed (1 recorded", "Recent runs", "Jobs"):
        assert heading in table.stdout
    assert "TransientHttpError: HTTP 502" in table.stdout
    assert "on demand" in table.stdout  # settings.describe_schedule, as on the status page


def test_retry_reenqueues_a_failed_job(
    env: dict[str, str], redis_url: str, db: sync_redis.Redis
) -> None:
    _add_failure(redis_url, _failure("f2", args=["t:again", 1]))
    result = invoke(env, "retry", "f2", "--json")
    assert result.exit_code == 0, result.output
    new_id = json.loads(result.stdout)["job_id"]
    raw = db.get(f"arq:job:{new_id}")
    assert isinstance(raw, bytes)
    assert deserialize(raw)["a"] == ["t:again", 1]

    missing = invoke(env, "retry", "nope")
    assert missing.exit_code == 1
    assert "no failed job with id 'nope'" in missing.stderr

    again = invoke(env, "retry", "f2")
    assert again.exit_code == 1
    assert f"job f2 was already retried as {new_id}" in again.stderr
    assert db.zcard("arq:queue") == 1


def _beat(redis_url: str, env: dict[str, str], *, age: float = 0.0) -> None:
    """A heartbeat written by the worker's own code (optionally made ``age`` seconds old)."""

    async def beat() -> None:
        loaded = load_config(None, environ=env)
        client = queue_client(redis_url, queue_name="arq:queue")
        try:
            worker, _ = build_worker(
                loaded,
                client,
                jobs=load_job_set(QUIET),
                handle_signals=False,
                worker_id="host:1:abc",
            )
            await worker.beat()
            if age:
                score = await client.zscore("vs:workers", "host:1:abc")
                assert score is not None
                await client.zadd("vs:workers", {"host:1:abc": score - age})
        finally:
            await close_client(client)

    asyncio.run(beat())


def test_check_needs_a_fresh_heartbeat(env: dict[str, str], redis_url: str) -> None:
    none = invoke(env, "check")
    assert none.exit_code == 69
    assert "no worker heartbeat recorded" in none.stderr

    _beat(redis_url, env)
    fresh = invoke(env, "check")
    assert fresh.exit_code == 0, fresh.output
    assert fresh.stdout.startswith("OK: worker host:1:abc heartbeat")
    document = json.loads(invoke(env, "check", "--json").stdout)
    assert document["ok"] is True
    assert document["workers"][0]["id"] == "host:1:abc" and document["workers"][0]["fresh"]

    _beat(redis_url, env, age=500)
    stale = invoke(env, "check", "--json")
    assert stale.exit_code == 69
    assert json.loads(stale.stdout)["ok"] is False
    assert "no fresh worker heartbeat: newest is 500 s old (limit 65 s)" in stale.stderr
    assert invoke(env, "check", "--max-age", "1000").exit_code == 0


def test_check_without_redis_or_embedded_server(env: dict[str, str]) -> None:
    down = invoke({**env, "VULTR_SCRAPER__REDIS__URL": "redis://127.0.0.1:9/0"}, "check")
    assert down.exit_code == 69
    assert "Redis unreachable" in down.stderr
    embedded = invoke({**env, "VULTR_SCRAPER__REDIS__URL": ""}, "check")
    assert embedded.exit_code == 69
    assert "embedded Redis" in embedded.stderr and "is down" in embedded.stderr


@pytest.mark.usefixtures("restore_logging")
def test_run_goes_through_the_wrapper_with_in_process_retries(env: dict[str, str]) -> None:
    result = invoke(env, "run", "flaky", "t:run", "2", "--jobs-module", QUIET)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"status": "success", "tries": 3}
    ends = [json.loads(line) for line in result.stderr.splitlines() if '"job.end"' in line]
    assert [(end["try"], end["outcome"]) for end in ends] == [
        (1, "retry"),
        (2, "retry"),
        (3, "success"),
    ]


@pytest.mark.usefixtures("restore_logging")
@pytest.mark.parametrize(
    ("job", "status", "message"),
    [
        ("quarantine", 3, ""),
        ("reports-failure", 1, ""),
        ("permanent", 1, "permanent failed: HTTP 404"),
        ("always-transient", 1, "always-transient failed: HTTP 502"),
    ],
)
def test_run_exit_status(env: dict[str, str], job: str, status: int, message: str) -> None:
    result = invoke(env, "run", job, "t:exit", "--jobs-module", QUIET)
    assert result.exit_code == status, result.output
    assert message in result.stderr


def test_run_unknown_job(env: dict[str, str]) -> None:
    result = invoke(env, "run", "nope", "--jobs-module", QUIET)
    assert result.exit_code == 2
    assert "unknown job 'nope'" in result.stderr
