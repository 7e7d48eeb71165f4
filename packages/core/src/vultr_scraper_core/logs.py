"""Structured logging: loguru, one JSON object per line, with every stdlib logger routed in.

Each line has ``time``, ``level``, ``logger``, ``message`` and the record's bound ``extra`` fields
(job id, function, try, duration, outcome, ...). A redaction filter replaces every configured
secret value before a line is written, wherever it appears.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable
from typing import Any, TextIO

import msgspec
from loguru import logger

REDACTED = "***"
# Secrets shorter than this would redact ordinary words; config loading rejects empty ones.
_MIN_SECRET_LENGTH = 4

_json = msgspec.json.Encoder()


class _Redactor:
    def __init__(self, secrets: Iterable[str]) -> None:
        # Longest first, so a secret containing another is replaced whole.
        self._secrets = sorted(
            {value for value in secrets if len(value) >= _MIN_SECRET_LENGTH}, key=len, reverse=True
        )

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        return text


def _plain(value: Any) -> Any:
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(item) for item in value]
    return str(value)


def _render(record: Any, redact: _Redactor) -> str:
    fields: dict[str, Any] = {
        "time": record["time"].isoformat(),
        "level": record["level"].name,
        "logger": record["extra"].get("logger", record["name"]),
        "message": record["message"],
    }
    for key, value in record["extra"].items():
        if key != "logger":
            fields[key] = _plain(value)
    exception = record["exception"]
    if exception is not None and exception.type is not None:
        fields["error_type"] = exception.type.__name__
        fields["error"] = str(exception.value)
    return redact(_json.encode(fields).decode()) + "\n"


class _InterceptHandler(logging.Handler):
    """Hands stdlib records (arq, aiohttp, asyncio, redis) to loguru with their logger name."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            level: str | int = logger.level(record.levelname).name
        except ValueError:
            level = record.levelno
        message = record.getMessage()
        if record.exc_info and record.exc_info[1] is not None:
            error = record.exc_info[1]
            message = f"{message}: {type(error).__name__}: {error}"
        logger.bind(logger=record.name).opt(depth=0).log(level, message)


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
    logger.add(sink, level=level.upper(), enqueue=False, backtrace=False, diagnose=False)
    logging.basicConfig(handlers=[_InterceptHandler()], level=logging.INFO, force=True)
    for name in ("arq", "aiohttp", "asyncio", "redis"):
        stdlib_logger = logging.getLogger(name)
        stdlib_logger.handlers = []
        stdlib_logger.propagate = True
