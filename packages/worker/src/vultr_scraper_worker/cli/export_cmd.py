"""``vultr-scraper export``: prices, stock, changes or the catalogue as CSV, Parquet or JSON
lines, and the current catalogue as one SQLite file, across the Redis window and the archive
(``vultr_scraper_core.history.export``, the same code as ``/api/v1/export``)."""

from __future__ import annotations

import os
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import click

from vultr_scraper_core.history import EXPORT_FORMATS, EXPORTS, export_problem
from vultr_scraper_worker.cli.catalog_cmd import WHEN, read_history
from vultr_scraper_worker.cli.common import State, fail, one_line, quiet_option
from vultr_scraper_worker.exit_status import ExitStatus

if TYPE_CHECKING:
    from vultr_scraper_core.history.export import Export
    from vultr_scraper_core.history.query import History

PROGRESS_EVERY = 2.0  # seconds between progress lines on stderr


@click.command("export", short_help="History and the catalogue as CSV, Parquet, JSONL or SQLite.")
@click.option(
    "--what",
    type=click.Choice(EXPORTS),
    required=True,
    help="prices (gpuhunt's columns plus validity), stock (intervals), changes (the feed), "
    "catalog (plans per region, at --until), or snapshot (the current catalogue, SQLite).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(EXPORT_FORMATS),
    help="csv, parquet or jsonl (default csv); sqlite for --what snapshot (its default).",
)
@click.option("--since", metavar="WHEN", callback=WHEN, help="From this time (ISO 8601, or 7d).")
@click.option(
    "--until", metavar="WHEN", callback=WHEN, help="Before this time (catalog: as of this time)."
)
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="Write to this file (replaced whole when done); default: stdout.",
)
@quiet_option
@click.pass_obj
def export(
    state: State,
    what: str,
    fmt: str | None,
    since: datetime | None,
    until: datetime | None,
    output: Path | None,
    quiet: bool,
) -> None:
    """Export history across the Redis window and the archive.

    Text formats go to stdout unless --output is given; Parquet and SQLite are binary and need
    --output or a stdout that is not a terminal. Progress and a summary go to stderr (-q: none).
    Columns are listed in docs/catalogue.md.
    """
    chosen = fmt or ("sqlite" if what == "snapshot" else "csv")
    problem = export_problem(what, chosen)
    if problem is not None:
        raise click.UsageError(problem)
    if since is not None and until is not None and since >= until:
        from vultr_scraper_core.formats import format_time

        raise click.UsageError(
            f"--since ({format_time(since)}) must be before --until ({format_time(until)})"
        )
    if output is None and chosen in ("parquet", "sqlite") and sys.stdout.isatty():
        raise click.UsageError(
            f"{chosen} is binary: give --output PATH, or redirect stdout to a file or a pipe"
        )
    loaded = state.loaded()
    began = time.monotonic()

    async def build(history: History) -> Export:
        from vultr_scraper_core.history.export import export as run_export

        return await run_export(history, what, chosen, since, until)

    # Rows are read (from Redis and the archive) first: a broken archive file fails the command
    # before anything is written. Encoding happens while writing, with progress.
    found = read_history(loaded, build)
    written = _write(found.chunks, output, quiet)
    if not quiet:
        counted = f"{found.rows} rows, " if found.rows is not None else ""
        click.echo(
            f"export: {what} as {chosen}: {counted}{written} bytes to "
            f"{output if output is not None else 'stdout'} in {time.monotonic() - began:.1f} s",
            err=True,
        )


def _write(chunks: Iterator[bytes], output: Path | None, quiet: bool) -> int:
    if output is None:
        return _copy(chunks, sys.stdout.buffer, quiet)
    temporary = output.with_name(f".{output.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(temporary, "wb") as sink:
            written = _copy(chunks, sink, quiet)
        os.replace(temporary, output)
    except OSError as error:
        fail(f"cannot write {output}: {one_line(str(error))}", ExitStatus.FAILURE)
    finally:
        temporary.unlink(missing_ok=True)
    return written


def _copy(chunks: Iterator[bytes], sink: BinaryIO, quiet: bool) -> int:
    written = 0
    last = time.monotonic()
    for chunk in chunks:
        sink.write(chunk)
        written += len(chunk)
        if not quiet and time.monotonic() - last >= PROGRESS_EVERY:
            last = time.monotonic()
            click.echo(f"export: {written} bytes written so far", err=True)
    sink.flush()
    return written
