"""The OpenAPI document matches the running app: same routes, and parameters the handlers honour."""

from __future__ import annotations

import html
import re
from typing import Any

import pytest

from tests.worker.api_harness import TOKEN, Api, running_api
from vultr_scraper_worker.api.app import all_routes
from vultr_scraper_worker.api.params import typed_example

METHODS = {"get", "post", "put", "patch", "delete", "head", "options"}


def documented(document: dict[str, Any]) -> set[tuple[str, str]]:
    return {
        (method.upper(), path)
        for path, item in document["paths"].items()
        for method in item
        if method in METHODS
    }


async def test_every_route_is_documented_and_every_operation_is_served(redis_url: str) -> None:
    async with running_api(redis_url) as api:
        document = await api.json("GET", "/api/v1/openapi.json")
        served = {
            (route.method, route.resource.canonical)
            for route in api.handle.app.router.routes()
            if route.resource is not None
        }
    assert document["openapi"] == "3.1.0"
    # HEAD and OPTIONS are HTTP's own, served on every path and left out of the document.
    generic = {(method, path) for method, path in served if method in ("HEAD", "OPTIONS")}
    assert served - generic == documented(document)
    paths = {path for _, path in served}
    assert {path for method, path in generic if method == "OPTIONS"} == paths
    gets = {path for method, path in served if method == "GET"}
    assert {path for method, path in generic if method == "HEAD"} == gets
    assert len(served - generic) == len(all_routes())  # no route registered twice


async def test_operations_are_unique_and_complete(redis_url: str) -> None:
    async with running_api(redis_url) as api:
        document = await api.json("GET", "/api/v1/openapi.json")
    ids = [op["operationId"] for item in document["paths"].values() for op in item.values()]
    assert len(ids) == len(set(ids))
    for path, item in document["paths"].items():
        for method, op in item.items():
            assert op["summary"] and op["tags"], (method, path)
            assert op["responses"], (method, path)
            names = [(p["in"], p["name"]) for p in op["parameters"]]
            assert len(names) == len(set(names)), (method, path)
            templated = set(re.findall(r"\{(\w+)\}", path))
            assert {name for where, name in names if where == "path"} == templated, path
            if any(where == "query" for where, _ in names):
                assert "400" in op["responses"], (method, path)
            if op["security"]:
                assert {"401", "403"} <= set(op["responses"]), (method, path)


async def test_documented_parameters_match_the_route_table(redis_url: str) -> None:
    async with running_api(redis_url) as api:
        document = await api.json("GET", "/api/v1/openapi.json")
    for route in all_routes():
        operation = document["paths"][route.path][route.method.lower()]
        assert [p["name"] for p in operation["parameters"]] == [p.name for p in route.params]
        for param, spec in zip(route.params, operation["parameters"], strict=True):
            assert spec["in"] == param.location
            assert spec["required"] == (param.required or param.location == "path")


def _query_operations() -> list[tuple[str, str, str, str, str]]:
    """(method, path, param, example, invalid) for every query parameter of every GET route."""
    return [
        (route.method, route.path, param.name, param.example, param.invalid)
        for route in all_routes()
        for param in route.params
        if param.location == "query" and route.method == "GET"
    ]


def _concrete(path: str) -> str:
    """``path`` with each path parameter replaced by its documented example."""
    route = next(route for route in all_routes() if route.path == path)
    for param in route.params:
        if param.location == "path":
            path = path.replace("{" + param.name + "}", param.example)
    return path


async def _status(api: Api, path: str) -> tuple[int, str]:
    async with api.request("GET", path, token=TOKEN) as response:
        return response.status, html.unescape(await response.text())


@pytest.mark.parametrize(
    ("method", "path", "name", "example", "invalid"),
    _query_operations(),
    ids=lambda value: str(value),
)
async def test_each_documented_query_parameter_is_honoured(
    redis_url: str, method: str, path: str, name: str, example: str, invalid: str
) -> None:
    """The documented example is accepted, the invalid value is refused naming the parameter."""
    async with running_api(redis_url) as api:
        document = await api.json("GET", "/api/v1/openapi.json")
        spec = next(p for p in document["paths"][path]["get"]["parameters"] if p["name"] == name)
        value = spec["example"][0] if isinstance(spec["example"], list) else spec["example"]
        # The example is the JSON value its schema describes (limit: 100, not "100").
        param = next(
            param
            for route in all_routes()
            if (route.method, route.path) == ("GET", path)
            for param in route.params
            if param.name == name
        )
        assert value == typed_example(param.schema, example)
        if param.schema.get("type") in ("integer", "number", "boolean"):
            assert not isinstance(value, str), (name, value)
        status, body = await _status(api, f"{_concrete(path)}?{name}={example}")
        assert status != 400, body
        if invalid:
            status, body = await _status(api, f"{_concrete(path)}?{name}={invalid}")
            assert status == 400 and f"'{name}'" in body, body


@pytest.mark.parametrize("route", all_routes(), ids=lambda route: f"{route.method} {route.path}")
async def test_undocumented_query_parameters_are_refused(redis_url: str, route: Any) -> None:
    async with running_api(redis_url) as api:
        path = _concrete(route.path)
        async with api.request(route.method, f"{path}?undocumented=1", token=TOKEN) as response:
            assert response.status == 400
            assert "unknown query parameter 'undocumented'" in html.unescape(await response.text())
