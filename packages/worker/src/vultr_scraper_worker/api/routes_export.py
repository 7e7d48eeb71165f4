"""``/api/v1/export/{what}.{format}`` and ``/api/v1/export/snapshot.sqlite``: the ``export``
command over HTTP, streamed.

The rows are read first (so a bad range or an unreadable archive file is a JSON error, not a
truncated file), then encoded part by part off the event loop and streamed as they are ready.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

from aiohttp import web

from vultr_scraper_core.history import MEDIA_TYPES
from vultr_scraper_core.store.codec import utcnow
from vultr_scraper_worker.api.params import choice, timestamp
from vultr_scraper_worker.api.reads_catalog import EPOCH, archive_errors
from vultr_scraper_worker.api.routing import Response, Route
from vultr_scraper_worker.api.state import state_of

_DONE = object()


async def export_file(request: web.Request, args: dict[str, Any]) -> web.StreamResponse:
    since, until = args["since"], args["until"]
    # Nothing was recorded before 1970 (and Redis refuses negative stream ids).
    if since is not None and since <= EPOCH:
        since = None
    if until is not None:
        until = max(until, EPOCH + timedelta(milliseconds=1))
    if args["what"] != "catalog" and since is not None and until is not None and since >= until:
        until = since  # an empty range, as /api/v1/changes answers it
    return await _stream(request, args["what"], args["format"], since, until)


async def export_snapshot(request: web.Request, args: dict[str, Any]) -> web.StreamResponse:
    return await _stream(request, "snapshot", "sqlite", None, None)


async def _stream(
    request: web.Request, what: str, fmt: str, since: datetime | None, until: datetime | None
) -> web.StreamResponse:
    from vultr_scraper_core.history.export import export

    with archive_errors():
        found = await export(state_of(request).history(), what, fmt, since, until)
    stamp = utcnow().strftime("%Y%m%dT%H%M%SZ")
    response = web.StreamResponse(
        headers={
            "Content-Type": MEDIA_TYPES[fmt],
            "Content-Disposition": f'attachment; filename="vultr-{what}-{stamp}.{fmt}"',
        }
    )
    if found.rows is not None:
        response.headers["X-Rows"] = str(found.rows)
    await response.prepare(request)
    while True:
        chunk = await asyncio.to_thread(_next, found.chunks)
        if chunk is _DONE:
            break
        assert isinstance(chunk, bytes)
        await response.write(chunk)
    await response.write_eof()
    return response


def _next(chunks: Iterator[bytes]) -> object:
    return next(chunks, _DONE)


def _in_path(param: Any) -> Any:
    return dataclasses.replace(param, location="path")


_FILE = Response(
    "The file: text/csv, application/x-ndjson, application/vnd.apache.parquet or "
    "application/vnd.sqlite3",
    media_type=None,
)
_ARCHIVE_ERROR = Response("An archive file needed for this range is missing or unreadable")

ROUTES = [
    # Before the templated route, which would otherwise see "snapshot" as a `what`.
    Route(
        "GET",
        "/api/v1/export/snapshot.sqlite",
        export_snapshot,
        operation_id="exportSnapshot",
        summary="The whole current catalogue as one SQLite file",
        tag="export",
        description=(
            "Tables plans, metal, regions, os (one row per record), catalog (one row per plan "
            "and region, as `/api/v1/plans` lists them) and meta. The same file as "
            "`vultr-scraper export --what snapshot`."
        ),
        responses={200: _FILE},
    ),
    Route(
        "GET",
        "/api/v1/export/{what}.{format}",
        export_file,
        operation_id="exportHistory",
        summary="Prices, stock, changes or the catalogue as CSV, Parquet or JSON lines",
        tag="export",
        description=(
            "Streams the same file as `vultr-scraper export --what WHAT --format FORMAT`, "
            "across the Redis window and the archive. `prices`, `stock` and `changes` select "
            "by `since`/`until`; `catalog` is the plan list as of `until` (default now). "
            "Columns: docs/catalogue.md. `X-Rows` gives the row count."
        ),
        params=(
            _in_path(choice("what", "What to export", ("prices", "stock", "changes", "catalog"))),
            _in_path(choice("format", "The file format", ("csv", "parquet", "jsonl"))),
            timestamp("since", "From this time (prices, stock, changes)"),
            timestamp("until", "Before this time; for catalog, the time it is listed as of"),
        ),
        responses={200: _FILE, 500: _ARCHIVE_ERROR},
    ),
]
