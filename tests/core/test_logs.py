"""Logging: one JSON object per line, stdlib loggers routed in, secrets never written."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from loguru import logger

from vultr_scraper_core import logs
from vultr_scraper_core.logs import REDACTED, log_line, setup_logging

Lines = Callable[[], list[dict[str, Any]]]


def parse(text: str) -> list[dict[str, Any]]:
    """Every line must be one complete JSON object."""
    assert text == "" or text.endswith("\n")
    records = []
    for line in text.splitlines():
        record = json.loads(line)
        assert isinstance(record, dict)
        records.append(record)
    return records


def capture(level: str = "INFO", secrets: tuple[str, ...] = ()) -> tuple[io.StringIO, Lines]:
    stream = io.StringIO()
    setup_logging(level, secrets, stream)
    return stream, lambda: parse(stream.getvalue())


def test_one_json_object_per_line() -> None:
    stream, lines = capture()
    logger.info("hello {}", "world")
    logger.warning("second")
    records = lines()
    assert [record["message"] for record in records] == ["hello world", "second"]
    assert [record["level"] for record in records] == ["INFO", "WARNING"]
    assert records[0]["logger"] == __name__
    assert records[0]["time"].startswith("20")
    assert stream.getvalue().count("\n") == 2


def test_bound_fields_become_top_level_fields() -> None:
    _, lines = capture()
    logger.bind(job_id="abc", function="scrape_catalog", job_try=2, duration=1.25).info("done")
    logger.bind(job_id="abc", outcome={"status": "success", "updated": 3}).info("result")
    first, second = lines()
    assert first["job_id"] == "abc"
    assert first["function"] == "scrape_catalog"
    assert first["job_try"] == 2
    assert first["duration"] == 1.25
    assert second["outcome"] == {"status": "success", "updated": 3}


def test_unusual_values_are_serialised_as_text() -> None:
    _, lines = capture()
    logger.bind(when=object, ids=("a", "b"), tags={1, 2} - {2}).info("odd")
    (record,) = lines()
    assert record["when"] == "<class 'object'>"
    assert record["ids"] == ["a", "b"]
    assert record["tags"] == [1]


def test_level_threshold() -> None:
    _, lines = capture("warning")
    logger.info("dropped")
    logger.debug("dropped")
    logger.error("kept")
    logging.getLogger("arq.worker").info("dropped too")
    assert [record["message"] for record in lines()] == ["kept"]


def test_non_ascii_and_braces_pass_through() -> None:
    _, lines = capture()
    logger.info("São Paulo {}", "✓")
    logging.getLogger("aiohttp.client").warning("literal {braces} and %s", "args")
    first, second = lines()
    assert first["message"] == "São Paulo ✓"
    assert second["message"] == "literal {braces} and args"


@pytest.mark.parametrize("name", ["arq.worker", "aiohttp.access", "asyncio", "redis", "other.lib"])
def test_stdlib_loggers_are_routed_in(name: str) -> None:
    _, lines = capture()
    logging.getLogger(name).warning("from %s", name)
    (record,) = lines()
    assert record["logger"] == name
    assert record["message"] == f"from {name}"
    assert record["level"] == "WARNING"


def test_stdlib_debug_follows_the_configured_level() -> None:
    _, lines = capture("DEBUG")
    logging.getLogger("aiohttp.client").debug("details")
    assert [record["message"] for record in lines()] == ["details"]


async def test_asyncio_errors_are_routed_in() -> None:
    _, lines = capture()
    # What asyncio's default exception handler does with an error nobody awaited.
    loop = asyncio.get_running_loop()
    loop.call_exception_handler({"message": "Task exception was never retrieved"})
    (record,) = lines()
    assert record["logger"] == "asyncio"
    assert record["level"] == "ERROR"
    assert record["message"].startswith("Task exception was never retrieved")


def _fail() -> None:
    raise ValueError("bad plan\nsecond line")


def test_logger_exception_is_one_line_with_error_fields() -> None:
    stream, lines = capture()
    try:
        _fail()
    except ValueError:
        logger.bind(job_id="j1").exception("job failed")
    assert stream.getvalue().count("\n") == 1
    (record,) = lines()
    assert record["message"] == "job failed"
    assert record["level"] == "ERROR"
    assert record["job_id"] == "j1"
    assert record["error_type"] == "ValueError"
    assert record["error"] == "bad plan\nsecond line"
    assert record["traceback"].startswith("Traceback (most recent call last):")
    assert "in _fail" in record["traceback"]
    assert record["traceback"].endswith("ValueError: bad plan\nsecond line")


def test_opt_exception_with_an_instance() -> None:
    _, lines = capture()
    logger.opt(exception=KeyError("id")).warning("odd item")
    (record,) = lines()
    assert record["error_type"] == "KeyError"
    assert record["error"] == "'id'"
    assert record["level"] == "WARNING"


def test_stdlib_exception_is_one_line_with_error_fields() -> None:
    stream, lines = capture()
    try:
        _fail()
    except ValueError:
        logging.getLogger("arq.worker").exception("job %s crashed", "j2")
    assert stream.getvalue().count("\n") == 1
    (record,) = lines()
    assert record["logger"] == "arq.worker"
    assert record["message"] == "job j2 crashed"
    assert record["error_type"] == "ValueError"
    assert "in _fail" in record["traceback"]


def test_records_without_exception_have_no_error_fields() -> None:
    _, lines = capture()
    logger.error("plain")
    (record,) = lines()
    assert not {"error", "error_type", "traceback"} & record.keys()


def test_default_stream_is_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    setup_logging("INFO", ())
    logger.info("to stdout")
    captured = capsys.readouterr()
    assert [record["message"] for record in parse(captured.out)] == ["to stdout"]
    assert captured.err == ""


def test_setup_twice_replaces_the_sink() -> None:
    first, _ = capture()
    _, lines = capture()
    logger.info("once")
    assert first.getvalue() == ""
    assert len(lines()) == 1


# -- redaction -----------------------------------------------------------------------------------

API_KEY = "VULTRAPIKEY0123456789"
PASSWORD = 'pa"ss\\word'  # JSON would escape it: the escaped form must not leak either


def strings(value: Any) -> list[str]:
    """Every string in decoded JSON, dict keys included."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [text for key, item in value.items() for text in [key, *strings(item)]]
    if isinstance(value, list):
        return [text for item in value for text in strings(item)]
    return []


