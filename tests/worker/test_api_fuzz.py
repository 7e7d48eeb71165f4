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
from unittest import mock
from urllib.parse import parse_qs, urlsplit

import aiohttp
import jsonschema  # type: ignore[import-untyped]  # schemathesis brings it
import msgspec
import pytest
from aiohttp.http_exceptions import BadStatusLine
from aiohttp.http_parser import HttpRequestParser
from hypothesis import HealthCheck, settings
from redis.asyncio import Redis

from tests.worker.api_harness import (
    TOKEN,
    add_events,
    add_failed_job,
    cloud_plan,
    commit_catalogue,
    event,
    make_config,
    make_plans,
    record_run,
    running_api,
    set_stock,
)
from vultr_scraper_worker.api.app import all_routes
from vultr_scraper_worker.api.openapi import build_document
from vultr_scraper_worker.api.routes_jobs import parameter_choices

pytest.importorskip("schemathesis")
# By its distribution version: 4.0.0 reports ``__version__ == "dev"``. Nix may ship 3.x.
if int(metadata.version("schemathesis").split(".")[0]) < 4:
    pytest.skip("needs schemathesis 4 (its Python API changed)", allow_module_level=True)

import schemathesis
from schemathesis.checks import CHECKS, load_all_checks
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import negative_data_rejection, positive_data_acceptance

# Per operation and identity; enough to hit every parameter's edge cases. A longer local run:
# VS_FUZZ_EXAMPLES=500 scripts/test -- tests/worker/test_api_fuzz.py
EXAMPLES = int(os.environ.get("VS_FUZZ_EXAMPLES", "40"))
REQUEST_TIMEOUT = 10  # seconds: a request that hangs fails its case instead of stalling CI


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
# As served to the live server's configuration (its jobs are the enqueue route's enum), as
# JSON (a Struct's tuple default is an array there).
DOCUMENT = msgspec.json.decode(
    msgspec.json.encode(
        build_document(
            all_routes(),
            protect_reads=False,
            choices=parameter_choices(make_plans(make_config("redis://127.0.0.1:1/0"))),
        )
    )
)


def _parser_knows(method: str) -> bool:
    """Whether aiohttp's HTTP/1.1 parser reads a request with this method at all. 3.9's refuses
    QUERY with 400 before any handler runs (newer ones let the router answer 405 + Allow): how
    such a request is answered then belongs to aiohttp, not to this API."""
    loop = asyncio.new_event_loop()
    try:
        parser = HttpRequestParser(mock.Mock(), loop, 2**16)
        parser.feed_data(f"{method} / HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    except BadStatusLine:
        return False
    finally:
        loop.close()
    return True


# Methods the document does not list, sent to every path (the unsupported-method check wants
# 405 with Allow): schemathesis' own list, less those aiohttp's parser cannot read.
UNLISTED_METHODS = [
    method
    for method in ("get", "put", "post", "delete", "options", "patch", "trace", "query")
    if _parser_knows(method.upper())
]
if "query" not in UNLISTED_METHODS:
    print(f"aiohttp {aiohttp.__version__}: its parser refuses QUERY, so QUERY is not sent")
CONFIG = SchemathesisConfig.from_dict(
    {"phases": {"coverage": {"unexpected-methods": UNLISTED_METHODS}}}
)
schema = schemathesis.openapi.from_dict(DOCUMENT, config=CONFIG)
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


load_all_checks()
# Every check schemathesis has (not only the default ones).
ALL_CHECKS = CHECKS.get_all()

# What JSON Schema cannot say of a mute's query parameters, because they depend on each other
# and on the clock: exactly one of `for` and `until`, an end in the future and at most a year
# away, a positive duration. The operation's description states these rules, and each is
# answered 400 with its own message. A schema-valid mute refused for any other reason still
# fails the positive-data check.
MUTE = ("POST", "/api/v1/maintenance/{target}")
MUTE_RULES = (
    "give exactly one of the parameters 'for' (a duration) or 'until'",
    "the end of a mute must be in the future",
    "a mute lasts at most",
    "is not a positive duration",
    "is longer than",
)


def positive_data_acceptance_but_stated_rules(ctx: Any, response: Any, case: Any) -> bool | None:
    if (
        (case.operation.method.upper(), case.operation.path) == MUTE
        and response.status_code == 400
        and "problem+json" in str(response.headers.get("content-type", ""))
    ):
        detail = str(response.json().get("detail", ""))
        if any(rule in detail for rule in MUTE_RULES):
            return None
    result: bool | None = positive_data_acceptance(ctx, response, case)
    return result


def _query_schemas(method: str, path: str) -> dict[str, Any] | None:
    """The operation's query parameters' schemas, or None when it takes anything else too."""
    operation = DOCUMENT["paths"][path][method.lower()]
    parameters = operation.get("parameters", [])
    if "requestBody" in operation or any(p["in"] != "query" for p in parameters):
        return None
    return {parameter["name"]: parameter["schema"] for parameter in parameters}


def query_as_sent_is_valid(case: Any, response: Any) -> bool:
    """Whether the query the server received is valid after all. Schemathesis serializes a
    negative value (``null``, an empty object) to text that can be valid: ``subject=null`` is a
    subject, and a form's blank ``kind=`` is one blank item of a repeatable parameter, which
    its own re-validation reads as a lone string and so still calls invalid."""
    schemas = _query_schemas(case.operation.method, case.operation.path)
    if schemas is None:
        return False
    sent = parse_qs(urlsplit(response.request.url).query, keep_blank_values=True)
    if set(sent) - set(schemas):
        return False  # an unknown parameter is refused: that case is truly negative
    for name, texts in sent.items():
        schema = schemas[name]
        value: Any = texts
        if schema.get("type") != "array":
            if len(texts) != 1:
                return False
            value = texts[0]
        checker = jsonschema.Draft202012Validator.FORMAT_CHECKER
        if not jsonschema.Draft202012Validator(schema, format_checker=checker).is_valid(value):
            return False
    return True


def negative_data_rejection_of_what_was_sent(ctx: Any, response: Any, case: Any) -> bool | None:
    if query_as_sent_is_valid(case, response):
        return None
    result: bool | None = negative_data_rejection(ctx, response, case)
    return result


REPLACED: dict[Any, Any] = {
    positive_data_acceptance: positive_data_acceptance_but_stated_rules,
    negative_data_rejection: negative_data_rejection_of_what_was_sent,
}
CHECKS_RUN = [REPLACED.get(check, check) for check in ALL_CHECKS]


def checks(case: Any) -> list[Any]:
    return CHECKS_RUN


TestFunction = Callable[[Any, LiveApi], None]


def fuzz(test: TestFunction) -> TestFunction:
    """One test per operation of the document, each running EXAMPLES generated cases."""
    parametrized: TestFunction = schema.parametrize()(FUZZ(test))
    return parametrized


@fuzz
def test_anonymous_requests_never_fail_and_match_the_document(case: Any, live_api: LiveApi) -> None:
    case.call_and_validate(base_url=live_api.url, checks=checks(case), timeout=REQUEST_TIMEOUT)


@fuzz
def test_authenticated_requests_never_fail_and_match_the_document(
    case: Any, live_api: LiveApi
) -> None:
    case.call_and_validate(
        base_url=live_api.url,
        headers={"Authorization": f"Bearer {TOKEN}"},
        checks=checks(case),
        timeout=REQUEST_TIMEOUT,
    )
