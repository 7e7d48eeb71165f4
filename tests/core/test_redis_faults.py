"""Redis errors in words: the cause first, bounded, never a command's payload."""

from __future__ import annotations

import pytest
from redis.exceptions import (
    BusyLoadingError,
    ConnectionError,
    OutOfMemoryError,
    ReadOnlyError,
    ResponseError,
    TimeoutError,
)

from vultr_scraper_core.http import is_transient
from vultr_scraper_core.redis_faults import is_refusal, redis_cause
from vultr_scraper_core.text import bounded


def _pipeline_error(error: Exception, payload: str) -> Exception:
    """As redis-py annotates the first failing command of a pipeline."""
    error.args = (f"Command # 1 (HSET vs:catalog:plans {payload}) of pipeline caused error: "
                  f"{error.args[0]}",)  # fmt: skip
    return error


@pytest.mark.parametrize(
    ("error", "cause"),
    [
        (
            OutOfMemoryError("command not allowed when used memory > 'maxmemory'."),
            "Redis refuses writes: out of memory",
        ),
        (
            ReadOnlyError("You can't write against a read only replica."),
            "Redis refuses writes: it is a read-only replica",
        ),
        (BusyLoadingError("Redis is loading the dataset"), "Redis is loading its dataset"),
        (
            ResponseError("MISCONF Redis is configured to save RDB snapshots"),
            "Redis refuses writes: it cannot save to disk (MISCONF)",
        ),
        (TimeoutError("Timeout reading from 127.0.0.1:6379"), "Redis did not answer in time"),
    ],
)
def test_each_refusal_is_named_in_words(error: Exception, cause: str) -> None:
    assert redis_cause(error) == cause
    assert is_transient(error)


def test_a_pipeline_error_never_prints_its_payload() -> None:
    payload = "x" * 600_000
    error = _pipeline_error(
        OutOfMemoryError("command not allowed when used memory > 'maxmemory'."), payload
    )
    assert redis_cause(error) == "Redis refuses writes: out of memory"
    unknown = _pipeline_error(ResponseError("WRONGTYPE Operation against a key"), payload)
    assert redis_cause(unknown) == "Redis error: WRONGTYPE Operation against a key"
    assert not is_refusal(unknown)
    assert not is_transient(unknown)


def test_a_connection_error_names_redis_first_and_is_bounded() -> None:
    cause = redis_cause(ConnectionError("Error 111 connecting to 127.0.0.1:6379. " + "y" * 5000))
    assert cause.startswith("Redis unreachable: Error 111 connecting to 127.0.0.1:6379.")
    assert len(cause) <= 300


def test_bounded_is_one_short_line() -> None:
    assert bounded("a\nb\t c") == "a b c"
    text = bounded("word " * 1000, 50)
    assert len(text) == 50
    assert text.endswith("…")


@pytest.mark.parametrize(
    "url",
    ["not a url", "ftp://api.example.com/v2", "javascript:alert(1)", "https://", "http:///v2"],
)
def test_a_base_url_that_is_not_http_is_a_config_error(url: str) -> None:
    from vultr_scraper_core.config import ConfigError, load_config

    with pytest.raises(ConfigError, match=r"vultr\.base_url: must be an http:// or https:// URL"):
        load_config(None, environ={"VULTR_SCRAPER__VULTR__BASE_URL": url})


def test_a_base_url_error_never_shows_its_password() -> None:
    from vultr_scraper_core.config import ConfigError, load_config

    with pytest.raises(ConfigError) as caught:
        load_config(None, environ={"VULTR_SCRAPER__VULTR__BASE_URL": "ftp://u:hunter2@h/v2"})
    assert "hunter2" not in str(caught.value)


def test_printable_escapes_terminal_controls() -> None:
    from vultr_scraper_core.text import printable

    assert printable("vc2\x1b]0;owned\x07-1c") == "vc2\\x1b]0;owned\\x07-1c"
    assert printable("São Paulo\tok") == "São Paulo\tok"
    assert printable("a\nb\x9bc") == "a\\x0ab\\x9bc"
