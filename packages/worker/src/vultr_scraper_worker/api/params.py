"""Typed query and path parameters: one declaration drives parsing, 400 messages and OpenAPI.

A ``Param`` carries the JSON Schema of its value and the parser that accepts exactly the values
that schema allows, so the document and the handlers cannot disagree. Unknown query parameters
are refused with 400 rather than silently ignored: a misspelt filter would otherwise return an
unfiltered answer that looks right.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from multidict import MultiMapping

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

    def openapi(self) -> dict[str, Any]:
        schema: dict[str, Any] = dict(self.schema)
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
        if self.example:
            document["example"] = [self.example] if self.repeated else self.example
        return document


def parse_params(
    params: Iterable[Param], query: MultiMapping[str], path: Mapping[str, str]
) -> dict[str, Any]:
    """The parsed arguments, or ApiError(400) naming the parameter and what it accepts."""
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
                raise bad_request(f"parameter {param.name!r}: {error} (got {shown!r})") from None
        args[param.name] = values if param.repeated else values[0]
    return args


# Parsers and schemas. Each helper returns a Param whose schema matches its parser.

_INTEGER = re.compile(r"-?[0-9]{1,18}")
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_MAX_NUMBER_TEXT = 100


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
            plain = len(raw) <= _MAX_NUMBER_TEXT and _DECIMAL.fullmatch(raw)
            value = Decimal(raw) if plain else None
        except InvalidOperation:
            value = None
        if value is None or not value.is_finite() or not minimum <= value <= maximum:
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


# 19 digits always fit Redis' unsigned 64-bit id parts, so the pattern alone decides.
_STREAM_ID = re.compile(r"[0-9]{1,19}(?:-[0-9]{1,19})?")


def cursor(name: str, description: str) -> Param:
    """A change-feed position: a Redis stream id ``<ms>-<seq>`` (or ``<ms>``)."""

    def parse(raw: str) -> str:
        if not _STREAM_ID.fullmatch(raw):
            raise ValueError("must be an event id such as 1764300000000-0")
        return raw

    return Param(
        name,
        description,
        {"type": "string", "pattern": r"^[0-9]{1,19}(-[0-9]{1,19})?$", "maxLength": 39},
        parse,
        example="1764300000000-0",
        invalid="yesterday",
    )


_RFC3339 = re.compile(
    r"(?P<date>[0-9]{4}-[0-9]{2}-[0-9]{2})"
    r"(?:[Tt ](?P<h>[0-9]{2}):(?P<m>[0-9]{2}):(?P<s>[0-9]{2})(?:\.(?P<frac>[0-9]+))?"
    r"(?P<tz>[Zz]|[+-][0-9]{2}:[0-9]{2}))?"
)


def parse_timestamp(raw: str) -> datetime:
    """RFC 3339 date-time (``2026-01-15T10:00:00Z``) or a full date (``2026-01-15``, meaning
    midnight UTC). Always timezone-aware UTC. Raises ValueError with the accepted forms."""
    match = _RFC3339.fullmatch(raw)
    reason = "must be an RFC 3339 date-time (2026-01-15T10:00:00Z) or a date (2026-01-15)"
    if not match:
        raise ValueError(reason)
    try:
        day = date.fromisoformat(match["date"])
        if match["h"] is None:
            return datetime.combine(day, time(), UTC)
        hour, minute, second = int(match["h"]), int(match["m"]), int(match["s"])
        leap = second == 60  # RFC 3339 allows a leap second; Python does not
        micro = int((match["frac"] or "0")[:6].ljust(6, "0"))
        zone = UTC
        if match["tz"] not in ("Z", "z"):
            sign = 1 if match["tz"][0] == "+" else -1
            offset = timedelta(hours=int(match["tz"][1:3]), minutes=int(match["tz"][4:6]))
            if offset >= timedelta(hours=24):
                raise ValueError(reason)
            zone = timezone(sign * offset)
        value = datetime(
            day.year, day.month, day.day, hour, minute, 59 if leap else second, micro, zone
        )
        return value.astimezone(UTC)
    except (ValueError, OverflowError):
        raise ValueError(reason) from None


def timestamp(name: str, description: str) -> Param:
    return Param(
        name,
        description,
        {
            "anyOf": [
                {"type": "string", "format": "date-time"},
                {"type": "string", "format": "date"},
            ]
        },
        parse_timestamp,
        example="2026-01-15T10:00:00Z",
        invalid="last tuesday",
    )
