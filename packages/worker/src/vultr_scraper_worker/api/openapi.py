"""The OpenAPI 3.1 document, generated from the same route table the router is built from."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from vultr_scraper_core import __version__
from vultr_scraper_worker.api.auth import token_needed
from vultr_scraper_worker.api.params import Param
from vultr_scraper_worker.api.routing import Response, Route

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {"error": {"type": "string", "description": "What went wrong, for people."}},
}
_ERROR_REF = {"$ref": "#/components/schemas/Error"}
SECURITY_SCHEMES: dict[str, Any] = {
    "bearerToken": {
        "type": "http",
        "scheme": "bearer",
        "description": "The token in the file named by [http] token_file.",
    },
    "sessionCookie": {
        "type": "apiKey",
        "in": "cookie",
        "name": "vs_session",
        "description": "Set by POST /login; state-changing requests must also be same-origin.",
    },
}

_GENERIC = {
    400: "Invalid parameter (the message names it)",
    401: "Missing or invalid token",
    403: "Refused: no token is configured, or a cross-site request",
    404: "Not found",
    503: "Redis (or the data) is unavailable",
}


def _response(status: int, response: Response, html: bool) -> dict[str, Any]:
    document: dict[str, Any] = {"description": response.description}
    if response.media_type is not None:
        schema = response.schema if response.schema is not None else {}
        document["content"] = {response.media_type: {"schema": dict(schema)}}
    if response.headers:
        document["headers"] = {
            name: {"description": text, "schema": {"type": "string"}}
            for name, text in response.headers.items()
        }
    return document


def _error(status: int, html: bool) -> dict[str, Any]:
    media = "text/html" if html else "application/json"
    schema: dict[str, Any] = {"type": "string"} if html else _ERROR_REF
    document: dict[str, Any] = {
        "description": _GENERIC[status],
        "content": {media: {"schema": schema}},
    }
    if status == 401:
        document["headers"] = {
            "WWW-Authenticate": {"description": "Bearer challenge", "schema": {"type": "string"}}
        }
    return document


def operation(route: Route, *, protect_reads: bool, public_badges: bool = False) -> dict[str, Any]:
    needs_token = token_needed(
        route.access, protect_reads=protect_reads, public_badges=public_badges
    )
    responses: dict[str, Any] = {
        str(status): _response(status, response, route.html)
        for status, response in sorted(route.responses.items())
    }
    automatic: list[int] = []
    if route.params or route.form is not None:
        automatic.append(400)
    if needs_token:
        automatic += [401, 403]
    if route.uses_redis:
        automatic.append(503)
    for status in automatic:
        responses.setdefault(str(status), _error(status, route.html))
    document: dict[str, Any] = {
        "operationId": route.operation_id,
        "summary": route.summary,
        "tags": [route.tag],
        "parameters": [_parameter(route, param) for param in route.params],
        "responses": responses,
        "security": [{"bearerToken": []}, {"sessionCookie": []}] if needs_token else [],
    }
    if route.description:
        document["description"] = route.description
    if route.form is not None:
        document["requestBody"] = {
            "required": bool(route.form_required),
            "content": {
                "application/x-www-form-urlencoded": {
                    "schema": {
                        "type": "object",
                        "properties": {name: dict(schema) for name, schema in route.form.items()},
                        "required": list(route.form_required),
                    }
                }
            },
        }
    return document


def build_document(
    routes: Iterable[Route], *, protect_reads: bool, public_badges: bool = False
) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        paths.setdefault(route.path, {})[route.method.lower()] = operation(
            route, protect_reads=protect_reads, public_badges=public_badges
        )
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "vultr-scraper",
            "version": __version__,
            "summary": "Vultr's catalogue history, stock, endpoint health and the job queue.",
            "description": (
                "Served by the vultr-scraper worker. Read endpoints are open unless "
                "[http] protect_reads is set; write endpoints need the bearer token from "
                "[http] token_file. Money is exact: prices are decimal strings in USD."
            ),
            "license": {"name": "MIT", "identifier": "MIT"},
        },
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": {"Error": ERROR_SCHEMA},
            "securitySchemes": SECURITY_SCHEMES,
        },
    }


def _parameter(route: Route, param: Param) -> dict[str, Any]:
    document = param.openapi()
    if route.form_query and param.location == "query":
        blank = {"type": "string", "maxLength": 0}  # a form field left empty: not given
        if param.repeated:
            document["schema"]["items"] = {"anyOf": [document["schema"]["items"], blank]}
        else:
            document["schema"] = {"anyOf": [document["schema"], blank]}
    return document
