"""The one HTTP policy: sessions, pacing, error classification, backoff and retries.

Unit tests use aioresponses; the rest run against FakeVultrAPI, a real loopback server, one test
per fault kind. Retries never really wait: the client gets a recording ``sleep``. Timing is only
asserted as lower bounds that sleeping guarantees, or through an injected clock.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import redis.exceptions
from aioresponses import aioresponses
from loguru import logger

from tests.fakes.vultr_api import HTML_504, FakeVultrAPI, on_page
from vultr_scraper_core import __version__
from vultr_scraper_core.config import ClientConfig
from vultr_scraper_core.http import (
    TRANSIENT_STATUSES,
    USER_AGENT,
    Backoff,
    HttpClient,
    HttpError,
    PermanentHttpError,
    RateLimiter,
    Response,
    TransientHttpError,
    UnreachableHttpError,
    connection_error_reason,
    create_session,
    describe_error_body,
    is_transient,
    parse_retry_after,
    retry_after_of,
)

# aiohttp 3.10 started resending idempotent requests once when the server drops the connection.
RESENDS = tuple(int(part) for part in aiohttp.__version__.split(".")[:2]) >= (3, 10)
MAINTENANCE = "We are currently conducting some software upgrades. Check back in a few minutes!"
MOCK_BASE = "http://vultr.test/v2"
INVALID_PLAN = b'{"error":"Invalid plan chosen.","status":400}'


class Sleeps:
    """A ``sleep`` that records the delay instead of waiting."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


