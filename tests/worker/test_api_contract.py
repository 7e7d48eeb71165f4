"""Contract: every JSON document the API serves validates against the schema the OpenAPI
document gives for its status and content type, and those schemas are all generated from the
msgspec Structs in ``vultr_scraper_worker.documents`` (none is written by hand).

One real server on the test's private Redis, seeded with every kind of record (catalogue with a
price history, stock, a held stock answer, a quarantined scrape, change events, a failed job, a
run, a probed endpoint, a mute), so that optional and nullable members are served filled in,
not only empty. Every JSON operation of the route table must be called at least once.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import jsonschema  # type: ignore[import-untyped]  # schemathesis brings it
import msgspec
import pytest
from redis.asyncio import Redis

from tests.worker.api_harness import (
    PREFIX,
    TOKEN,
    Api,
    add_events,
    add_failed_job,
    event,
    hold_stock,
    quarantine,
    record_run,
    running_api,
)
from tests.worker.test_explorer_pages import seed
from vultr_scraper_core.store.changes import ChangeFeed
from vultr_scraper_core.store.health import HealthStore, ProbeResult
from vultr_scraper_worker.api.app import OPENAPI_PATH, all_routes
from vultr_scraper_worker.api.openapi import REF_TEMPLATE
from vultr_scraper_worker.api.routing import Route

JSON_TYPES = ("application/json", "application/problem+json")

# (method, path, token?) for every JSON operation; errors included on purpose.
CALLS: list[tuple[str, str, bool]] = [
    ("GET", "/healthz", False),
    ("GET", "/api/v1/health", False),
    ("GET", "/api/v1/jobs", False),
    ("GET", "/api/v1/jobs?limit=0", False),  # 400
    ("GET", "/api/v1/plans", False),
    ("GET", "/api/v1/plans?limit=1", False),  # a cursor and has_more
    ("GET", "/api/v1/plans?at=2d&gpu=a100", False),
    ("GET", "/api/v1/availability", False),
    ("GET", "/api/v1/availability?limit=1", False),
    ("GET", "/api/v1/changes", False),
    ("GET", "/api/v1/changes?kind=nothing", False),  # 400
    ("GET", "/api/v1/catalog", False),
    ("GET", "/api/v1/apps", False),
    ("GET", "/api/v1/k8s-versions", False),
    ("GET", "/api/v1/storage-clusters", False),
    ("GET", "/api/v1/isos", False),
    ("GET", "/api/v1/databases", False),
    ("GET", "/api/v1/plans/vc2-1c-1gb", False),
    ("GET", "/api/v1/plans/no-such-plan", False),  # 404
    ("GET", "/api/v1/plans/vc2-1c-1gb/history?from=30d", False),
    ("GET", "/api/v1/stock/stats", False),
    ("GET", "/api/v1/maintenance", False),
    ("GET", "/api/v1/export/changes.csv?since=tomorrow", False),  # 400
    ("POST", "/api/v1/maintenance/vultr-api?for=2h&reason=moving", True),
    ("POST", "/api/v1/maintenance/no-such-endpoint?for=2h", True),  # 404
    ("GET", "/api/v1/maintenance", False),  # with the mute
    ("DELETE", "/api/v1/maintenance/vultr-api", True),
    ("DELETE", "/api/v1/maintenance/vultr-api", True),  # 404: no longer muted
    ("POST", "/api/v1/jobs/scrape-catalog/enqueue", False),  # 401
    ("POST", "/api/v1/jobs/scrape-catalog/enqueue", True),
    ("POST", "/api/v1/jobs/deliver-notification/enqueue", True),  # 400: needs arguments
    ("POST", "/api/v1/jobs/no-such-job/enqueue", True),  # 404
    ("GET", "/api/v1/jobs", False),  # with a queued job
    ("POST", "/api/v1/jobs/scrape-catalog:1764300000000/retry", True),
    ("POST", "/api/v1/jobs/scrape-catalog:1764300000000/retry", True),  # 409: retried already
    ("POST", "/api/v1/jobs/no-such-job:1/retry", True),  # 404
    ("POST", "/api/v1/jobs/no-such-job:1/abort", True),  # 404
]


async def _seed(redis: Redis) -> None:
    await seed(redis)  # plans with a price history and stock intervals
    now = datetime.now(UTC)
    await quarantine(redis, at=now, reasons=["3 of 40 plans lost their price"])
    await hold_stock(redis, "ewr", at=now, reasons=["the answer lists nothing in stock"])
    await add_events(
        redis,
        [
            event(
                "price_changed",
                "vc2-1c-1gb",
                at=now,
                region="fra",
                field="monthly_cost",
                old="5",
                new="6",
                detail={"source": "location_cost"},
            ),
        ],
    )
    await add_failed_job(redis, "scrape-catalog:1764300000000", enqueued_at=now.timestamp() - 60)
    await record_run(redis, "scrape-catalog", "success", 1.5)
    await record_run(redis, "check-health", "failed", 0.5)
    result = ProbeResult(at=now - timedelta(minutes=1), ok=False, status=503, latency_ms=20.0,
                         error="status 503", failures=("status 503",))  # fmt: skip
    await HealthStore(redis, PREFIX).record(
        "vultr-api",
        "https://api.vultr.com/v2",
        result,
        failure_threshold=1,
        success_threshold=1,
        feed=ChangeFeed(redis, PREFIX),
    )


def _schema(document: dict[str, Any], method: str, path: str, status: int, media: str) -> Any:
    template = _template(path.split("?")[0])
    operation = document["paths"][template][method.lower()]
    assert str(status) in operation["responses"], f"{method} {path}: {status} is not documented"
    content = operation["responses"][str(status)].get("content", {})
    assert media in content, f"{method} {path} {status}: {media} not documented ({list(content)})"
    return content[media]["schema"]


def _template(path: str) -> str:
    """The route template a concrete path is served by (the first that matches, as aiohttp's
    router picks: a literal route is listed before a templated one)."""
    for route in all_routes():
        pattern = re.sub(r"\\\{\w+\\\}", "[^/]+?", re.escape(route.path))
        if re.fullmatch(pattern, path):
            return route.path
    raise AssertionError(f"no route serves {path}")


async def _call(api: Api, method: str, path: str, token: bool) -> tuple[int, str, Any]:
    headers = {"Origin": api.url}
    async with api.request(
        method, path, token=TOKEN if token else None, headers=headers
    ) as response:
        body = await response.read()
        return response.status, response.content_type, msgspec.json.decode(body)


async def test_every_served_document_validates_against_its_schema(
    redis_url: str, redis: Redis
) -> None:
    await _seed(redis)
    called: set[tuple[str, str]] = set()
    seen_statuses: set[int] = set()
    async with running_api(redis_url) as api:
        document = await api.json("GET", OPENAPI_PATH)
        validator = jsonschema.Draft202012Validator
        for method, path, token in CALLS:
            status, media, body = await _call(api, method, path, token)
            assert media in JSON_TYPES, (method, path, status, media)
            schema = _schema(document, method, path, status, media)
            rooted = {**schema, "components": document["components"]}
            errors = sorted(validator(rooted).iter_errors(body), key=str)
            assert not errors, f"{method} {path} ({status}): {errors[0]}"
            called.add((method, _template(path.split("?")[0])))
            seen_statuses.add(status)
    # Every error status the API uses came up, as problem documents.
    assert {200, 201, 202, 400, 401, 404, 409, 503} <= seen_statuses
    json_operations = {
        (route.method, route.path)
        for route in all_routes()
        if route.path != OPENAPI_PATH
        and any(response.media_type == "application/json" for response in route.responses.values())
    }
    assert json_operations - called == set(), "JSON operations the contract test never called"


def _concrete(route: Route) -> str:
    """The route's path with each path parameter set to its documented example."""
    path = route.path
    for param in route.params:
        if param.location == "path":
            path = path.replace(f"{{{param.name}}}", quote(param.example, safe=":"))
    return path


