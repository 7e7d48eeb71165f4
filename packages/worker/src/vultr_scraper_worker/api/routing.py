"""The route table: each ``Route`` is registered with aiohttp *and* described in OpenAPI.

A handler receives the request and its already-parsed, already-authorised arguments. Because
the router and the document are built from the same list, a route cannot be served without
being documented, and the documented parameters are the ones the handler parses.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import msgspec
from aiohttp import web

from vultr_scraper_worker.api.auth import Access
from vultr_scraper_worker.api.params import Param, parse_params
from vultr_scraper_worker.api.state import state_of

Handler = Callable[[web.Request, dict[str, Any]], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Response:
    description: str
    media_type: str | None = "application/json"
    schema: Mapping[str, Any] | None = None
    headers: Mapping[str, str] = field(default_factory=dict)  # name -> description
    # The msgspec Struct served: its JSON Schema is generated into the document's components
    # (``schema`` is then left None), so the schema cannot drift from what is encoded.
    struct: type | None = None


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    handler: Handler
    operation_id: str
    summary: str
    tag: str
    responses: Mapping[int, Response]
    access: Access = Access.READ
    params: tuple[Param, ...] = ()
    # Fields of an application/x-www-form-urlencoded body (name -> JSON Schema), if any.
    form: Mapping[str, Mapping[str, Any]] | None = None
    form_required: tuple[str, ...] = ()
    description: str = ""
    html: bool = False  # errors are rendered as a small HTML page instead of JSON
    uses_redis: bool = True  # may answer 503 when Redis is unreachable
    # Reads a bearer token sent even where none is needed (to offer the write actions): like
    # any token, it is a login attempt, so a throttled client gets 429 there too.
    reads_token: bool = False
    # The query comes from an HTML GET form, which sends every field: a blank one is absent.
    form_query: bool = False

    def aiohttp_handler(self) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        route = self

        async def handle(request: web.Request) -> web.StreamResponse:
            state = state_of(request)
            state.auth.authorize(request, route.access)
            args = parse_params(
                route.params,
                request.query,
                request.match_info,
                blank_is_absent=route.form_query,
            )
            return await route.handler(request, args)

        handle.__name__ = self.operation_id
        return handle


_encoder = msgspec.json.Encoder(decimal_format="string")


def json_response(
    document: Any, *, status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    """JSON via msgspec: Structs, datetimes (RFC 3339) and Decimals (as strings) included."""
    return web.Response(
        body=_encoder.encode(document),
        status=status,
        content_type="application/json",
        headers=headers,
    )