class FakeClock:
    """A monotonic clock that only moves when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.starts: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, delay: float) -> None:
        assert delay > 0
        self.now += delay


@asynccontextmanager
async def make_client(
    limiter: RateLimiter | None = None, **settings: Any
) -> AsyncIterator[tuple[HttpClient, Sleeps]]:
    config = ClientConfig(**{"rate_limit": 0, **settings})
    sleeps = Sleeps()
    async with create_session(config) as session:
        yield HttpClient(session, config, limiter=limiter, sleep=sleeps), sleeps


@pytest.fixture
async def api() -> AsyncIterator[FakeVultrAPI]:
    async with FakeVultrAPI(default_per_page=2) as fake:
        yield fake


# -- classification ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "error",
    [
        TransientHttpError("busy", url="u", status=503),
        aiohttp.ClientConnectionError("refused"),
        aiohttp.ServerDisconnectedError(),
        aiohttp.ClientPayloadError("cut"),
        TimeoutError(),
        redis.exceptions.ConnectionError("Connection closed by server."),
        redis.exceptions.TimeoutError("Timeout reading from socket"),
        redis.exceptions.WatchError(
            "A ConnectionError occurred on while watching one or more keys"
        ),
    ],
    ids=repr,
)
def test_transient_errors(error: BaseException) -> None:
    assert is_transient(error)


@pytest.mark.parametrize(
    "error",
    [
        PermanentHttpError("nope", url="u", status=400),
        HttpError("generic", url="u"),
        ValueError("bad data"),
        KeyError("id"),
        aiohttp.InvalidURL("not a url"),
        redis.exceptions.ResponseError("WRONGTYPE Operation against a key"),
        redis.exceptions.AuthenticationError("invalid username-password pair"),
        redis.exceptions.AuthorizationError("NOPERM this user has no permissions"),
    ],
    ids=repr,
)
def test_permanent_errors(error: BaseException) -> None:
    assert not is_transient(error)


def test_transient_statuses_are_exactly_the_documented_ones() -> None:
    assert frozenset({429, 500, 502, 503, 504}) == TRANSIENT_STATUSES


def test_http_error_message_names_status_url_and_reason() -> None:
    error = TransientHttpError("Busy.", url="https://x/v2/plans", status=503, retry_after=2.0)
    assert str(error) == "HTTP 503 from https://x/v2/plans: Busy."
    assert retry_after_of(error) == 2.0
    assert retry_after_of(ValueError()) is None
    no_status = TransientHttpError("timed out", url="https://x")
    assert str(no_status) == "request to https://x failed: timed out"


async def test_a_url_password_never_reaches_the_error_or_the_retry_line(
    api: FakeVultrAPI,
) -> None:
    """The error is logged, stored with the failed job and shown on pages and the CLI."""
    url = api.base_url.replace("http://", "http://alice:s3cret@") + "/regions"
    api.fail("/v2/regions", 503, times=None)
    log_records: list[dict[str, Any]] = []
    handler = logger.add(
        lambda message: log_records.append(
            {"message": message.record["message"], **message.record["extra"]}
        )
    )
    try:
        async with make_client(max_attempts=2) as (client, sleeps):
            with pytest.raises(TransientHttpError) as caught:
                await client.get_json(url)
    finally:
        logger.remove(handler)
    assert len(sleeps.delays) == 1  # one retry, logged
    shown = api.base_url.replace("http://", "http://alice:***@") + "/regions"
    # The response's URL, which aiohttp gives without the userinfo (it sent it as a header).
    assert str(caught.value).startswith(f"HTTP 503 from {api.base_url}/regions: ")
    assert "s3cret" not in str(caught.value)
    assert mask_urls_of_error(url) == f"request to {shown} failed: refused"
    (retry,) = [record for record in log_records if "retrying" in record["message"]]
    assert retry["url"] == shown and shown in retry["message"]
    assert "s3cret" not in repr(log_records)


def mask_urls_of_error(url: str) -> str:
    return str(UnreachableHttpError("refused", url=url))


# -- Retry-After ------------------------------------------------------------------------------

NOW = datetime(2026, 3, 4, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("120", 120.0),
        (" 7 ", 7.0),
        ("0", 0.0),
        ("1.5", 1.5),
        ("Wed, 04 Mar 2026 12:00:30 GMT", 30.0),
        ("Wed, 04 Mar 2026 13:00:00 +0000", 3600.0),
        ("Wed, 04 Mar 2026 12:00:10 -0000", 10.0),  # "-0000": no zone given, read as UTC
        ("Wed, 04 Mar 2026 11:00:00 GMT", 0.0),  # in the past: retry now
        (None, None),
        ("", None),
        ("soon", None),
        ("-5", None),
        ("²", None),  # str.isdigit() says yes, float() says no
        ("Wed, 99 Foo 2026 12:00:00 GMT", None),
    ],
)
def test_parse_retry_after(header: str | None, expected: float | None) -> None:
    assert parse_retry_after(header, now=NOW) == expected


def test_parse_retry_after_date_uses_the_current_time_by_default() -> None:
    header = format_datetime(datetime.now(UTC) + timedelta(seconds=100), usegmt=True)
    seconds = parse_retry_after(header)
    assert seconds is not None
    assert 95 <= seconds <= 100  # whole-second dates: up to 1 s lost, plus generous slack


# -- backoff ----------------------------------------------------------------------------------


def test_backoff_grows_exponentially_up_to_the_cap() -> None:
    backoff = Backoff(base=0.5, cap=4.0)
    assert [backoff.ceiling(attempt) for attempt in range(1, 7)] == [0.5, 1, 2, 4, 4, 4]
    assert backoff.ceiling(10_000) == 4.0  # no float overflow for absurd attempt numbers


def test_backoff_jitter_stays_between_half_and_full_ceiling() -> None:
    backoff = Backoff(base=1.0, cap=30.0)
    for attempt in range(1, 8):
        ceiling = backoff.ceiling(attempt)
        assert backoff.delay(attempt, rand=lambda: 0.0) == ceiling / 2
        assert backoff.delay(attempt, rand=lambda: 1.0) == ceiling
        assert ceiling / 2 <= backoff.delay(attempt) <= ceiling


def test_backoff_honours_retry_after_up_to_its_cap() -> None:
    backoff = Backoff(base=0.5, cap=30.0, retry_after_cap=60.0)
    assert backoff.delay(1, retry_after=7.0, rand=lambda: 1.0) == 7.0
    # Retry-After never shortens the backoff, and is capped.
    assert backoff.delay(6, retry_after=1.0, rand=lambda: 1.0) == 16.0
    assert backoff.delay(1, retry_after=3600.0, rand=lambda: 0.0) == 60.0


def test_backoff_from_config() -> None:
    config = ClientConfig(backoff_base=2.0, backoff_cap=9.0, max_attempts=7, retry_after_cap=5)
    assert Backoff.from_config(config) == Backoff(
        base=2.0, cap=9.0, max_attempts=7, retry_after_cap=5.0
    )


# -- rate limiter -----------------------------------------------------------------------------


async def test_rate_limiter_spaces_starts_by_the_interval() -> None:
    clock = FakeClock()
    limiter = RateLimiter(4.0, clock=clock, sleep=clock.sleep)
    for _ in range(5):
        await limiter.acquire()
        clock.starts.append(clock.now)
    assert clock.starts == pytest.approx([0.0, 0.25, 0.5, 0.75, 1.0])


async def test_rate_limiter_does_not_save_up_a_burst_while_idle() -> None:
    clock = FakeClock()
    limiter = RateLimiter(2.0, clock=clock, sleep=clock.sleep)
    await limiter.acquire()
    clock.now = 100.0  # a long idle spell
    for _ in range(3):
        await limiter.acquire()
        clock.starts.append(clock.now)
    assert clock.starts == pytest.approx([100.0, 100.5, 101.0])


async def test_rate_limiter_gives_concurrent_callers_distinct_slots() -> None:
    clock = FakeClock()
    waits: list[float] = []

    async def record(delay: float) -> None:
        waits.append(delay)

    limiter = RateLimiter(10.0, clock=clock, sleep=record)
    await asyncio.gather(*(limiter.acquire() for _ in range(4)))
    assert sorted(waits) == pytest.approx([0.1, 0.2, 0.3])


async def test_rate_limiter_zero_means_no_pacing() -> None:
    clock = FakeClock()
    limiter = RateLimiter(0, clock=clock, sleep=clock.sleep)
    for _ in range(10):
        await limiter.acquire()
    assert clock.now == 0.0


async def test_rate_limiter_really_sleeps() -> None:
    # Real clock, lower bound only: sleeping guarantees it, however loaded the machine is.
    limiter = RateLimiter(50.0)
    loop = asyncio.get_running_loop()
    started = loop.time()
    for _ in range(6):
        await limiter.acquire()
    assert loop.time() - started >= 5 * 0.02 * 0.95


# -- sessions ---------------------------------------------------------------------------------


async def test_session_has_timeouts_limit_and_user_agent() -> None:
    config = ClientConfig(timeout=12.0, connect_timeout=3.0, connection_limit=7)
    async with create_session(config, headers={"X-Extra": "1"}) as session:
        assert session.timeout.total == 12.0
        assert session.timeout.connect == 3.0
        assert isinstance(session.connector, aiohttp.TCPConnector)
        assert session.connector.limit == 7
        assert session.headers["User-Agent"] == USER_AGENT
        assert session.headers["X-Extra"] == "1"
    assert USER_AGENT == f"vultr-scraper/{__version__}"
    assert re.fullmatch(r"vultr-scraper/\d+\.\d+\.\d+\S*", USER_AGENT)


async def test_session_limit_and_keep_alive_can_be_overridden() -> None:
    config = ClientConfig(connection_limit=7)
    async with create_session(config, connection_limit=3, force_close=True) as session:
        assert isinstance(session.connector, aiohttp.TCPConnector)
        assert session.connector.limit == 3
        assert session.connector.force_close
        assert session.headers["User-Agent"] == USER_AGENT
    async with create_session(config) as session:
        assert isinstance(session.connector, aiohttp.TCPConnector)
        assert not session.connector.force_close


# -- error bodies -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "content_type", "expected"),
    [
        (INVALID_PLAN, "application/json", "Invalid plan chosen."),
        (INVALID_PLAN, "Application/JSON; charset=utf-8", "Invalid plan chosen."),
        (b'{"error":"Invalid region.","status":400}', "text/html", "Invalid region."),
        (b'{"message":"Slow down"}', "application/json", "Slow down"),
        (b'{"error":"Busy.","status":500', "application/json", '{"error":"Busy.","status":500'),
        (HTML_504, "text/html", MAINTENANCE),
        (MAINTENANCE.replace(". ", ".  ").encode(), "text/html", MAINTENANCE),
        (
            b"<html><head><title>504 Gateway Time-out</title><style>h1{color:red}</style></head>"
            b"<body><center><h1>504 Gateway Time-out</h1></center><hr><center>nginx</center>"
            b"<script>var x = 1;</script></body></html>",
            "text/html",
            "504 Gateway Time-out nginx",
        ),
        (b"<p>Tom &amp; Jerry&#39;s</p>", "text/html", "Tom & Jerry's"),
        (b"", "text/html", "(empty body)"),
        (b"   \n ", "text/plain", "(empty body)"),
        (b"\xff\xfe broken", "text/plain", "\ufffd\ufffd broken"),
    ],
)  # fmt: skip
def test_describe_error_body(body: bytes, content_type: str, expected: str) -> None:
    assert describe_error_body(body, content_type) == expected


def test_describe_error_body_is_short_and_one_line() -> None:
    reason = describe_error_body(b"<pre>" + b"line\n" * 500 + b"</pre>", "text/html")
    assert len(reason) == 200
    assert reason.endswith("…")
    assert "\n" not in reason


def test_response_json_errors_are_readable() -> None:
    def response(body: bytes, content_type: str) -> Response:
        headers = {"content-type": content_type}
        return Response(url="http://x", status=200, headers=headers, body=body, elapsed=0.1)

    assert response(b'{"a": [1, 2]}', "application/json").json() == {"a": [1, 2]}
    with pytest.raises(TransientHttpError, match=r"not valid JSON \(truncated\?\)"):
        response(b'{"plans": [{"id": "vc2', "application/json").json()
    with pytest.raises(TransientHttpError, match=f"expected JSON, got text/html: {MAINTENANCE}"):
        response(HTML_504, "text/html").json()
    assert response(b"", "x/y").header("CONTENT-TYPE") == "x/y"
    assert response(b"", "x/y").header("Retry-After") is None


# -- HttpClient with aioresponses --------------------------------------------------------------

PLANS = re.compile(r"^http://vultr\.test/v2/plans(\?.*)?$")


async def test_get_json_returns_document_and_response() -> None:
    with aioresponses() as mocked:
        mocked.get(PLANS, payload={"plans": [], "meta": {"total": 0}})
        async with make_client() as (client, sleeps):
            document, response = await client.get_json(
                f"{MOCK_BASE}/plans", params={"per_page": 500}
            )
    assert document == {"plans": [], "meta": {"total": 0}}
    assert response.status == 200
    assert response.url == f"{MOCK_BASE}/plans?per_page=500"
    assert response.elapsed >= 0
    assert sleeps.delays == []


async def test_lower_case_retry_after_and_content_type_are_honoured() -> None:
    # HTTP/2 servers (Vultr's nginx) send header names in lower case.
    with aioresponses() as mocked:
        mocked.get(
            PLANS,
            status=429,
            body=b'{"error":"Rate limit reached.","status":429}',
            headers={"retry-after": "7", "content-type": "application/json"},
        )
        mocked.get(PLANS, payload={"plans": []})
        async with make_client(backoff_base=0.01) as (client, sleeps):
            document, _ = await client.get_json(f"{MOCK_BASE}/plans")
    assert document == {"plans": []}
    assert sleeps.delays == [7.0]


async def test_permanent_status_is_not_retried() -> None:
    with aioresponses() as mocked:
        mocked.get(
            PLANS,
            status=400,
            body=b'{"error":"Invalid plan chosen.","status":400}',
            headers={"content-type": "application/json"},
            repeat=True,
        )
        async with make_client() as (client, sleeps):
            with pytest.raises(PermanentHttpError) as caught:
                await client.get_json(f"{MOCK_BASE}/plans")
        calls = sum(len(requests) for requests in mocked.requests.values())
    assert caught.value.status == 400
    assert caught.value.reason == "Invalid plan chosen."
    assert calls == 1
    assert sleeps.delays == []


async def test_transient_status_is_retried_until_attempts_run_out() -> None:
    with aioresponses() as mocked:
        mocked.get(PLANS, status=503, body=b'{"error":"Busy.","status":503}', repeat=True)
        async with make_client(max_attempts=4, backoff_base=1.0) as (client, sleeps):
            with pytest.raises(TransientHttpError) as caught:
                await client.get_json(f"{MOCK_BASE}/plans")
        calls = sum(len(requests) for requests in mocked.requests.values())
    assert calls == 4
    assert caught.value.status == 503
    assert caught.value.reason == "Busy."
    assert len(sleeps.delays) == 3
    for attempt, delay in enumerate(sleeps.delays, start=1):
        ceiling = 2.0 ** (attempt - 1)
        assert ceiling / 2 <= delay <= ceiling


@pytest.mark.parametrize(
    ("exception", "reason"),
    [
        (aiohttp.ServerDisconnectedError(), "connection error"),
        (aiohttp.ClientOSError(111, "Connection refused"), "connection error"),
        (TimeoutError(), "timed out"),
        (aiohttp.ClientPayloadError("Response payload is not completed"), "incomplete"),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, BaseException) else value,
)
async def test_network_errors_are_transient(exception: BaseException, reason: str) -> None:
    with aioresponses() as mocked:
        mocked.get(PLANS, exception=exception, repeat=True)
        async with make_client(max_attempts=3) as (client, sleeps):
            with pytest.raises(TransientHttpError, match=reason) as caught:
                await client.get_json(f"{MOCK_BASE}/plans")
    assert caught.value.status is None
    assert len(sleeps.delays) == 2


async def test_other_client_errors_are_permanent_http_errors() -> None:
    with aioresponses() as mocked:
        mocked.get(PLANS, exception=aiohttp.InvalidURL("http://[::1"), repeat=True)
        async with make_client() as (client, sleeps):
            with pytest.raises(PermanentHttpError, match=r"InvalidURL: http://\[::1"):
                await client.get_json(f"{MOCK_BASE}/plans")
    assert sleeps.delays == []


async def test_max_attempts_argument_overrides_the_config() -> None:
    with aioresponses() as mocked:
        mocked.get(PLANS, status=502, body=b"Bad gateway", repeat=True)
        async with make_client(max_attempts=5) as (client, sleeps):
            with pytest.raises(TransientHttpError):
                await client.get_json(f"{MOCK_BASE}/plans", max_attempts=2)
    assert len(sleeps.delays) == 1


async def test_retrying_uses_the_classifier_for_any_error() -> None:
    async with make_client(max_attempts=3) as (client, sleeps):
        outcomes: list[BaseException | str] = [aiohttp.ServerDisconnectedError(), "done"]

        async def flaky() -> str:
            outcome = outcomes.pop(0)
            if isinstance(outcome, BaseException):
                raise outcome
            return outcome

        assert await client.retrying("http://x", flaky) == "done"
        assert len(sleeps.delays) == 1

        calls = 0

        async def broken() -> str:
            nonlocal calls
            calls += 1
            raise ValueError("not retryable")

        with pytest.raises(ValueError, match="not retryable"):
            await client.retrying("http://x", broken)
        assert calls == 1


# -- HttpClient against the fake Vultr API on loopback ------------------------------------------


async def test_user_agent_reaches_the_server(api: FakeVultrAPI) -> None:
    async with make_client() as (client, _):
        await client.get_json(f"{api.base_url}/regions")
    assert api.requests[0].headers["User-Agent"] == f"vultr-scraper/{__version__}"


async def test_latency_below_the_timeout_succeeds(api: FakeVultrAPI) -> None:
    api.latency = 0.05
    async with make_client(timeout=5.0) as (client, sleeps):
        document, response = await client.get_json(f"{api.base_url}/regions")
    assert [region["id"] for region in document["regions"]] == ["ewr", "fra"]
    assert response.elapsed >= 0.05
    assert sleeps.delays == []


async def test_session_timeout_applies_when_the_request_gives_none(api: FakeVultrAPI) -> None:
    # Regression: passing timeout=None to aiohttp disabled the session's timeouts entirely.
    api.slow("/v2/regions", 30.0, times=None)
    async with make_client(timeout=0.5, max_attempts=2) as (client, sleeps):
        with pytest.raises(TransientHttpError, match="timed out"):
            await client.get_json(f"{api.base_url}/regions")
    assert api.count("/v2/regions") == 2
    assert len(sleeps.delays) == 1


async def test_per_request_timeout_overrides_the_session(api: FakeVultrAPI) -> None:
    api.slow("/v2/regions", 30.0)
    async with make_client(timeout=60.0) as (client, _):
        with pytest.raises(TransientHttpError, match="timed out"):
            await client.request_once("GET", f"{api.base_url}/regions", timeout=0.5)
        # The next request is not slowed, uses the session's generous timeout, and gets its
        # own response, never the late one of the request that timed out (aiohttp 3.9.0 bug).
        response = await client.request_once("GET", f"{api.base_url}/os")
    assert response.status == 200
    assert "os" in response.json()


@pytest.mark.parametrize("header_name", ["Retry-After", "retry-after"])
async def test_429_retry_after_seconds(api: FakeVultrAPI, header_name: str) -> None:
    api.fail("/v2/plans", 429, headers={header_name: "3"})
    async with make_client(backoff_base=0.01) as (client, sleeps):
        document, _ = await client.get_json(f"{api.base_url}/plans")
    assert len(document["plans"]) == 2
    assert sleeps.delays == [3.0]
    assert api.count("/v2/plans") == 2


async def test_429_retry_after_http_date(api: FakeVultrAPI) -> None:
    later = datetime.now(UTC) + timedelta(seconds=30)
    api.fail("/v2/plans", 429, retry_after=format_datetime(later, usegmt=True))
    async with make_client(backoff_base=0.01) as (client, sleeps):
        await client.get_json(f"{api.base_url}/plans")
    assert len(sleeps.delays) == 1
    assert 25.0 <= sleeps.delays[0] <= 30.0


async def test_retry_after_is_capped(api: FakeVultrAPI) -> None:
    api.fail("/v2/plans", 429, retry_after="86400")
    async with make_client(backoff_base=0.01, retry_after_cap=20.0) as (client, sleeps):
        await client.get_json(f"{api.base_url}/plans")
    assert sleeps.delays == [20.0]


@pytest.mark.parametrize("status", [500, 502, 503, 504])
@pytest.mark.parametrize("html", [False, True], ids=["json", "html"])
async def test_5xx_once_is_retried(api: FakeVultrAPI, status: int, html: bool) -> None:
    api.fail(on_page("/v2/plans", 2), status, html=html)
    async with make_client() as (client, sleeps):
        first, _ = await client.get_json(f"{api.base_url}/plans")
        cursor = first["meta"]["links"]["next"]
        second, _ = await client.get_json(f"{api.base_url}/plans", params={"cursor": cursor})
    assert [plan["id"] for plan in second["plans"]] == ["vc2-2c-4gb", "vhp-2c-4gb-amd"]
    assert len(sleeps.delays) == 1
    assert api.count("/v2/plans") == 3


@pytest.mark.parametrize("status", [500, 502, 503, 504])
@pytest.mark.parametrize("html", [False, True], ids=["json", "html"])
async def test_5xx_forever_gives_a_readable_transient_error(
    api: FakeVultrAPI, status: int, html: bool
) -> None:
    api.fail("/v2/plans", status, html=html, times=None)
    async with make_client(max_attempts=3) as (client, sleeps):
        with pytest.raises(TransientHttpError) as caught:
            await client.get_json(f"{api.base_url}/plans")
    assert caught.value.status == status
    assert caught.value.reason == (MAINTENANCE if html else "Internal error.")
    assert str(caught.value).startswith(f"HTTP {status} from {api.base_url}/plans")
    assert api.count("/v2/plans") == 3
    assert len(sleeps.delays) == 2


@pytest.mark.parametrize(
    ("inject", "reason"),
    [
        (FakeVultrAPI.truncate, r"not valid JSON \(truncated\?\)"),
        (FakeVultrAPI.short_body, "incomplete response body"),
        (FakeVultrAPI.drop, "connection error"),
    ],
    ids=["truncated-json", "short-body", "dropped-connection"],
)
async def test_broken_responses(
    api: FakeVultrAPI, inject: Callable[..., None], reason: str
) -> None:
    inject(api, "/v2/regions")
    async with make_client(max_attempts=3) as (client, sleeps):
        document, _ = await client.get_json(f"{api.base_url}/regions")
        assert document["meta"]["total"] == 4
        assert api.count("/v2/regions") == 2
        # aiohttp >= 3.10 itself resends an idempotent request once after a dropped
        # connection; then our policy has nothing left to retry.
        assert len(sleeps.delays) == (0 if inject is FakeVultrAPI.drop and RESENDS else 1)

        sleeps.delays.clear()
        inject(api, "/v2/regions", times=None)
        with pytest.raises(TransientHttpError, match=reason):
            await client.get_json(f"{api.base_url}/regions")
    assert len(sleeps.delays) == 2
    per_attempt = 2 if inject is FakeVultrAPI.drop and RESENDS else 1
    assert api.count("/v2/regions") == 2 + 3 * per_attempt


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
async def test_permanent_statuses_fail_at_once(api: FakeVultrAPI, status: int) -> None:
    api.fail("/v2/plans", status, times=None)
    async with make_client(max_attempts=5) as (client, sleeps):
        with pytest.raises(PermanentHttpError) as caught:
            await client.get_json(f"{api.base_url}/plans")
    assert caught.value.status == status
    assert api.count("/v2/plans") == 1
    assert sleeps.delays == []


async def test_real_404_and_400_bodies(api: FakeVultrAPI) -> None:
    async with make_client() as (client, sleeps):
        with pytest.raises(PermanentHttpError) as missing:
            await client.get_json(f"{api.base_url}/no-such-endpoint")
        with pytest.raises(PermanentHttpError) as invalid:
            await client.get_json(f"{api.base_url}/regions/xyz/availability")
    assert (missing.value.status, missing.value.reason) == (404, "Not Found")
    assert (invalid.value.status, invalid.value.reason) == (400, "Invalid region.")
    assert sleeps.delays == []


async def test_a_huge_error_body_is_read_only_far_enough_to_describe_it(
    api: FakeVultrAPI,
) -> None:
    page = b"<html><body><h1>Down for maintenance</h1>" + b"<p>x</p>" * 1_000_000 + b"</body>"
    api.fail("/v2/plans", 404, body=page, html=True)
    async with make_client() as (client, _):
        with pytest.raises(PermanentHttpError) as caught:
            await client.request_once("GET", f"{api.base_url}/plans")
    assert caught.value.reason.startswith("Down for maintenance x x")
    assert len(caught.value.reason) <= 200


async def test_the_status_is_not_repeated_in_the_reason(api: FakeVultrAPI) -> None:
    url = f"{api.base_url}/plans"
    async with make_client() as (client, _):
        with pytest.raises(PermanentHttpError) as caught:
            await client.request_once("DELETE", url)
    assert str(caught.value) == f"HTTP 405 from {url}: Method Not Allowed"


async def test_a_refused_connection_fails_at_once_in_one_line(unused_tcp_port: int) -> None:
    url = f"http://127.0.0.1:{unused_tcp_port}/v2/plans"
    async with make_client(max_attempts=4) as (client, sleeps):
        with pytest.raises(UnreachableHttpError) as caught:
            await client.get_json(url)
    assert str(caught.value) == f"request to {url} failed: connection error: Connection refused"
    assert not is_transient(caught.value) and sleeps.delays == []  # no retry: nothing listens


def _connector_error(host: str, cause: OSError) -> aiohttp.ClientConnectorError:
    from aiohttp.client_reqrep import ConnectionKey

    key = ConnectionKey(host, 443, True, True, None, None, None)
    return aiohttp.ClientConnectorError(key, cause)


@pytest.mark.parametrize(
    "cause",
    [
        socket.gaierror(-3, "Temporary failure in name resolution"),
        socket.gaierror(-2, "Name or service not known"),
    ],
    ids=["no-network", "no-such-name"],
)
async def test_a_name_that_does_not_resolve_fails_at_once(cause: OSError) -> None:
    url = "https://api.vultr.example/v2/plans"
    with aioresponses() as mocked:
        mocked.get(url, exception=_connector_error("api.vultr.example", cause), repeat=True)
        async with make_client(max_attempts=4) as (client, sleeps):
            with pytest.raises(UnreachableHttpError) as caught:
                await client.get_json(url)
    assert str(caught.value) == (
        f"request to {url} failed: cannot resolve host api.vultr.example: {cause.strerror}"
    )
    assert sleeps.delays == []


async def test_other_connect_failures_are_still_retried() -> None:
    url = "https://api.vultr.example/v2/plans"
    reset = _connector_error("api.vultr.example", ConnectionResetError(104, "Connection reset"))
    with aioresponses() as mocked:
        mocked.get(url, exception=reset, repeat=True)
        async with make_client(max_attempts=3) as (client, sleeps):
            with pytest.raises(TransientHttpError):
                await client.get_json(url)
    assert len(sleeps.delays) == 2


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (aiohttp.ClientOSError(111, "Connect call failed ('127.0.0.1', 1)"), "Connection refused"),
        (aiohttp.ServerDisconnectedError(), "Server disconnected"),
        (socket.gaierror(-2, "Name or service not known"), "Name or service not known"),
    ],
)
def test_connection_error_reason(error: BaseException, reason: str) -> None:
    assert connection_error_reason(error) == reason


async def test_every_attempt_passes_the_rate_limiter(api: FakeVultrAPI) -> None:
    clock = FakeClock()
    limiter = RateLimiter(5.0, clock=clock, sleep=clock.sleep)
    api.fail("/v2/os", 503)
    async with make_client(limiter=limiter) as (client, sleeps):
        for path in ("/os", "/regions", "/plans"):
            await client.get_json(f"{api.base_url}{path}")
    # 4 attempts (one retried) spaced 0.2 s apart on the limiter's clock; the retry's backoff
    # went to the client's own sleep, not the limiter's.
    assert clock.now == pytest.approx(3 * 0.2)
    assert len(sleeps.delays) == 1
    assert len(api.requests) == 4


async def test_rate_limit_from_config_paces_real_requests(api: FakeVultrAPI) -> None:
    loop = asyncio.get_running_loop()
    async with make_client(rate_limit=25.0) as (client, _):
        started = loop.time()
        for _ in range(5):
            await client.get_json(f"{api.base_url}/regions")
        elapsed = loop.time() - started
    assert elapsed >= 4 * 0.04 * 0.95  # a lower bound: pacing sleeps at least this long


# -- real captured payloads ----------------------------------------------------------------------


def test_captured_error_bodies_read_well(samples_dir: Path) -> None:
    maintenance = (samples_dir / "error-504_maintenance_2023-12.txt").read_bytes()
    assert describe_error_body(maintenance, "text/html") == MAINTENANCE
    invalid_plan = (samples_dir / "error-400_invalid-plan_2023-08.json").read_bytes()
    assert describe_error_body(invalid_plan, "application/json") == "Invalid plan chosen."
    invalid_region = (samples_dir / "error-400_invalid-region_2026-09.json").read_bytes()
    assert describe_error_body(invalid_region, "application/json") == "Invalid region."


async def test_captured_504_body_served_over_http(api: FakeVultrAPI, samples_dir: Path) -> None:
    maintenance = (samples_dir / "error-504_maintenance_2023-12.txt").read_bytes()
    api.fail("/v2/plans", 504, body=maintenance, html=True, times=None)
    async with make_client(max_attempts=2) as (client, _):
        with pytest.raises(TransientHttpError) as caught:
            await client.get_json(f"{api.base_url}/plans")
    assert str(caught.value) == f"HTTP 504 from {api.base_url}/plans: {MAINTENANCE}"


async def test_fake_cursors_and_meta_look_like_vultrs(api: FakeVultrAPI, samples_dir: Path) -> None:
    real = json.loads((samples_dir / "os_2021-09_page1.json").read_text(encoding="utf-8"))
    real_next = base64.b64decode(real["meta"]["links"]["next"]).decode()
    assert real_next == f"next__{real['os'][-1]['id']}"
    async with make_client() as (client, _):
        fake, _ = await client.get_json(f"{api.base_url}/os", params={"per_page": 2})
    fake_next = base64.b64decode(fake["meta"]["links"]["next"]).decode()
    assert fake_next == f"next__{fake['os'][-1]['id']}"
    assert fake["meta"].keys() == real["meta"].keys()
    assert fake["meta"]["links"].keys() == real["meta"]["links"].keys()
    assert real["meta"]["links"]["prev"] == fake["meta"]["links"]["prev"] == ""
