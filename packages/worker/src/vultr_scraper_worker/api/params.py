"""Typed query and path parameters: one declaration drives parsing, 400 messages and OpenAPI.

A ``Param`` carries the JSON Schema of its value and the parser that accepts exactly the values
that schema allows, so the document and the handlers cannot disagree. Unknown query parameters
are refused with 400 rather than silently ignored: a misspelt filter would otherwise return an
unfiltered answer that looks right.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

from multidict import MultiMapping

from vultr_scraper_core.formats import (
    AGE_PATTERN,
    CURSOR_PATTERN,
    parse_cursor,
    parse_money,
    parse_time,
)
from vultr_scraper_worker.api.errors import bad_request

Parser = Callable[[str], Any]


@dataclass(frozen=True)
class Param:
    name: str
    description: str
    schema: Mapping[str, Any]
    parse: Parser
    location: Literal["query", "path"] = "query"
    required: bool = False
    repeated: bool = False  # ?kind=a&kind=b
    default: Any = None
    example: str = ""  # a valid raw value (docs and tests)
    invalid: str = ""  # a raw value the parser refuses with 400 (tests)
    extra: Mapping[str, Any] = field(default_factory=dict)
    # The name of a set of values known only at run time (from the configuration, e.g. the
    # jobs that can be enqueued): the document lists them as the schema's ``enum``.
    choices: str = ""

    def openapi(self, choices: Mapping[str, Sequence[str]] | None = None) -> dict[str, Any]:
        schema: dict[str, Any] = dict(self.schema)
        known = (choices or {}).get(self.choices) if self.choices else None
        if known:  # JSON Schema wants at least one value in an enum
            schema["enum"] = list(known)
        if self.repeated:
            schema = {"type": "array", "items": schema}
        elif self.default is not None and "default" not in schema:
            schema["default"] = self.default
        document: dict[str, Any] = {
            "name": self.name,
            "in": self.location,
            "description": self.description,
            "required": self.required or self.location == "path",
            "schema": schema,
        }
        if self.repeated:
            document.update(style="form", explode=True)
        raw_example = self.example
        if known and raw_example not in known:
            raw_example = known[0]  # the document's examples validate against it
        if raw_example:
            example = typed_example(self.schema, raw_example)
            document["example"] = [example] if self.repeated else example
        return document


def typed_example(schema: Mapping[str, Any], raw: str) -> Any:
    """The raw query text as the JSON value the schema describes (``limit: 100``, not
    ``"100"``), so the document validates its own examples and generators type them right."""
    kind = schema.get("type")
    if kind == "integer":
        return int(raw)
    if kind == "number":
        number = float(raw)
        return int(number) if number.is_integer() else number
    if kind == "boolean":
        return raw == "true"
    return raw


def parse_params(
    params: Iterable[Param],
    query: MultiMapping[str],
    path: Mapping[str, str],
    *,
    blank_is_absent: bool = False,
) -> dict[str, Any]:
    """The parsed arguments, or ApiError(400) naming the parameter and what it accepts.
    ``blank_is_absent``: an empty query value counts as not given (an HTML form sends every
    field, filled or not)."""
    declared = list(params)
    query_names = {param.name for param in declared if param.location == "query"}
    unknown = sorted(set(query) - query_names)
    if unknown:
        accepted = ", ".join(sorted(query_names)) or "no query parameters"
        raise bad_request(f"unknown query parameter {unknown[0]!r}; accepted: {accepted}")
    args: dict[str, Any] = {}
    for param in declared:
        if param.location == "path":
            raws = [path[param.name]] if param.name in path else []
        else:
            raws = list(query.getall(param.name, []))
            if blank_is_absent:
                raws = [raw for raw in raws if raw != ""]
        if not raws:
            if param.required:
                raise bad_request(f"parameter {param.name!r} is required")
            args[param.name] = [] if param.repeated else param.default
            continue
        if len(raws) > 1 and not param.repeated:
            raise bad_request(f"parameter {param.name!r} given more than once")
        values = []
        for raw in raws:
            try:
                values.append(param.parse(raw))
            except ValueError as error:
                shown = raw if len(raw) <= 60 else raw[:57] + "..."
                got = "" if repr(raw) in str(error) else f" (got {shown!r})"
                raise bad_request(f"parameter {param.name!r}: {error}{got}") from None
        args[param.name] = values if param.repeated else values[0]
    return args


# Parsers and schemas. Each helper returns a Param whose schema matches its parser.

_INTEGER = re.compile(r"-?[0-9]{1,18}")


def integer(
    name: str, description: str, *, minimum: int, maximum: int, default: int | None = None
) -> Param:
    def parse(raw: str) -> int:
        if not _INTEGER.fullmatch(raw) or not minimum <= int(raw) <= maximum:
            raise ValueError(f"must be an integer from {minimum} to {maximum}")
        return int(raw)

    return Param(
        name,
        description,
        {"type": "integer", "minimum": minimum, "maximum": maximum},
        parse,
        default=default,
        example=str(default if default is not None else minimum),
        invalid="many",
    )


def decimal(name: str, description: str, *, minimum: int, maximum: int) -> Param:
    """An exact decimal number (money): parsed to ``Decimal``, never to float."""

    def parse(raw: str) -> Decimal:
        try:
            value: Decimal | None = parse_money(raw)
        except ValueError:
            value = None
        if value is None or not minimum <= value <= maximum:
            raise ValueError(f"must be a number from {minimum} to {maximum}")
        return value

    return Param(
        name,
        description,
        {"type": "number", "minimum": minimum, "maximum": maximum},
        parse,
        example="24.5",
        invalid="cheap",
    )


def boolean(name: str, description: str) -> Param:
    def parse(raw: str) -> bool:
        if raw not in ("true", "false"):
            raise ValueError("must be true or false")
        return raw == "true"

    return Param(name, description, {"type": "boolean"}, parse, example="true", invalid="yes")


def text(
    name: str,
    description: str,
    *,
    pattern: str = r"^[A-Za-z0-9._:-]+$",
    max_length: int = 100,
    location: Literal["query", "path"] = "query",
    example: str = "",
    invalid: str = "no spaces or / allowed",
) -> Param:
    compiled = re.compile(pattern)

    def parse(raw: str) -> str:
        if not 1 <= len(raw) <= max_length or not compiled.search(raw):
            raise ValueError(f"must be 1 to {max_length} characters matching {pattern}")
        return raw

    return Param(
        name,
        description,
        {"type": "string", "minLength": 1, "maxLength": max_length, "pattern": pattern},
        parse,
        location=location,
        example=example,
        invalid="" if location == "path" else invalid,
    )


def choice(name: str, description: str, values: Iterable[str], *, repeated: bool = False) -> Param:
    allowed = tuple(values)

    def parse(raw: str) -> str:
        if raw not in allowed:
            raise ValueError(f"must be one of {', '.join(allowed)}")
        return raw

    return Param(
        name,
        description,
        {"type": "string", "enum": list(allowed)},
        parse,
        repeated=repeated,
        example=allowed[0],
        invalid="no-such-value",
    )


def cursor(name: str, description: str) -> Param:
    """A change-feed position: a Redis stream id ``<ms>-<seq>`` (or ``<ms>``)."""
    return Param(
        name,
        description,
        {"type": "string", "pattern": CURSOR_PATTERN, "maxLength": 39},
        parse_cursor,
        example="1764300000000-0",
        invalid="yesterday",
    )


def timestamp(name: str, description: str) -> Param:
    """A time: RFC 3339 date-time, a date (midnight UTC) or an age (``24h``: that long ago),
    read by the same parser as the CLI's ``--since`` / ``--at``."""
    return Param(
        name,
        description,
        {
            "anyOf": [
                {"type": "string", "format": "date-time"},
                {"type": "string", "format": "date"},
                {"type": "string", "pattern": AGE_PATTERN},
            ]
        },
        parse_time,
        example="2026-01-15T10:00:00Z",
        invalid="last tuesday",
    )
