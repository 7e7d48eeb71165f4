"""The worker's stdout is JSON lines, with a start and an end line for every try of every job."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import pytest

from tests.worker.processes import WorkerProcess, eventually, queue_for, worker_env, workers
from vultr_scraper_worker.enqueue import enqueue_job

pytestmark = pytest.mark.slow
END_FIELDS = {"time", "level", "logger", "message", "job_id", "function", "try", "duration"}


async def test_log_stream_is_json_lines_with_start_and_end_for_every_job(
    redis_url: str, tmp_path: Path
) -> None:
    env = worker_env(redis_url, tmp_path / "state")
    jobs: list[tuple[str, list[Any], list[str]]] = [
        ("noop", ["t:noop"], ["success"]),
        ("flaky", ["t:flaky", 1], ["retry", "success"]),
        ("permanent", ["t:permanent"], ["failed"]),
        ("quarantine", ["t:quarantine"], ["quarantined"]),
        ("reports-failure", ["t:reported"], ["failed"]),
        ("slow", ["t:slow", 0.2], ["success"]),
    ]
    async with queue_for(redis_url) as queue:
        with workers(WorkerProcess(env, tmp_path)) as (worker,):
            await worker.wait_ready()
            expected: dict[str, list[str]] = {}
            for name, args, outcomes in jobs:
                job_id = await enqueue_job(queue, name, *args)
                assert job_id is not None
                expected[job_id] = outcomes

            async def all_ended() -> bool:
                ended = {line["job_id"] for line in worker.events("job.end")}
                return (
                    all(
                        len(worker.events("job.end", job_id=job_id)) == len(outcomes)
                        for job_id, outcomes in expected.items()
                        if job_id in ended
                    )
                    and set(expected) <= ended
                )

            await eventually(all_ended, message=worker.output)
            worker.send(signal.SIGTERM)
            assert await worker.wait_exit() == 0

    lines = worker.lines()  # every line parses as one JSON object
    assert len(lines) == len(worker.raw_lines())
    assert all({"time", "level", "logger", "message"} <= set(line) for line in lines)
    for job_id, outcomes in expected.items():
        starts = worker.events("job.start", job_id=job_id)
        ends = worker.events("job.end", job_id=job_id)
        assert [line["try"] for line in starts] == list(range(1, len(outcomes) + 1))
        assert [line["try"] for line in ends] == list(range(1, len(outcomes) + 1))
        assert [line["outcome"] for line in ends] == outcomes
        for end in ends:
            assert END_FIELDS <= set(end), end
            assert end["duration"] >= 0
            if end["outcome"] in {"failed", "retry"}:
                assert end["error"], end
    # A failed job is logged once at ERROR, by the wrapper: not again by arq, with a traceback.
    for job_id, outcomes in expected.items():
        if outcomes[-1] != "failed":
            continue
        errors = [
            line
            for line in lines
            if line["level"] == "ERROR"
            and (line.get("job_id") == job_id or job_id in line["message"])
        ]
        assert len(errors) == 1, errors
        assert errors[0]["logger"] == "vultr_scraper_worker.wrapper"
        assert "traceback" not in errors[0]
    (starting,) = [line for line in lines if " starting with " in line["message"]]
    assert starting["config"].startswith("defaults + environment (")
    assert "VULTR_SCRAPER__REDIS__URL" in starting["config"]
    # arq's own failure line for these jobs is gone (the wrapper said it), not merely elsewhere.
    assert not [
        line for line in lines if line["logger"] == "arq.worker" and " failed, " in line["message"]
    ]
