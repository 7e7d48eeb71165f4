"""Cursor paging for the list routes, with RFC 8288 ``Link: <...>; rel="next"`` headers.

A page's ``cursor`` is the sort key of its last row, so the next page starts right after that
row even when rows were added or removed in between (no row is skipped or shown twice, as an
offset would). The change feed's cursor is its event id; the others are the key's parts joined
by ``~`` (``5.00~0.007~vc2-1c-1gb~fra`` for plans, ``vc2-1c-1gb~fra`` for stock and its
statistics). Every string the documented pattern allows is a valid cursor (it names a position,
whether or not a row is there), so the schema and the parser agree exactly.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from aiohttp import web

from vultr_scraper_worker.api.params import Param, integer

SEPARATOR = "~"
# The page size of the paged routes (the change feed's is smaller: its own parameter) and how
# the OpenAPI document describes the header that links to the next page.
PAGE_LIMIT = integer("limit", "Page size", minimum=1, maximum=100_000, default=1000)
LINK_HEADER = {"Link": 'The next page (`rel="next"`), when there is one'}
# A key part: no separator, no control characters.
PART = r"[^~\x00-\x1f]{1,100}"
AMOUNT = r"[0-9]{1,20}(\.[0-9]{1,40})?"


def key_cursor(
    description: str,
    pattern: str,
    example: str,
    read: Callable[[list[str]], Any],
    *,
    invalid: str = "no-separator",  # a value the pattern refuses, for the contract tests
) -> Param:
    """``cursor``: start after this position (exclusive), as the previous page returned it."""
    compiled = re.compile(pattern)

    def parse(raw: str) -> Any:
        if not compiled.fullmatch(raw):
            raise ValueError(f"must be the `cursor` of a previous page (matching {pattern})")
        return read(raw.split(SEPARATOR))

    return Param(
        "cursor",
        description,
        {"type": "string", "pattern": pattern, "maxLength": 300},
        parse,
        example=example,
        invalid=invalid,
    )


def _read_pair(parts: list[str]) -> tuple[str, str]:
    plan, region = parts
    return plan, region


# The (plan, region) pair: the cursor of the stock listing and of the stock statistics.
PAIR_CURSOR = key_cursor(
    "Start after this pair: the `cursor` of the previous page (plan~region)",
    f"^{PART}~{PART}$",
    "vc2-1c-1gb~fra",
    _read_pair,
)


def join_cursor(*parts: str) -> str:
    return SEPARATOR.join(parts)


def amount_text(value: Decimal | None) -> str:
    """A price as a cursor part: plain digits (never an exponent), empty when absent."""
    return format(value, "f") if value is not None else ""


def next_link(request: web.Request, name: str, value: str) -> dict[str, str]:
    """The ``Link`` header to the page after this one: the same query with ``name=value``."""
    query = request.rel_url.query.copy()
    query[name] = value
    return {"Link": f'<{request.rel_url.with_query(query)}>; rel="next"'}


def page_after(rows: list[Any], limit: int) -> tuple[list[Any], bool]:
    """The first ``limit`` rows and whether more follow."""
    return rows[:limit], len(rows) > limit
