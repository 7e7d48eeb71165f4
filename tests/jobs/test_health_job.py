"""The check-health job end to end: real loopback targets, real Redis, the real change feed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from redis.asyncio import Redis

from tests.fakes.http_targets import HttpTarget, Reply
from tests.fakes.vultr_api import FakeVultrAPI
from vultr_scraper_core.config import (
    ClientConfig,
    Config,
    EndpointConfig,
    HealthConfig,
    ScheduleConfig,
    Secrets,
    VultrConfig,
)
from vultr_scraper_core.http import USER_AGENT, HttpClient, create_session
from vultr_scraper_core.store.changes import ChangeFeed, EventKind
from vultr_scraper_core.store.health import HealthStore, ProbeResult
from vultr_scraper_jobs.context import deps, make_context
from vultr_scraper_jobs.health import check_endpoint_health, probe_session, prune_health

PREFIX = "vs"
OK, FAIL = Reply(status=200), Reply(status=500, body=b"boom")


def health_config(*endpoints: EndpointConfig, **health: Any) -> Config:
    return Config(
        health=HealthConfig(check_vultr_api=False, endpoints=list(endpoints), **health),
        client=ClientConfig(rate_limit=0),
    )


@pytest.fixture
async def run_job(redis: Redis) -> AsyncIterator[Any]:
    async with create_session(ClientConfig(rate_limit=0)) as session:

        async def run(config: Config) -> dict[str, Any]:
            ctx = make_context(
                config=config,
                secrets=Secrets(),
                redis=redis,
                http=HttpClient(session, config.client),
            )
            return await check_endpoint_health(ctx)

        yield run


async def endpoint_events(redis: Redis) -> list[tuple[str, str]]:
    events = await ChangeFeed(redis, PREFIX).read(
        kinds={EventKind.ENDPOINT_DOWN, EventKind.ENDPOINT_UP}, limit=1000
    )
    return [(event.kind, event.subject) for event in events]


async def test_flapping_endpoint_gives_one_down_and_one_up(redis: Redis, run_job: Any) -> None:
    #         S   F   F   S   F   F   F→DOWN F   S   F   S   S→UP F   F   S
    script = [OK, FAIL, FAIL, OK, FAIL, FAIL, FAIL, FAIL, OK, FAIL, OK, OK, FAIL, FAIL, OK]
    async with HttpTarget() as target:
        target.reply("/flap", *script)
        config = health_config(
            EndpointConfig(name="flappy", url=target.url("/flap"), interval=1),
            failure_threshold=3,
            success_threshold=2,
        )
        outcomes = [await run_job(config) for _ in script]
    assert [outcome["checked"] for outcome in outcomes] == [1] * len(script)
    assert all(outcome["status"] == "success" for outcome in outcomes)  # failures are data
    transitions = [(i, outcome["transitions"]) for i, outcome in enumerate(outcomes)]
    assert [(i, t) for i, t in transitions if t] == [
        (6, [{"endpoint": "flappy", "to": "down"}]),
        (11, [{"endpoint": "flappy", "to": "up"}]),
    ]
    assert await endpoint_events(redis) == [
        (EventKind.ENDPOINT_DOWN, "flappy"),
        (EventKind.ENDPOINT_UP, "flappy"),
    ]
    down, up = await ChangeFeed(redis, PREFIX).read(limit=10)
    assert (down.old, down.new, up.old, up.new) == ("unknown", "down", "down", "up")
    assert down.detail["error"] == "status 500 not in [200]"
    assert down.detail["streak"] == 3
    assert up.detail["downtime_s"] > 0
    state = (await HealthStore(redis, PREFIX).states(["flappy"]))["flappy"]
    assert (state.state, state.checks, state.successes) == ("up", len(script), 1)


async def test_healthy_start_is_not_a_recovery(redis: Redis, run_job: Any) -> None:
    async with HttpTarget() as target:
        config = health_config(EndpointConfig(name="fine", url=target.url("/"), interval=1))
        for _ in range(3):
            await run_job(config)
    assert await endpoint_events(redis) == []
    state = (await HealthStore(redis, PREFIX).states(["fine"]))["fine"]
    assert state.state == "up"


async def test_credentials_in_the_url_never_reach_the_change_feed(
    redis: Redis, run_job: Any
) -> None:
    async with HttpTarget() as target:
        target.reply("/private", FAIL)
        url = target.url("/private").replace("http://", "http://probe:s3cret-pw@", 1)
        config = health_config(
            EndpointConfig(name="private", url=f"{url}?password=s3cret-query", interval=1),
            failure_threshold=1,
        )
        await run_job(config)
    (event,) = await ChangeFeed(redis, PREFIX).read(limit=10)
    assert event.kind == EventKind.ENDPOINT_DOWN
    assert event.detail["url"].startswith("http://probe:***@127.0.0.1:")
    assert event.detail["url"].endswith("/private?password=***")


async def test_probe_session_opens_a_connection_per_probe_up_to_the_concurrency() -> None:
    config = Config(client=ClientConfig(connection_limit=7), health=HealthConfig(concurrency=3))
    async with probe_session(config) as session:
        assert isinstance(session.connector, aiohttp.TCPConnector)
        assert session.connector.limit == 3 and session.connector.force_close
        assert session.headers["User-Agent"] == USER_AGENT


async def test_interval_is_respected(redis: Redis, run_job: Any) -> None:
    async with HttpTarget() as target:
        config = health_config(
            EndpointConfig(name="hourly", url=target.url("/hourly"), interval=3600),
            EndpointConfig(name="often", url=target.url("/often"), interval=1),
        )
        first = await run_job(config)
        second = await run_job(config)
    assert (first["checked"], first["not_due"]) == (2, 0)
    assert (second["checked"], second["not_due"]) == (1, 1)
    assert (target.hits["/hourly"], target.hits["/often"]) == (1, 2)


async def test_concurrency_is_bounded(run_job: Any) -> None:
    async with HttpTarget() as target:
        target.default = Reply(delay=0.5)  # long enough to overlap on a loaded machine
        endpoints = [EndpointConfig(name=f"e{i}", url=target.url(f"/{i}")) for i in range(9)]
        result = await run_job(health_config(*endpoints, concurrency=3))
    assert result["checked"] == 9
    assert target.max_active == 3


async def test_results_are_bounded_and_rolled_up(redis: Redis, run_job: Any) -> None:
    async with HttpTarget() as target:
        target.reply("/", OK, FAIL, OK, OK, FAIL)
        config = health_config(
            EndpointConfig(name="e", url=target.url("/"), interval=1), keep_results=3
        )
        for _ in range(5):
            await run_job(config)
    store = HealthStore(redis, PREFIX, keep_results=3)
    results = await store.results("e")
    assert [result.ok for result in results] == [False, True, True]  # newest first
    uptime = (await store.uptime(["e"], hours=24))["e"]
    assert (uptime.probes, uptime.successes, uptime.ratio) == (5, 3, 0.6)


async def test_overlapping_runs_report_a_transition_once(redis: Redis, run_job: Any) -> None:
    async with HttpTarget() as target:
        target.default = FAIL
        config = health_config(
            EndpointConfig(name="down", url=target.url("/"), interval=1), failure_threshold=1
        )
        await asyncio.gather(*(run_job(config) for _ in range(4)))
    assert target.hits["/"] == 4
    assert await endpoint_events(redis) == [(EventKind.ENDPOINT_DOWN, "down")]


async def test_vultr_api_is_checked_by_default(redis: Redis, run_job: Any) -> None:
    async with FakeVultrAPI() as api:
        config = Config(vultr=VultrConfig(base_url=api.base_url))
        result = await run_job(config)
    assert result["checked"] == 1
    assert (result["failing"], result["down"], result["failing_endpoints"]) == (0, 0, [])
    [probe] = await HealthStore(redis, PREFIX).results("vultr-api")
    assert probe.ok and probe.status == 200
    [request] = api.requests
    assert (request.path, request.query.get("per_page")) == ("/v2/regions", "1")


async def test_endpoints_beyond_the_deadline_wait_for_the_next_run(run_job: Any) -> None:
    async with HttpTarget() as target:
        config = health_config(
            EndpointConfig(name="a", url=target.url("/a"), timeout=10),
            EndpointConfig(name="b", url=target.url("/b"), timeout=0.5),
        )
        config.schedules.check_health = ScheduleConfig(timeout=4.0)
        result = await run_job(config)
    # 0.9 x 4 s leaves no room for a 10 s timeout, but plenty for a 0.5 s one.
    assert (result["checked"], result["deferred"]) == (1, 1)
    assert target.hits["/b"] == 1 and target.hits["/a"] == 0


async def test_uptime_windows_and_pruning(redis: Redis) -> None:
    store = HealthStore(redis, PREFIX)
    feed = ChangeFeed(redis, PREFIX)
    now = datetime(2026, 3, 31, 12, 30, tzinfo=UTC)
    ages = {timedelta(hours=1): True, timedelta(hours=30): False, timedelta(days=10): True}
    ages[timedelta(days=40)] = False
    for age, ok in ages.items():
        result = ProbeResult(at=now - age, ok=ok, latency_ms=10.0)
        await store.record(
            "api", "http://x", result, failure_threshold=3, success_threshold=2, feed=feed
        )
    windows = {hours: (await store.uptime(["api"], hours, now))["api"] for hours in (24, 168, 720)}
    assert {hours: (u.probes, u.successes) for hours, u in windows.items()} == {
        24: (1, 1),
        168: (2, 1),
        720: (3, 2),
    }
    assert windows[24].avg_latency_ms == 10.0
    pruned = await store.prune(now, keep_days=30, configured=["api"])
    assert pruned == {"health_rollup_fields": 3, "health_endpoints": 0}
    assert (await store.uptime(["api"], 24 * 365, now))["api"].probes == 3
    # An endpoint no longer configured and silent for longer than the window goes entirely.
    later = now + timedelta(days=31)
    assert (await store.prune(later, keep_days=30, configured=[]))["health_endpoints"] == 1
    assert await store.known() == []
    assert await redis.keys(f"{PREFIX}:health:*") == []


async def test_prune_health_uses_the_configured_window(redis: Redis) -> None:
    store = HealthStore(redis, PREFIX)
    feed = ChangeFeed(redis, PREFIX)
    now = datetime.now(UTC)
    for name in ("kept", "removed"):
        for age in (timedelta(days=9), timedelta(days=3)):
            result = ProbeResult(at=now - age, ok=True)
            await store.record(
                name, "http://x", result, failure_threshold=3, success_threshold=2, feed=feed
            )
    config = health_config(EndpointConfig(name="kept", url="http://x/"), rollup_days=5)
    async with create_session(ClientConfig(rate_limit=0)) as session:
        ctx = make_context(
            config=config, secrets=Secrets(), redis=redis, http=HttpClient(session, config.client)
        )
        pruned = await prune_health(deps(ctx), now)
    # "kept" loses its 9-day-old hour; "removed" (unconfigured, silent for 3 days < 5) stays
    # whole until it has been silent for the whole window.
    assert pruned == {"health_rollup_fields": 4, "health_endpoints": 0}
    assert (await store.uptime(["kept", "removed"], 24 * 30, now))["kept"].probes == 1


async def test_a_stale_expected_state_falls_back_to_the_watched_path(redis: Redis) -> None:
    store = HealthStore(redis, PREFIX)
    feed = ChangeFeed(redis, PREFIX)
    now = datetime.now(UTC)
    for index in range(3):
        # Every call claims to have seen "no state yet": from the second on that is stale.
        state, transition = await store.record(
            "e",
            "http://x",
            ProbeResult(at=now + timedelta(seconds=index), ok=False),
            failure_threshold=2,
            success_threshold=2,
            feed=feed,
            expected=None,
        )
        assert transition == ("down" if index == 1 else None)
    assert (state.checks, state.failures, state.state) == (3, 3, "down")
    assert await endpoint_events(redis) == [(EventKind.ENDPOINT_DOWN, "e")]
    assert len(await store.results("e")) == 3