def leaked(output: str, *secrets: str) -> list[str]:
    """Secrets found in the raw output, in JSON-escaped form, or in any decoded string."""
    decoded = strings([json.loads(line) for line in output.splitlines()])
    return [
        secret
        for secret in secrets
        if secret in output
        or json.dumps(secret)[1:-1] in output
        or any(secret in text for text in decoded)
    ]


def test_secrets_never_reach_a_line() -> None:
    stream, lines = capture(secrets=(API_KEY, PASSWORD, "short"))
    logger.info("key is {}", API_KEY)
    logger.bind(headers={"Authorization": f"Bearer {API_KEY}"}, attempts=[PASSWORD]).info("req")
    logger.bind(**{"nested": {API_KEY: "as a key"}}).info("dict key")
    logging.getLogger("aiohttp.client").warning("password=%s", PASSWORD)
    logging.getLogger(f"weird.{API_KEY}").warning("logger name")
    logger.info("a short secret is redacted too")
    try:
        raise RuntimeError(f"auth failed for {API_KEY}")
    except RuntimeError:
        logger.exception("boom {}", PASSWORD)
    output = stream.getvalue()
    assert leaked(output, API_KEY, PASSWORD, "short") == []
    records = lines()
    assert records[0]["message"] == f"key is {REDACTED}"
    assert records[1]["headers"] == {"Authorization": f"Bearer {REDACTED}"}
    assert records[1]["attempts"] == [REDACTED]
    assert records[2]["nested"] == {REDACTED: "as a key"}
    assert records[3]["message"] == f"password={REDACTED}"
    assert records[4]["logger"] == f"weird.{REDACTED}"
    assert records[5]["message"] == f"a {REDACTED} secret is redacted too"
    assert records[6]["error"] == f"auth failed for {REDACTED}"
    assert REDACTED in records[6]["traceback"]