@pytest.mark.parametrize("protect_reads", [False, True], ids=["open-reads", "protected-reads"])
async def test_a_throttled_client_gets_429_exactly_where_it_is_documented(
    redis_url: str, redis: Redis, protect_reads: bool
) -> None:
    """Every route is called, with the right token, by an address that has used up its failed
    logins: each answers 429 if and only if its operation documents 429, then as documented
    (the media type, a problem document valid against the schema, ``Retry-After``)."""
    await add_failed_job(redis, "scrape-catalog:1764300000000")  # the job page's example
    async with running_api(redis_url, max_failed_logins=1, protect_reads=protect_reads) as api:
        document = await api.json("GET", OPENAPI_PATH)
        async with api.request("GET", "/api/v1/jobs", token="wrong", headers={}) as response:
            assert response.status == (401 if protect_reads else 200)
        if not protect_reads:  # an open read does not look at the token: log in wrong once
            async with api.request(
                "POST", "/login", data={"token": "wrong"}, headers={"Origin": api.url}
            ) as response:
                assert response.status == 401
        throttled: list[str] = []
        for route in all_routes():
            documented = document["paths"][route.path][route.method.lower()]["responses"]
            async with api.request(
                route.method,
                _concrete(route),
                token=TOKEN,
                headers={"Origin": api.url},
                data={"token": TOKEN} if route.form is not None else None,
            ) as response:
                status, media = response.status, response.content_type
                retry_after = response.headers.get("Retry-After", "")
                body = await response.read()
            where = f"{route.method} {route.path}: {status}"
            assert (status == 429) == ("429" in documented), where
            if status != 429:
                continue
            throttled.append(f"{route.method} {route.path}")
            assert retry_after.isdigit() and 1 <= int(retry_after) <= 60, where
            assert "Retry-After" in documented["429"]["headers"], where
            assert media in documented["429"]["content"], f"{where} {media}"
            assert media == ("text/html" if route.html else "application/problem+json"), where
            if not route.html:
                schema = documented["429"]["content"][media]["schema"]
                rooted = {**schema, "components": document["components"]}
                jsonschema.Draft202012Validator(rooted).validate(msgspec.json.decode(body))
    # Throttling is about the token: the routes that never read one are not throttled.
    assert "GET /healthz" not in throttled and "POST /login" in throttled
    assert ("GET /api/v1/plans" in throttled) == protect_reads
    assert {"GET /", "GET /jobs/{id}", "POST /api/v1/jobs/{name}/enqueue"} <= set(throttled)


