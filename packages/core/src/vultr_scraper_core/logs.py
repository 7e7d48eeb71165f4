"""Structured logging: loguru, one JSON object per line, with every stdlib logger routed in.

Each line has ``time``, ``level``, ``logger``, ``message`` and the record's bound ``extra`` fields
(job id, function, try, duration, outcome, ...); a record with an exception adds ``error_type``,
``error`` and ``traceback`` (still one line: JSON escapes the newlines). A redaction filter
replaces every configured secret value in every field before the line is encoded, so the output
is always valid JSON and a secret cannot survive in escaped form either.
"""

from __future__ import annotations

import logging
import sys
import traceback
from collections.abc import Iterable
from typing import Any, TextIO

import msgspec
from loguru import logger

REDACTED = "***"

_json = msgspec.json.Encoder()


class _Redactor:
    def __init__(self, secrets: Iterable[str]) -> None:
        # Longest first, so a secret containing another is replaced whole. Every non-empty
        # secret counts, however short: the guarantee is that none ever reaches a log line.
        self._secrets = sorted({value for value in secrets if value}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        return text

    def plain(self, value: Any) -> Any:
        """JSON-ready data with every string (dict keys included) redacted."""
        if isinstance(value, str):
            return self(value)
        if isinstance(value, bool | int | float) or value is None:
            return value
        if isinstance(value, dict):
            return {self(str(key)): self.plain(item) for key, item in value.items()}
        if isinstance(value, list | tuple | set | frozenset):
            return [self.plain(item) for item in value]
        return self(str(value))


def _render(record: Any, redact: _Redactor) -> str:
    extra = record["extra"]
    fields: dict[str, Any] = {
        "time": record["time"].isoformat(),
        "level": record["level"].name,
        "logger": redact.plain(extra.get("logger", record["name"])),
        "message": redact(record["message"]),
    }
    for key, value in extra.items():
        if key != "logger":
            fields[key] = redact.plain(value)
    exception = record["exception"]
    if exception is not None and exception.type is not None:
        fields["error_type"] = exception.type.__name__
        fields["error"] = redact(str(exception.value))
        fields["traceback"] = redact(
            "".join(
                traceback.format_exception(exception.type, exception.value, exception.traceback)
            ).rstrip()
        )
    return _json.encode(fields).decode() + "\n"


class _InterceptHandler(logging.Handler):
    """Hands stdlib records (arq, aiohttp, asyncio, redis) to loguru with their logger name."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            try:
                level: str | int = logger.level(record.levelname).name
            except ValueError:
                level = record.levelno
            message = record.getMessage()
            exc_info = record.exc_info if record.exc_info and record.exc_info[0] else None
            logger.bind(logger=record.name).opt(exception=exc_info).log(level, message)
        except Exception:
            self.handleError(record)


def _stdlib_level(level: str) -> int:
    """The stdlib threshold matching a loguru level name (TRACE -> DEBUG, SUCCESS -> INFO)."""
    name = {"TRACE": "DEBUG", "SUCCESS": "INFO"}.get(level.upper(), level.upper())
    number = logging.getLevelName(name)
    return number if isinstance(number, int) else logging.INFO


def setup_logging(
    level: str = "INFO", secrets: Iterable[str] = (), stream: TextIO | None = None
) -> None:
    """Send every log line, loguru's and the stdlib's, as JSON to ``stream`` (stdout by default)."""
    redact = _Redactor(secrets)
    target = stream if stream is not None else sys.stdout

    def sink(message: Any) -> None:
        target.write(_render(message.record, redact))
        target.flush()

    logger.remove()
    # The sink renders the record itself; a bare format spares loguru formatting it too.
    logger.add(
        sink,
        level=level.upper(),
        format="{message}",
        enqueue=False,
        backtrace=False,
        diagnose=False,
    )
    logging.basicConfig(handlers=[_InterceptHandler()], level=_stdlib_level(level), force=True)
    for name in ("arq", "aiohttp", "asyncio", "redis"):
        stdlib_logger = logging.getLogger(name)
        stdlib_logger.handlers = []
        stdlib_logger.propagate = True
