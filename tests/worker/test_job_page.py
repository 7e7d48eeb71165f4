"""``/jobs/{id}``: tries, error and tick; retry for a failed job; abort (with a confirmation)
for a queued one, through arq's abort set."""

from __future__ import annotations

import time

from redis.asyncio import Redis

from tests.worker.api_harness import TOKEN, Api, add_failed_job, running_api
from vultr_scraper_worker.records.runs import JobHistory, RunRecord

TICK_MS = 1764300000000
HOSTILE = "<img src=x onerror=alert(1)>"


async def log_in(api: Api) -> None:
    async with api.request(
        "POST", "/login", data={"token": TOKEN}, headers={"Origin": api.url}
    ) as response:
        assert response.status == 303


async def test_failed_job_with_its_tries(redis_url: str, redis: Redis) -> None:
    job_id = f"scrape-catalog:{TICK_MS}"
    now = time.time()
    runs = [
        RunRecord(
            function="scrape-catalog",
            job_id=job_id,
            job_try=n,
            start=now - 60 + 10 * n,
            end=now - 55 + 10 * n,
            duration=5.0,
            outcome="retry" if n < 2 else "failed",
            error=f"try {n}: {HOSTILE}",
        )
        for n in (1, 2)
    ]
    await JobHistory(redis, "vs").record_many(runs)
    await add_failed_job(redis, job_id, error=HOSTILE, tries=2)
    async with running_api(redis_url) as api:
        _, before = await api.text(f"/jobs/{job_id}")
        await log_in(api)
        _, after = await api.text(f"/jobs/{job_id}")
        await api.text("/jobs/nothing:1", status=404)
    assert "scrape-catalog" in before
    assert "2025-11-28 03:20 UTC" in before  # the schedule tick from the id
    assert "try 1: &lt;img" in before and "try 2: &lt;img" in before and HOSTILE not in before
    assert before.index("try 1:") < before.index("try 2:")
    assert "Log in</a> to retry" in before
    assert f'action="/api/v1/jobs/{job_id}/retry"' in after


async def test_the_functions_recent_durations_are_a_sparkline(redis_url: str, redis: Redis) -> None:
    now = time.time()
    durations = [2.0, 4.0, 3.0, 9.5]  # oldest first; the last is this job's one try
    runs = [
        RunRecord(
            function="scrape-availability",
            job_id=f"scrape-availability:{int((now - 300 * (3 - n)) * 1000)}",
            job_try=1,
            start=now - 300 * (3 - n) - took,
            end=now - 300 * (3 - n),
            duration=took,
            outcome="success",
        )
        for n, took in enumerate(durations)
    ]
    await JobHistory(redis, "vs").record_many(runs)
    async with running_api(redis_url) as api:
        _, body = await api.text(f"/jobs/{runs[-1].job_id}")
        _, lone = await api.text(f"/jobs/{runs[0].job_id}")
    assert "<title>scrape-availability: duration of its last 4 tries</title>" in body
    assert "4 tries from 2.00 to 9.50 s, median 3.50 s, last 9.50 s" in body
    assert "duration of its last 4 tries" in lone  # any run of the function shows the same


async def test_abort_needs_a_confirmation_and_the_token(redis_url: str, redis: Redis) -> None:
    async with running_api(redis_url) as api:
        queued = await api.json(
            "POST", "/api/v1/jobs/scrape-catalog/enqueue", 202,
            headers={"Authorization": f"Bearer {TOKEN}"},
        )  # fmt: skip
        job_id = queued["job_id"]
        _, anonymous = await api.text(f"/jobs/{job_id}?confirm=abort")
        await api.json("POST", f"/api/v1/jobs/{job_id}/abort", 401)
        await log_in(api)
        _, page = await api.text(f"/jobs/{job_id}")
        _, confirm = await api.text(f"/jobs/{job_id}?confirm=abort")
        async with api.request(
            "POST",
            f"/api/v1/jobs/{job_id}/abort",
            data={},
            headers={"Origin": api.url, "Accept": "text/html"},
        ) as response:
            assert response.status == 303
            assert response.headers["Location"] == f"/jobs/{job_id}?aborted=1"
        _, notice = await api.text(f"/jobs/{job_id}?aborted=1")
        await api.json(
            "POST", "/api/v1/jobs/not-queued/abort", 404,
            headers={"Authorization": f"Bearer {TOKEN}"},
        )  # fmt: skip
    assert "/abort" not in anonymous.replace("confirm=abort", "")
    assert f'href="/jobs/{job_id}?confirm=abort"' in page
    assert "Abort this job?" not in page and "Abort this job?" in confirm
    assert f'action="/api/v1/jobs/{job_id}/abort"' in confirm
    assert "Abort requested" in notice
    # arq's abort set holds the request, which a worker acts on at its next poll.
    assert await redis.zscore("arq:abort", job_id) is not None


async def test_passwords_in_stored_errors_are_masked_when_shown(
    redis_url: str, redis: Redis
) -> None:
    """Failed-job and run records stored before errors were masked when written still quote
    a URL with its password: the job page, the status page and the API show it masked."""
    job_id = f"scrape-catalog:{TICK_MS}"
    error = "request to https://alice:hunter2@api.example/v2/plans failed: refused"
    now = time.time()
    run = RunRecord(function="scrape-catalog", job_id=job_id, job_try=1, start=now - 5,
                    end=now, duration=5.0, outcome="failed", error=error)  # fmt: skip
    await JobHistory(redis, "vs").record(run)
    await add_failed_job(redis, job_id, error=error)
    shown = "request to https://alice:***@api.example/v2/plans failed: refused"
    async with running_api(redis_url) as api:
        _, page = await api.text(f"/jobs/{job_id}")
        _, status = await api.text("/")
        document = await api.json("GET", "/api/v1/jobs")
        async with api.request("GET", "/api/v1/jobs") as response:
            raw = await response.text()
    for body in (page, status, raw):
        assert "hunter2" not in body
    assert page.count(shown) == 2  # the failure and its try
    assert shown in status
    (failed,) = document["failed"]["jobs"]
    assert failed["error"] == shown
    assert [run["error"] for run in document["recent"]] == [shown]