def test_every_json_document_schema_is_generated_from_a_struct() -> None:
    """No hand-written JSON Schema: a JSON response (other than the OpenAPI document itself)
    names its Struct, or is an error (the generated ``Error`` problem document)."""
    for route in all_routes():
        for status, response in route.responses.items():
            if response.media_type != "application/json" or route.path == OPENAPI_PATH:
                continue
            assert response.schema is None, (route.path, status)
            assert response.struct is not None or status >= 400, (route.path, status)
            if response.struct is not None:
                assert issubclass(response.struct, msgspec.Struct), (route.path, status)


def test_component_names_are_the_struct_names() -> None:
    """Each component is one Struct (two Structs of the same name would be merged or renamed
    by the generator, and a client's models would no longer say which is which)."""
    from vultr_scraper_worker.api.openapi import build_document, struct_schemas

    refs, components = struct_schemas(all_routes())
    names = {ref["$ref"].rsplit("/", 1)[1] for ref in refs.values()}
    assert names == {struct.__name__ for struct in refs}
    assert REF_TEMPLATE.format(name="Error") in {ref["$ref"] for ref in refs.values()}
    document = build_document(all_routes(), protect_reads=False)
    assert document["components"]["schemas"] == components


def _arrays(schema: Any) -> list[dict[str, Any]]:
    if isinstance(schema, list):
        return [found for item in schema for found in _arrays(item)]
    if not isinstance(schema, dict):
        return []
    here = [schema] if schema.get("type") == "array" else []
    return here + [found for value in schema.values() for found in _arrays(value)]


def test_every_array_schema_says_its_items() -> None:
    """Client generators refuse an array without ``items`` (msgspec leaves it out for
    ``list[Any]``), and drop every model that refers to it."""
    from vultr_scraper_worker.api.openapi import build_document

    document = build_document(all_routes(), protect_reads=False)
    missing = [array for array in _arrays(document) if "items" not in array]
    assert missing == []


async def test_the_enqueueable_jobs_are_exactly_those_the_endpoint_accepts(
    redis_url: str,
) -> None:
    """The enqueue route's ``name`` lists this worker's jobs that take no arguments: each one
    listed is enqueued (202), each job left out is refused (deliver-notification needs
    arguments: 400), and so is a name that is no job (404)."""
    async with running_api(redis_url) as api:
        document = await api.json("GET", OPENAPI_PATH)
        operation = document["paths"]["/api/v1/jobs/{name}/enqueue"]["post"]
        (name,) = operation["parameters"]
        listed = name["schema"]["enum"]
        assert name["example"] in listed
        served = [plan.name for plan in api.state.plans]
        assert "deliver-notification" in served and "deliver-notification" not in listed
        for job in served:
            status, _, body = await _call(api, "POST", f"/api/v1/jobs/{job}/enqueue", True)
            assert (status == 202) == (job in listed), (job, status, body)
            if job not in listed:
                assert status == 400 and "needs arguments" in body["detail"], body
        status, _, _ = await _call(api, "POST", "/api/v1/jobs/no-such-job/enqueue", True)
        assert status == 404
