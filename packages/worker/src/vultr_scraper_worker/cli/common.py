"""What every command shares: lazily loaded config, exit codes and output helpers."""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NoReturn

import click
import msgspec

from vultr_scraper_core import __version__
from vultr_scraper_core.config import EX_CONFIG, ConfigError, LoadedConfig, load_config
from vultr_scraper_core.logs import setup_logging

EX_OK = 0
EX_FAILURE = 1
EX_UNAVAILABLE = 69  # sysexits.h: a service (Redis, the worker) is not available


def version_string() -> str:
    return f"vultr-scraper {__version__}"


@dataclass
class State:
    config_path: str | None
    _loaded: LoadedConfig | None = field(default=None, repr=False)

    def loaded(self) -> LoadedConfig:
        """The configuration; a config error ends the process with status 78."""
        if self._loaded is None:
            try:
                self._loaded = load_config(self.config_path)
            except ConfigError as error:
                fail(f"config error: {error}", EX_CONFIG)
        return self._loaded

    def setup_logging(self, *, to_stderr: bool = True, level: str | None = None) -> None:
        """Commands other than ``worker`` keep stdout for their own output."""
        loaded = self.loaded()
        setup_logging(
            level or loaded.config.log.level,
            loaded.secrets.values(),
            sys.stderr if to_stderr else sys.stdout,
        )


def fail(message: str, status: int = EX_FAILURE) -> NoReturn:
    click.echo(f"vultr-scraper: {message}", err=True)
    sys.exit(status)


def print_json(document: Any) -> None:
    click.echo(msgspec.json.format(msgspec.json.encode(document), indent=2).decode())


def print_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> None:
    """A plain aligned table for people; ``--json`` is the format for machines."""
    if not rows:
        click.echo("(none)")
        return
    cells = [[_cell(row.get(column)) for column in columns] for row in rows]
    widths = [
        max(len(column), *(len(line[index]) for line in cells))
        for index, column in enumerate(columns)
    ]
    header = "  ".join(
        column.upper().ljust(width) for column, width in zip(columns, widths, strict=True)
    )
    click.echo(header.rstrip())
    for line in cells:
        click.echo(
            "  ".join(
                value.ljust(width) for value, width in zip(line, widths, strict=True)
            ).rstrip()
        )


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return ",".join(_cell(item) for item in value)
    return str(value)


json_option = click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
