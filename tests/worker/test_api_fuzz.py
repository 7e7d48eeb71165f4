"""Fuzzing the API from its own OpenAPI document with schemathesis: no 500, and every response
conforms to the document (status codes, content types, headers, body schemas).

The server runs in a background thread (its own event loop) on the test's private Redis, seeded
with a catalogue, stock, change events and failed jobs so that the handlers' non-empty paths
are exercised too. Each operation is fuzzed anonymously and with the bearer token.
"""

from __future__ import annotations

import asyncio
import importlib.metadata as metadata
import json
import os
import threading
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, settings
from redis.asyncio import Redis

from tests.worker.api_harness import (
    TOKEN,
    add_events,
    add_failed_job,
    cloud_plan,
    commit_catalogue,
    event,
    record_run,
    running_api,
    set_stock,
)
from vultr_scraper_worker.api.app import all_routes
from vultr_scraper_worker.api.openapi import build_document

pytest.importorskip("schemathesis")
# By its distribution version: 4.0.0 reports ``__version__ == "dev"``. Nix may ship 3.x.
if int(metadata.version("schemathesis").split(".")[0]) < 4:
    pytest.skip("needs schemathesis 4 (its Python API changed)", allow_module_level=True)

import schemathesis
from schemathesis.specs.openapi.checks import positive_data_acceptance, unsupported_method

# Per operation and identity; enough to hit every parameter's edge cases. A longer local run:
# VS_FUZZ_EXAMPLES=500 scripts/test -- tests/worker/test_api_fuzz.py
EXAMPLES = int(os.environ.get("VS_FUZZ_EXAMPLES", "40"))


@dataclass
class LiveApi:
    url: str


async def _seed(redis_url: str) -> None:
    redis = Redis.from_url(redis_url)
    try:
        now = datetime.now(UTC)
        await commit_catalogue(
            redis,
            [
                cloud_plan("vc2-1c-1gb", "5", locations=["fra", "ewr"]),
                cloud_plan("vcg-a100-1c", "90", locations=["ewr"], type="vcg", gpu_type="A100"),
            ],
            at=now - timedelta(minutes=5),  # fresh: /healthz answers 200
        )
        await set_stock(
            redis,
            {("vc2-1c-1gb", "fra"): True, ("vcg-a100-1c", "ewr"): False},
            at=now - timedelta(minutes=30),
        )
        await add_events(
            redis,
            [
                event("plan_added", "vc2-1c-1gb", at=now),
                event(
                    "price_changed",
                    "vc2-1c-1gb",
                    at=now,
                    region="fra",
                    field="monthly_cost",
                    old="4",
                    new="5",
                ),
            ],
        )
        await record_run(redis, "scrape-catalog", "success", 1.5)
        await add_failed_job(redis, "scrape-catalog:1764300000000")
    finally:
        await redis.aclose()


@pytest.fixture
def live_api(redis_url: str) -> Iterator[LiveApi]:
    started = threading.Event()
    box: dict[str, Any] = {}

    async def serve() -> None:
        await _seed(redis_url)
        stop = asyncio.Event()
        box["stop"] = (asyncio.get_running_loop(), stop)
        async with running_api(redis_url) as api:
            box["url"] = api.url
            started.set()
            await stop.wait()

    def run() -> None:
        try:
            asyncio.run(serve())
        except BaseException as error:  # surfaced by the fixture below
            box["error"] = error
            started.set()

    thread = threading.Thread(target=run, name="live-api", daemon=True)
    thread.start()
    assert started.wait(30), "the API did not start"
    if "error" in box:
        raise box["error"]
    yield LiveApi(box["url"])
    loop, stop = box["stop"]
    loop.call_soon_threadsafe(stop.set)
    thread.join(30)
    assert not thread.is_alive()


def test_the_served_document_is_the_fuzzed_one(live_api: LiveApi) -> None:
    with urllib.request.urlopen(f"{live_api.url}/api/v1/openapi.json", timeout=10) as response:
        assert json.load(response) == DOCUMENT


# The document is a pure function of the route table, so it is built at import time (the lazy
# ``schemathesis.pytest.from_fixture`` loader does not work with pytest 9.2's nodes).
# As served: JSON (a Struct's tuple default is an array there).
DOCUMENT = msgspec.json.decode(
    msgspec.json.encode(build_document(all_routes(), protect_reads=False))
)
schema = schemathesis.openapi.from_dict(DOCUMENT)
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
    ],
    derandomize=True,  # the same cases on every run: a failure is reproducible
)


# Every default check runs but one: how a method the HTTP/1.1 parser does not know (QUERY) is
# answered belongs to aiohttp, not to this API (aiohttp 3.9's parser refuses it with 400 before
# any handler runs; newer ones let the router answer 405). test_api.py checks 405 + Allow for
# known methods.
EXCLUDED = [unsupported_method]
# A mute's query parameters depend on each other (exactly one of `for` and `until`; an end in
# the future, at most a year away), which JSON Schema cannot say of query parameters: a
# schema-valid mute may be a 400. Every other check still runs on it.
DEPENDENT_PARAMETERS = {("POST", "/api/v1/maintenance/{target}")}


def excluded(case: Any) -> list[Any]:
    if (case.operation.method.upper(), case.operation.path) in DEPENDENT_PARAMETERS:
        return [*EXCLUDED, positive_data_acceptance]
    return EXCLUDED


TestFunction = Callable[[Any, LiveApi], None]


def fuzz(test: TestFunction) -> TestFunction:
    """One test per operation of the document, each running EXAMPLES generated cases."""
    parametrized: TestFunction = schema.parametrize()(FUZZ(test))
    return parametrized


@fuzz
def test_anonymous_requests_never_fail_and_match_the_document(case: Any, live_api: LiveApi) -> None:
    case.call_and_validate(base_url=live_api.url, excluded_checks=excluded(case))


@fuzz
def test_authenticated_requests_never_fail_and_match_the_document(
    case: Any, live_api: LiveApi
) -> None:
    case.call_and_validate(
        base_url=live_api.url,
        headers={"Authorization": f"Bearer {TOKEN}"},
        excluded_checks=excluded(case),
    )
