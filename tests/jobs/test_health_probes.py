"""Probe conditions against a real loopback server: each fails and passes as configured."""

from __future__ import annotations

import socket
from typing import Any

import aiohttp
import pytest

from tests.fakes.http_targets import HttpTarget, Reply
from vultr_scraper_core.config import EndpointConfig
from vultr_scraper_jobs.probes import json_equal, parse_path, probe, resolve_path

JSON_BODY = b'{"meta": {"total": 33, "ok": true}, "regions": [{"id": "ams"}, {"id": "fra"}]}'


def endpoint(url: str, **conditions: Any) -> EndpointConfig:
    return EndpointConfig(name="target", url=url, timeout=5.0, **conditions)


@pytest.fixture
async def target() -> Any:
    async with HttpTarget() as server:
        server.reply("/json", Reply(body=JSON_BODY, content_type="application/json"))
        server.reply("/html", Reply(body=b"<h1>Status: all systems operational</h1>"))
        server.reply("/slow", Reply(body=b"late", delay=0.6))
        server.reply("/broken", Reply(status=503, body=b"maintenance"))
        yield server


@pytest.fixture
async def session() -> Any:
    async with aiohttp.ClientSession() as client:
        yield client


async def check(session: aiohttp.ClientSession, config: EndpointConfig) -> list[str]:
    result = await probe(session, config)
    assert result.ok == (not result.failures)
    return list(result.failures)


async def test_status_condition(target: HttpTarget, session: aiohttp.ClientSession) -> None:
    assert await check(session, endpoint(target.url("/html"))) == []
    assert await check(session, endpoint(target.url("/broken"))) == ["status 503 not in [200]"]
    assert await check(session, endpoint(target.url("/broken"), status=[200, 503])) == []
    # An empty list accepts any status.
    assert await check(session, endpoint(target.url("/broken"), status=[])) == []


async def test_latency_condition(target: HttpTarget, session: aiohttp.ClientSession) -> None:
    # Delays far from the bound in both directions, so a loaded machine cannot flip them.
    assert await check(session, endpoint(target.url("/html"), max_latency_ms=5000)) == []
    failures = await check(session, endpoint(target.url("/slow"), max_latency_ms=100))
    assert len(failures) == 1 and failures[0].startswith("latency ")
    assert failures[0].endswith("not under 100 ms")
    result = await probe(session, endpoint(target.url("/slow")))
    assert result.ok and result.latency_ms is not None and result.latency_ms >= 600


async def test_body_conditions(target: HttpTarget, session: aiohttp.ClientSession) -> None:
    url = target.url("/html")
    assert await check(session, endpoint(url, body_contains="operational")) == []
    assert await check(session, endpoint(url, body_contains="degraded")) == [
        "body does not contain 'degraded'"
    ]
    assert await check(session, endpoint(url, body_regex=r"Status: \w+ systems")) == []
    assert await check(session, endpoint(url, body_regex=r"^Status")) == [
        "body does not match /^Status/"
    ]


async def test_json_path_conditions(target: HttpTarget, session: aiohttp.ClientSession) -> None:
    url = target.url("/json")
    assert await check(session, endpoint(url, json_path="meta.total", json_equals=33)) == []
    assert await check(session, endpoint(url, json_path="$.meta.total", json_equals=33.0)) == []
    assert await check(session, endpoint(url, json_path="regions[1].id", json_equals="fra")) == []
    assert await check(session, endpoint(url, json_path="meta.ok", json_equals=True)) == []
    assert await check(session, endpoint(url, json_path="meta.total", json_equals=34)) == [
        "meta.total is 33, expected 34"
    ]
    assert await check(session, endpoint(url, json_path="meta.ok", json_equals=1)) == [
        "meta.ok is true, expected 1"
    ]
    # A path alone checks that it exists and is not null.
    assert await check(session, endpoint(url, json_path="meta")) == []
    assert await check(session, endpoint(url, json_path="meta.missing")) == [
        "meta.missing: no key 'missing'"
    ]
    assert await check(session, endpoint(url, json_path="regions[5].id")) == [
        "regions[5].id: index 5 out of range (2 items)"
    ]
    html = target.url("/html")
    assert await check(session, endpoint(html, json_path="meta")) == ["body is not JSON (for meta)"]


async def test_every_failed_condition_is_listed(
    target: HttpTarget, session: aiohttp.ClientSession
) -> None:
    config = endpoint(
        target.url("/broken"), body_contains="ok", json_path="a", max_latency_ms=10_000
    )
    result = await probe(session, config)
    assert not result.ok
    assert result.status == 503
    assert result.error == "status 503 not in [200]"
    assert result.failures == (
        "status 503 not in [200]",
        "body does not contain 'ok'",
        "body is not JSON (for a)",
    )


async def test_network_failures_are_results_not_exceptions(
    session: aiohttp.ClientSession,
) -> None:
    with socket.socket() as sock:  # a port with nothing listening
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    refused = await probe(session, endpoint(f"http://127.0.0.1:{port}/"))
    assert not refused.ok and refused.status is None
    assert refused.error == "connection failed: Connection refused"

    async with HttpTarget() as slow:
        slow.reply("/", Reply(delay=5.0))
        config = EndpointConfig(name="slow", url=slow.url("/"), timeout=0.2)
        timed_out = await probe(session, config)
    assert not timed_out.ok
    assert timed_out.error == "timed out after 0.2 s"


def test_json_paths() -> None:
    assert parse_path("$.a.b[0].c") == ("a", "b", 0, "c")
    assert parse_path("a[0][1]") == ("a", 0, 1)
    assert resolve_path({"a": [{"b": 1}]}, "a.0.b") == 1
    assert resolve_path({"a": [1, 2]}, "a[-1]") == 2
    with pytest.raises(ValueError):
        parse_path("$")


def test_json_equality_is_typed() -> None:
    assert json_equal(1, 1.0)
    assert not json_equal(True, 1)
    assert not json_equal("1", 1)
    assert json_equal({"a": [1, True]}, {"a": [1.0, True]})
    assert not json_equal({"a": [1, True]}, {"a": [1, 1]})
