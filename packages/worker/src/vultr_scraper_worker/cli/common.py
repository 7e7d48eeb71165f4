"""What every command shares: lazily loaded config, exit codes and output helpers.

Importing a command module must stay cheap: ``vultr-scraper --help`` loads every one of them.
So the modules here import click and the standard library at the top and anything heavier
(msgspec, the config schema, redis, aiohttp, the worker) inside the function that uses it; a
test (tests/worker/test_cli_imports.py) holds them to it.
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NoReturn, TextIO, TypeVar, cast

import click

from vultr_scraper_worker.exit_status import ExitStatus

if TYPE_CHECKING:
    from contextlib import AbstractAsyncContextManager

    from redis.asyncio import Redis

    from vultr_scraper_core.config import LoadedConfig

T = TypeVar("T")
FAIL_LIMIT = 400  # characters in an error line: a path and a cause, never a payload


def version_string() -> str:
    from vultr_scraper_core import __version__

    return f"vultr-scraper {__version__}"


@dataclass
class State:
    config_path: str | None
    _loaded: LoadedConfig | None = field(default=None, repr=False)

    def loaded(self) -> LoadedConfig:
        """The configuration; a config error ends the process with status 78."""
        if self._loaded is None:
            from vultr_scraper_core.config import ConfigError, load_config

            try:
                self._loaded = load_config(self.config_path)
            except ConfigError as error:
                fail(f"config error: {error}", ExitStatus.CONFIG)
        return self._loaded

    def setup_logging(
        self, *, to_stderr: bool = True, level: str | None = None, human: bool = False
    ) -> None:
        """Commands other than ``worker`` keep stdout for their own output.

        ``human`` renders each (already redacted) JSON line as ``HH:MM:SS LEVEL message`` for a
        person watching a terminal; the JSON stays the format for journald and pipes.
        """
        from vultr_scraper_core.logs import setup_logging

        loaded = self.loaded()
        stream: TextIO = sys.stderr if to_stderr else sys.stdout
        setup_logging(
            level or loaded.config.log.level,
            loaded.secrets.values(),
            cast(TextIO, HumanLog(stream)) if human else stream,  # write and flush suffice
        )


class HumanLog:
    """A write-only text stream that turns the JSON log lines into short readable ones."""

    def __init__(self, target: TextIO) -> None:
        self.target = target

    def write(self, text: str) -> int:
        for line in text.splitlines():
            self.target.write(human_log_line(line) + "\n")
        return len(text)

    def flush(self) -> None:
        self.target.flush()


def human_log_line(line: str) -> str:
    """``07:17:20 scrape-catalog started (try 1/3)``; a line that is not JSON is kept as is."""
    from datetime import UTC, datetime

    import msgspec

    try:
        record = msgspec.json.decode(line)
    except msgspec.DecodeError:
        return line
    if not isinstance(record, dict):
        return line
    clock = "--:--:--"
    with_time = record.get("time")
    if isinstance(with_time, str):
        try:
            clock = datetime.fromisoformat(with_time).astimezone(UTC).strftime("%H:%M:%S")
        except ValueError:
            pass
    level = str(record.get("level", ""))
    marker = "" if level in ("INFO", "SUCCESS", "DEBUG", "TRACE") else f"{level.lower()}: "
    message = " ".join(str(record.get("message", "")).split())
    if "duration" in record and record.get("event") == "job.end":
        message += f" in {record['duration']:.2f} s"
    return f"{clock} {marker}{message}"


def fail(message: str, status: int = ExitStatus.FAILURE) -> NoReturn:
    """One bounded line on stderr (external text may be long; a URL in it may carry a
    password, which is masked), then exit with ``status``."""
    from vultr_scraper_core.text import bounded, mask_urls, printable

    click.echo(f"vultr-scraper: {printable(bounded(mask_urls(message), FAIL_LIMIT))}", err=True)
    sys.exit(status)


def open_store(loaded: LoadedConfig) -> AbstractAsyncContextManager[Redis]:
    """Redis for one-shot commands: the configured one or the embedded one (reused if a worker
    runs, else started for the command), giving up after about 1.5 s like ``jobs`` does."""
    from vultr_scraper_worker.runtime import CLI_OUTAGE_BUDGET, open_redis

    return open_redis(loaded, outage_budget=CLI_OUTAGE_BUDGET)


def with_redis(loaded: LoadedConfig, work: Callable[[Redis], Awaitable[T]]) -> T:
    """Run ``work`` against Redis; exit 69 when it is unreachable, 1 when it refuses a command."""
    import asyncio

    from redis.exceptions import RedisError

    from vultr_scraper_core.embedded_redis import EmbeddedRedisError

    async def main() -> T:
        async with open_store(loaded) as redis:
            return await work(redis)

    try:
        return asyncio.run(main())
    except (RedisError, OSError, EmbeddedRedisError) as error:
        fail_on_redis(error)


def fail_on_redis(error: BaseException) -> NoReturn:
    """One line with the cause first, never a command's payload: 69 when Redis is unavailable
    or refuses for now (out of memory, read-only, loading), 1 when it rejects the command."""
    from redis.exceptions import ResponseError

    from vultr_scraper_core.embedded_redis import EmbeddedRedisError
    from vultr_scraper_core.redis_faults import is_refusal, redis_cause

    if isinstance(error, EmbeddedRedisError):
        fail(f"Redis unavailable: {error}", ExitStatus.UNAVAILABLE)
    if isinstance(error, ResponseError) and not is_refusal(error):
        fail(redis_cause(error), ExitStatus.FAILURE)
    fail(redis_cause(error), ExitStatus.UNAVAILABLE)


def one_line(text: str) -> str:
    return " ".join(text.split())


def print_json(document: Any) -> None:
    import msgspec

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
        return ",".join(_cell(item) for item in value) or "-"
    from vultr_scraper_core.text import mask_urls, printable  # external: ids, names, errors

    return printable(mask_urls(str(value)))


def option_value(
    parse: Callable[[str], T],
) -> Callable[[click.Context, click.Parameter, str | None], T | None]:
    """A click callback that reads an option with one of the shared parsers
    (``vultr_scraper_core.formats``): its ValueError becomes a usage error (exit 2)."""

    def callback(ctx: click.Context, param: click.Parameter, value: str | None) -> T | None:
        if value is None:
            return None
        try:
            return parse(value)
        except ValueError as error:
            raise click.BadParameter(str(error)) from None

    return callback


json_option = click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")

log_format_option = click.option(
    "--log-format",
    type=click.Choice(["auto", "text", "json"]),
    default="auto",
    show_default=True,
    help="Progress log on stderr: text (readable lines), json (one object per line), or auto "
    "(text on a terminal, else json).",
)
quiet_option = click.option(
    "-q", "--quiet", is_flag=True, help="No progress log on stderr, only warnings and errors."
)


def human_logs(log_format: str = "auto") -> bool:
    """Whether the stderr log should be readable lines rather than JSON."""
    if log_format == "auto":
        return sys.stderr.isatty()
    return log_format == "text"
