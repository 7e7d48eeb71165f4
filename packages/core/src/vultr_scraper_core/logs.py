"""Structured logging: loguru, one JSON object per line, with every stdlib logger routed in.

Each line has ``time`` (UTC, ``2026-01-15T10:00:00.123456Z``), ``level``, ``logger``,
``message`` and the record's bound ``extra`` fields (job id, function, try, duration, outcome,
...); a record with an exception adds ``error_type``, ``error`` and ``traceback`` (still one
line: JSON escapes the newlines).

Redaction: every configured secret value, and the password of every URL (``https://user:***@``
for any URL, configured or not), is replaced in every string of a field's value (keys
of nested dicts included) before the line is encoded, so the output is always valid JSON and a
secret cannot survive in escaped form either; values of other types are logged as their
``str()``. Most lines hold only JSON's own types and no secret, and that is checked cheaply: the
line is encoded as it is and each secret's JSON form searched for in it. JSON escapes a string
character by character, so a string containing a secret puts the secret's own JSON form into the
line. Only a line in which one occurs, or with other types in it, is rendered field by field.

The worker's two lines per job (``log_line``) skip loguru's record machinery once
``setup_logging`` is active: building a loguru record (caller frame, thread, process, a copy for
the formatter) costs far more than rendering the line, and on no-op jobs it was most of the
worker's overhead against bare arq. Those lines go to the same sink, through the same redaction
and rendering, so they are byte-for-byte the lines loguru would have produced. A loguru sink
added after ``setup_logging`` (nothing in the project does) would not see them; before
``setup_logging`` (tests, library use) they go through loguru like every other line.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
import traceback
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, TextIO

import msgspec
from loguru import logger

from vultr_scraper_core.text import bounded, mask_urls

REDACTED = "***"
MESSAGE_LIMIT = 500  # characters of a message or an error field

_json = msgspec.json.Encoder()
_PLAIN_SCALARS = frozenset({str, int, float, bool, type(None)})


class _Redactor:
    def __init__(self, secrets: Iterable[str]) -> None:
        # Longest first, so a secret containing another is replaced whole. Every non-empty
        # secret counts, however short: the guarantee is that none ever reaches a log line.
        self._secrets = sorted({value for value in secrets if value}, key=len, reverse=True)
        # Each secret as it appears inside an encoded JSON string (see the module docstring).
        self._encoded = [_json.encode(secret)[1:-1] for secret in self._secrets]

    def clean(self, line: bytes) -> bool:
        """True if no secret occurs in any string of the encoded JSON ``line``, and no URL
        that might carry a password (``scheme://user:pw@host``, from anywhere)."""
        for encoded in self._encoded:
            if encoded in line:
                return False
        return not (b"@" in line and b"://" in line)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        return mask_urls(text)

    def plain(self, value: Any) -> Any:
        """JSON-ready data with every string (dict keys included) redacted."""
        # Exact types first: this runs for every field of every line, and a type check is a
        # fraction of an isinstance test against a union; subclasses take the general path.
        kind = type(value)
        if kind is str:
            return self(value)
        if kind is int or kind is float or kind is bool or value is None:
            return value
        if kind is dict:
            return {
                self(key) if type(key) is str else self(str(key)): self.plain(item)
                for key, item in value.items()
            }
        if isinstance(value, str):
            return self(value)
        if isinstance(value, bool | int | float) or value is None:
            return value
        if isinstance(value, dict):
            return {self(str(key)): self.plain(item) for key, item in value.items()}
        if isinstance(value, list | tuple | set | frozenset):
            return [self.plain(item) for item in value]
        return self(str(value))


class _Clock:
    """The current time in UTC as ``YYYY-MM-DDTHH:MM:SS.ffffffZ``, the form of every time the
    project writes (``Z``, never a local offset), with the microseconds always written so that
    lines sort as text.

    The date and time of day are formatted once per second; within the second only the
    microseconds are, a fraction of the cost of building a datetime for every line.
    """

    def __init__(self) -> None:
        self._second = -1
        self._head = ""

    def __call__(self) -> str:
        second, nanoseconds = divmod(time.time_ns(), 1_000_000_000)
        if second != self._second:
            self._head = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self._second = second
        return f"{self._head}.{nanoseconds // 1000:06d}Z"


def log_time(moment: datetime) -> str:
    """``moment`` as the ``time`` field writes it: UTC, microseconds, ``Z``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


_now = _Clock()


def _render(
    when: datetime | str,
    level: str,
    name: str | None,
    message: str,
    extra: Mapping[str, Any],
    redact: _Redactor,
    exception: Any = None,
) -> str:
    """One JSON line; the same code for loguru's records and for ``log_line``."""
    # No line carries a payload: a long message or error (a Redis pipeline error quotes its
    # whole command) is cut, one line of a few hundred characters at most; redacted first, so
    # the cut cannot leave part of a secret behind.
    if len(message) > MESSAGE_LIMIT:
        message = bounded(redact(message), MESSAGE_LIMIT)
    error = extra.get("error")
    if type(error) is str and len(error) > MESSAGE_LIMIT:
        extra = {**extra, "error": bounded(redact(error), MESSAGE_LIMIT)}
    # A bound "logger" (a stdlib record's name) takes the place of the module name.
    fields: dict[str, Any] = {
        "time": when if isinstance(when, str) else log_time(when),
        "level": level,
        "logger": name,
        "message": message,
        **extra,
    }
    if exception is not None and exception.type is not None:
        fields["error_type"] = exception.type.__name__
        text = str(exception.value)
        if len(text) > MESSAGE_LIMIT:
            text = bounded(redact(text), MESSAGE_LIMIT)
        fields["error"] = text
        fields["traceback"] = "".join(
            traceback.format_exception(exception.type, exception.value, exception.traceback)
        ).rstrip()
    if _all_plain(extra.values()):
        line = _json.encode(fields)
        if redact.clean(line):
            return line.decode() + "\n"
    # Field names are the code's own, and so are the time and level it set; the rest is data.
    own = _OWN_FIELDS.difference(extra)
    plain = redact.plain
    redacted = {key: value if key in own else plain(value) for key, value in fields.items()}
    return _json.encode(redacted).decode() + "\n"


_OWN_FIELDS = frozenset({"time", "level"})


def _all_plain(values: Iterable[Any]) -> bool:
    for value in values:  # scalars first: most fields are, and this runs for every line
        if type(value) not in _PLAIN_SCALARS and not _is_plain(value):
            return False
    return True


def _is_plain(value: Any) -> bool:
    """Whether ``value`` is made of JSON's own types only (exact types, ``str`` dict keys)."""
    kind = type(value)
    if kind in _PLAIN_SCALARS:
        return True
    if kind is dict:
        return all(type(key) is str and _is_plain(item) for key, item in value.items())
    if kind is list or kind is tuple:
        return all(_is_plain(item) for item in value)
    return False


class _JsonSink:
    """The sink ``setup_logging`` gives loguru; ``log_line`` writes through it directly.

    A file-like object rather than a function, so that loguru calls ``stop`` when the handler
    is removed (``logger.remove()``, another ``setup_logging``) and the direct path ends with it.
    """

    def __init__(self, target: TextIO, redact: _Redactor, level: str) -> None:
        self.target = target
        self.redact = redact
        self.threshold = logger.level(level).no
        self._levels: dict[str, int] = {}
        # loguru serialises its own calls to the sink; the direct path may run in another
        # thread at the same time, so both take this lock around the write.
        self._lock = threading.Lock()

    def write(self, message: Any) -> None:
        record = message.record
        self._write(
            _render(
                record["time"],
                record["level"].name,
                record["name"],
                record["message"],
                record["extra"],
                self.redact,
                record["exception"],
            )
        )

    def stop(self) -> None:
        global _direct
        if _direct is self:
            _direct = None

    def enabled(self, level: str) -> bool:
        number = self._levels.get(level)
        if number is None:
            number = self._levels[level] = logger.level(level).no
        return number >= self.threshold

    def write_direct(self, name: str, level: str, message: str, extra: Mapping[str, Any]) -> None:
        self._write(_render(_now(), level, name, message, extra, self.redact))

    def _write(self, line: str) -> None:
        with self._lock:
            self.target.write(line)
            self.target.flush()


_direct: _JsonSink | None = None  # the active ``setup_logging`` sink


def log_line(name: str, level: str, message: str, fields: Mapping[str, Any]) -> None:
    """Log ``message`` with ``fields`` like ``logger.bind(**fields).log(level, message)``.

    For hot paths (the worker's per-job lines): with ``setup_logging`` active the line is
    rendered and written by its sink directly, without a loguru record; otherwise (or if the
    write fails, so that loguru reports the error its usual way) it goes through loguru.
    ``name`` is what loguru would put in ``logger``: the calling module's ``__name__``.
    """
    sink = _direct
    if sink is not None:
        if not sink.enabled(level):
            return
        try:
            sink.write_direct(name, level, message, fields)
            return
        except Exception:  # loguru reports it below, as for any other line
            pass
    logger.bind(**fields).opt(depth=1).log(level, message)


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
    global _direct
    logger.remove()
    sink = _JsonSink(
        stream if stream is not None else sys.stdout, _Redactor(secrets), level.upper()
    )
    # The sink renders the record itself; a bare format spares loguru formatting it too.
    logger.add(
        sink,
        level=level.upper(),
        format="{message}",
        enqueue=False,
        backtrace=False,
        diagnose=False,
    )
    _direct = sink
    logging.basicConfig(handlers=[_InterceptHandler()], level=_stdlib_level(level), force=True)
    for name in ("arq", "aiohttp", "asyncio", "redis"):
        stdlib_logger = logging.getLogger(name)
        stdlib_logger.handlers = []
        stdlib_logger.propagate = True
