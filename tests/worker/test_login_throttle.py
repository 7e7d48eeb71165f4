"""Failed logins against the real HTTP server on loopback: logged with the client's address
(never the token sent), and throttled per address with 429 and Retry-After; other addresses and
well-behaved clients are never throttled."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from tests.worker.api_harness import TOKEN, running_api
from vultr_scraper_worker.api.throttle import WINDOW, LoginThrottle

LIMIT = 5
WRONG = "wrong-token-7f3a9c"


async def test_wrong_tokens_are_logged_then_refused_with_429_per_address(
    redis_url: str, log_records: list[dict[str, Any]]
) -> None:
    async with running_api(redis_url, max_failed_logins=LIMIT) as api:
        origin = {"Origin": api.url}
        for _ in range(LIMIT - 1):  # through the login form
            async with api.request("POST", "/login", data={"token": WRONG}, headers=origin) as r:
                assert r.status == 401
        bearer = {"Authorization": f"Bearer {WRONG}"}
        async with api.request("POST", "/api/v1/jobs/scrape-catalog/enqueue", headers=bearer) as r:
            assert r.status == 401  # the last failure allowed
        # Now every token from this address is refused, the right one too (or a right guess
        # would still stand out), with how long to wait.
        good = {"Authorization": f"Bearer {TOKEN}"}
        async with api.request("POST", "/api/v1/jobs/scrape-catalog/enqueue", headers=good) as r:
            assert r.status == 429
            assert r.content_type == "application/problem+json"
            retry_after = int(r.headers["Retry-After"])
            assert 0 < retry_after <= WINDOW
            assert "too many failed logins" in (await r.json())["detail"]
        async with api.request("POST", "/login", data={"token": TOKEN}, headers=origin) as r:
            assert r.status == 429 and "Retry-After" in r.headers
            assert "Set-Cookie" not in r.headers
        # Reads that need no token are not affected.
        async with api.request("GET", "/api/v1/plans") as r:
            assert r.status == 200

        # Another address (127.0.0.2 reaches the loopback server too) is not throttled.
        connector = aiohttp.TCPConnector(local_addr=("127.0.0.2", 0))
        async with aiohttp.ClientSession(connector=connector) as other:
            url = f"{api.url}/api/v1/jobs/scrape-catalog/enqueue"
            async with other.post(url, headers=good) as r:
                assert r.status == 202, await r.text()

    failed = [record for record in log_records if record.get("event") == "http.login_failed"]
    assert len(failed) == LIMIT  # one line per failure; the refused requests add none
    assert {record["client"] for record in failed} == {"127.0.0.1"}
    assert {record["path"] for record in failed} == {
        "/login",
        "/api/v1/jobs/scrape-catalog/enqueue",
    }
    assert [record["failures"] for record in failed] == list(range(1, LIMIT + 1))
    assert "failed login from 127.0.0.1" in failed[0]["message"]
    assert "refused for" in failed[-1]["message"] and failed[-1]["throttled"] is True
    assert WRONG not in repr(log_records) and TOKEN not in repr(log_records)


async def test_a_well_behaved_client_is_never_throttled(redis_url: str) -> None:
    """A few typos, then the right token: logged in, and the count starts again."""
    async with running_api(redis_url, max_failed_logins=LIMIT, protect_reads=True) as api:
        origin = {"Origin": api.url}
        for _round in range(3):
            for _ in range(LIMIT - 1):
                async with api.request(
                    "POST", "/login", data={"token": WRONG}, headers=origin
                ) as r:
                    assert r.status == 401
            async with api.request("POST", "/login", data={"token": TOKEN}, headers=origin) as r:
                assert r.status == 303
        good = {"Authorization": f"Bearer {TOKEN}"}
        for _ in range(50):  # many requests with the right token: never a failure
            async with api.request("GET", "/api/v1/jobs", headers=good) as r:
                assert r.status == 200


def test_the_throttle_lifts_a_minute_after_the_failures() -> None:
    now = [1000.0]
    throttle = LoginThrottle(3, clock=lambda: now[0])
    for _step in range(3):
        assert throttle.retry_after("a") is None
        throttle.failed("a", "/login")
        now[0] += 10
    assert throttle.retry_after("a") == pytest.approx(WINDOW - 30)
    assert throttle.retry_after("b") is None
    now[0] += WINDOW - 30
    assert throttle.retry_after("a") is None  # the oldest failure aged out
    throttle.failed("a", "/login")
    assert throttle.retry_after("a") == pytest.approx(10)  # the next-oldest is 50 s old
    assert LoginThrottle(0).retry_after("a") is None