def test_url_passwords_are_masked_in_every_line_configured_or_not() -> None:
    """A URL's password is masked even when it is no configured secret (a URL from upstream,
    a redirect, an error quoting it), in messages, bound fields and exceptions alike."""
    stream, lines = capture()
    logger.warning("GET https://alice:s3cret@api.example/v2 failed")
    logger.bind(url="redis://:hunter2@10.0.0.5:6379/0", nested={"u": ["ftp://b:pw9@h/"]}).info("x")
    log_line(__name__, "ERROR", "failed", {"error": "HTTP 500 from http://c:tok3n@h/"})
    try:
        raise RuntimeError("cannot reach https://d:p4ss@h/x")
    except RuntimeError:
        logger.exception("boom")
    assert leaked(stream.getvalue(), "s3cret", "hunter2", "pw9", "tok3n", "p4ss") == []
    first, second, third, fourth = lines()
    assert first["message"] == "GET https://alice:***@api.example/v2 failed"
    assert second["url"] == "redis://:***@10.0.0.5:6379/0"
    assert second["nested"] == {"u": ["ftp://b:***@h/"]}
    assert third["error"] == "HTTP 500 from http://c:***@h/"
    assert fourth["error"] == "cannot reach https://d:***@h/x"


def test_a_secret_that_looks_like_json_syntax_keeps_lines_valid() -> None:
    # Redacting the encoded line would have replaced JSON keys or quotes and broken the line.
    _, lines = capture(secrets=("message", '"', "level"))
    logger.info('a "message" at level')
    (record,) = lines()
    assert record["message"] == f"a {REDACTED}{REDACTED}{REDACTED} at {REDACTED}"
    assert record["level"] == "INFO"


def test_longer_secret_containing_a_shorter_one_is_redacted_whole() -> None:
    _, lines = capture(secrets=("abcd", "xxabcdxx"))
    logger.info("xxabcdxx and abcd")
    (record,) = lines()
    assert record["message"] == f"{REDACTED} and {REDACTED}"


def test_empty_secrets_are_ignored() -> None:
    _, lines = capture(secrets=("", "token-1"))
    logger.info("nothing to hide")
    (record,) = lines()
    assert record["message"] == "nothing to hide"


# -- log_line: the worker's per-job lines --------------------------------------------------------


def test_log_line_writes_the_line_loguru_would() -> None:
    _, lines = capture(secrets=(API_KEY,))
    fields = {"job_id": "j1", "function": "noop", "try": 2, "result": {"status": "success"}}
    log_line(__name__, "WARNING", f"direct {API_KEY}", fields)
    logger.bind(**fields).warning(f"direct {API_KEY}")
    direct, through_loguru = lines()
    assert direct.pop("time")[:16] == through_loguru.pop("time")[:16]
    assert direct == through_loguru
    assert direct["message"] == f"direct {REDACTED}"
    assert direct["logger"] == __name__


