"""Redis errors in words: what went wrong, said first and briefly, never the payload.

redis-py puts the failing command into a pipeline error's text ("Command # 1 (HSET key
<the whole payload>) of pipeline caused error: OOM ..."), so an error's ``str()`` can be
hundreds of kilobytes with the cause at the very end. ``redis_cause`` names the cause from the
error's class or the Redis error code that starts the reply, bounded (``text.bounded``).
"""

from __future__ import annotations

import re

from redis.exceptions import (
    AuthenticationError,
    AuthorizationError,
    BusyLoadingError,
    OutOfMemoryError,
    ReadOnlyError,
    RedisError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from vultr_scraper_core.text import bounded

# Error classes redis-py makes from a Redis error code (it strips the code from the text).
_CLASSES: tuple[tuple[type[RedisError], str], ...] = (
    (OutOfMemoryError, "Redis refuses writes: out of memory"),
    (ReadOnlyError, "Redis refuses writes: it is a read-only replica"),
    (BusyLoadingError, "Redis is loading its dataset"),
)
# Codes it leaves in the text (the first word of the error reply).
_CODES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"^MISCONF\b"), "Redis refuses writes: it cannot save to disk (MISCONF)"),
    (re.compile(r"^MASTERDOWN\b"), "Redis replica lost its primary (MASTERDOWN)"),
    (re.compile(r"^NOREPLICAS\b"), "Redis refuses writes: not enough replicas (NOREPLICAS)"),
    (re.compile(r"^BUSY\b"), "Redis is busy running a script (BUSY)"),
    (re.compile(r"^TRYAGAIN\b"), "Redis asks to try again (TRYAGAIN)"),
)
_PIPELINE_ECHO = " of pipeline caused error: "


def redis_cause(error: BaseException) -> str:
    """The cause of a Redis error in words, first and bounded: "Redis refuses writes: out of
    memory", "Redis unreachable: Connection refused", ... (never a command's arguments)."""
    reply = _reply(str(error))
    if isinstance(error, AuthenticationError | AuthorizationError):
        return bounded(f"Redis refuses our credentials: {reply}")
    words = _refusal(error, reply)
    if words is not None:
        return words
    if isinstance(error, RedisTimeoutError | TimeoutError):
        return "Redis did not answer in time"
    if isinstance(error, RedisConnectionError | OSError):
        return bounded(f"Redis unreachable: {reply or type(error).__name__}")
    if isinstance(error, RedisError):
        return bounded(f"Redis error: {reply or type(error).__name__}")
    return bounded(f"{type(error).__name__}: {reply}")


def _refusal(error: BaseException, reply: str) -> str | None:
    """The words for a Redis error that means "not now" (out of memory, read-only, ...)."""
    for kind, words in _CLASSES:
        if isinstance(error, kind):
            return words
    for pattern, words in _CODES:
        if pattern.search(reply[:50]):
            return words
    return None


def is_refusal(error: BaseException) -> bool:
    """A Redis that answers but refuses for now (OOM, READONLY, LOADING, MISCONF, ...): a
    transient fault, like a connection error, not a bug in the command."""
    return isinstance(error, RedisError) and _refusal(error, _reply(str(error))) is not None


def _reply(text: str) -> str:
    """The error reply itself, without redis-py's echo of a pipeline's command."""
    _, echo, reply = text.rpartition(_PIPELINE_ECHO)
    return reply if echo else text


def is_redis_fault(error: BaseException) -> bool:
    """Whether ``error`` comes from Redis (an ``OSError`` may come from anything: callers that
    know it can only be Redis's, like the worker's poll, add it themselves)."""
    return isinstance(error, RedisError)