@pytest.mark.parametrize("zone", ["UTC", "Asia/Kolkata", "America/New_York"])
def test_the_time_field_is_utc_with_z_whatever_the_local_zone(
    zone: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both paths (``log_line``'s cached per-second clock and loguru's records) write the
    instant in UTC as ``...T...ffffffZ``, the one time format the project writes, never the
    host's offset, microseconds always present (a whole second too) so lines sort as text."""
    monkeypatch.setenv("TZ", zone)
    time.tzset()
    try:
        clock = logs._Clock()
        for nanoseconds, expected in (
            (1_700_000_000_000_000_000, "2023-11-14T22:13:20.000000Z"),
            (1_700_000_000_123_456_789, "2023-11-14T22:13:20.123456Z"),
            (1_700_000_001_000_999_999, "2023-11-14T22:13:21.000999Z"),
        ):
            with monkeypatch.context() as patched:
                patched.setattr(time, "time_ns", lambda now=nanoseconds: now)
                assert clock() == expected
        local = datetime.fromtimestamp(1_700_000_000.123456).astimezone()
        assert logs.log_time(local) == "2023-11-14T22:13:20.123456Z"
        _, lines = capture()
        before = datetime.now(UTC)
        logger.info("through loguru")
        log_line(__name__, "INFO", "direct", {})
        after = datetime.now(UTC)
        for record in lines():
            stamp = record["time"]
            assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", stamp), stamp
            written = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
            assert before - timedelta(seconds=1) <= written <= after + timedelta(seconds=1)
    finally:
        monkeypatch.undo()
        time.tzset()


def test_log_line_redacts_every_field() -> None:
    stream, lines = capture(secrets=(API_KEY, PASSWORD))
    log_line(__name__, "ERROR", "failed", {"error": f"key {API_KEY}", "args": [PASSWORD]})
    log_line(__name__, "INFO", "odd", {"when": object, "nested": {API_KEY: 1}})
    assert leaked(stream.getvalue(), API_KEY, PASSWORD) == []
    first, second = lines()
    assert first["error"] == f"key {REDACTED}"
    assert first["args"] == [REDACTED]
    assert second["when"] == "<class 'object'>"
    assert second["nested"] == {REDACTED: 1}


def test_log_line_follows_the_level_threshold() -> None:
    _, lines = capture("WARNING")
    log_line(__name__, "INFO", "dropped", {})
    log_line(__name__, "ERROR", "kept", {})
    assert [record["message"] for record in lines()] == ["kept"]


def test_log_line_goes_through_loguru_without_setup_logging() -> None:
    stream, _ = capture()
    logger.remove()  # what a test harness or a second setup does: the direct path ends too
    seen: list[Any] = []
    handler = logger.add(lambda message: seen.append(message.record), level="DEBUG")
    try:
        log_line(__name__, "INFO", "via loguru", {"job_id": "j2"})
    finally:
        logger.remove(handler)
    assert stream.getvalue() == ""
    (record,) = seen
    assert record["message"] == "via loguru"
    assert record["extra"] == {"job_id": "j2"}
    assert record["name"] == __name__


# -- redaction: the encoded-line check against the field-by-field rendering --------------------

_json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@example(value=None, message="", secrets=["m"])  # the logger's name is a string of the line too
@given(
    value=_json_values,
    message=st.text(),
    secrets=st.lists(st.text(min_size=1, max_size=6), min_size=1, max_size=3),
)
def test_redaction_is_the_same_as_field_by_field_whatever_the_data(
    value: Any, message: str, secrets: list[str]
) -> None:
    redactor = logs._Redactor(secrets)
    time, level, name = "2026-01-01T00:00:00+00:00", "INFO", "m"
    line = logs._render(time, level, name, message, {"v": value}, redactor)
    record = json.loads(line)
    # Exactly what replacing every secret in every string of the data gives...
    assert record["message"] == redactor(message)
    assert record["v"] == redactor.plain(value)
    # ... and a line with no secret in it is the line as it would be without any secrets.
    # (The fixed fields are redacted too, so a secret such as "m" may hit the logger's name.)
    texts = [time, level, name, "v", message, *strings(value)]
    if all(secret not in text for secret in secrets for text in texts):
        plain = logs._render(time, level, name, message, {"v": value}, logs._Redactor(()))
        assert line == plain


def test_a_secret_that_json_escapes_is_still_found() -> None:
    secrets = ('pa"ss\\word', "tab\there", "naïve€", "line\nbreak")
    stream, lines = capture(secrets=secrets)
    for secret in secrets:
        log_line(__name__, "INFO", "fields", {"value": f"<{secret}>", "nested": {secret: [secret]}})
        logger.bind(value=f"<{secret}>").info("bound")
    records = lines()
    assert len(records) == 2 * len(secrets)
    for record in records:
        assert record["value"] == f"<{REDACTED}>"
    assert [record["nested"] for record in records[::2]] == [{REDACTED: [REDACTED]}] * 4
    assert leaked(stream.getvalue(), *secrets) == []


def test_values_of_other_types_are_their_text_with_secrets_redacted() -> None:
    @dataclass
    class Login:
        user: str
        password: str = field(repr=False)  # its own repr hides it, and so does the log line

    stream, lines = capture(secrets=("hunter2",))
    fields = {"raw": b"pw=hunter2", "login": Login("ann", "kept-out"), "when": datetime(2026, 1, 2)}
    log_line(__name__, "INFO", "odd values", fields)
    logger.bind(**fields).info("odd values")
    for record in lines():
        assert record["raw"] == f"b'pw={REDACTED}'"  # not base64, where no secret is seen
        assert record["login"] == str(Login("ann", "other"))
        assert record["when"] == "2026-01-02 00:00:00"
    assert "kept-out" not in stream.getvalue()
    assert leaked(stream.getvalue(), "hunter2") == []


def test_a_bound_time_or_level_field_is_data_and_redacted() -> None:
    _, lines = capture(secrets=("hunter2",))
    log_line(__name__, "INFO", "m", {"level": "hunter2", "time": "at hunter2"})
    (record,) = lines()
    assert (record["level"], record["time"]) == (REDACTED, f"at {REDACTED}")
