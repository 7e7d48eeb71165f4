"""The CLI as a person and a script see it: readable progress, usage errors that say what is
wrong (status 2, one line), fast failure on an unreachable Redis, --json where a table is
printed."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import msgspec
import pytest
from redis.exceptions import ResponseError

from tests.worker.cli_harness import cli_env, cli_runner, invoke
from vultr_scraper_core.config import load_config
from vultr_scraper_worker.cli import cli
from vultr_scraper_worker.cli.catalog_cmd import _accept_summary
from vultr_scraper_worker.cli.common import human_log_line, print_table, with_redis
from vultr_scraper_worker.exit_status import MEANINGS, ExitStatus, for_job_status

QUIET = "tests.worker.sample_quiet"


@pytest.fixture
def env(redis_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    return cli_env(redis_url, tmp_path, monkeypatch)


# -- progress on stderr ----------------------------------------------------------------------


def test_a_json_log_line_reads_as_clock_and_message() -> None:
    start = (
        '{"time":"2026-01-31T10:17:20.07+01:00","level":"INFO","logger":"w",'
        '"message":"scrape-catalog started (try 1/3)","event":"job.start"}'
    )
    assert human_log_line(start) == "09:17:20 scrape-catalog started (try 1/3)"
    end = (
        '{"time":"2026-01-31T09:17:21+00:00","level":"INFO","message":"scrape-catalog '
        'succeeded","event":"job.end","duration":0.6147}'
    )
    assert human_log_line(end) == "09:17:21 scrape-catalog succeeded in 0.61 s"
    warning = '{"time":"2026-01-31T09:17:21+00:00","level":"WARNING","message":"retrying\\nnow"}'
    assert human_log_line(warning) == "09:17:21 warning: retrying now"
    assert human_log_line("not json") == "not json"


def test_run_progress_is_text_or_json_and_quiet_silences_it(env: dict[str, str]) -> None:
    text = invoke(env, "run", "noop", "t:ux", "--log-format", "text", "--jobs-module", QUIET)
    assert text.exit_code == 0, text.output
    assert msgspec.json.decode(text.stdout)["status"] == "success"  # stdout stays one document
    lines = text.stderr.splitlines()
    assert lines and not any(line.startswith("{") for line in lines)
    assert any("noop started (try 1/" in line for line in lines)
    assert any("noop succeeded in " in line for line in lines)

    as_json = invoke(env, "run", "noop", "t:ux", "--log-format", "json", "--jobs-module", QUIET)
    assert as_json.exit_code == 0
    events = [msgspec.json.decode(line) for line in as_json.stderr.splitlines()]
    assert {"job.start", "job.end"} <= {event.get("event") for event in events}

    quiet = invoke(env, "run", "noop", "t:ux", "-q", "--jobs-module", QUIET)
    assert quiet.exit_code == 0 and quiet.stderr == ""


# -- usage errors: status 2, one line --------------------------------------------------------


@pytest.mark.parametrize("command", ["run", "enqueue"])
def test_a_job_given_the_wrong_arguments_is_a_usage_error(
    env: dict[str, str], command: str
) -> None:
    result = invoke(env, command, "flaky", "t:ux", "--jobs-module", QUIET)
    assert result.exit_code == 2, result.output
    assert result.stderr.strip() == (
        "vultr-scraper: job 'flaky' takes KEY FAILURES, got 1 argument(s)"
    )
    extra = invoke(env, command, "noop", "a", "b", "--jobs-module", QUIET)
    assert extra.exit_code == 2
    assert "job 'noop' takes [KEY], got 2 argument(s)" in extra.stderr


def test_changes_refuses_a_bad_cursor_and_an_empty_window(env: dict[str, str]) -> None:
    bad = invoke(env, "changes", "--after", "bogus")
    assert bad.exit_code == 2 and "is not an event id" in bad.stderr
    assert "Traceback" not in bad.output
    backwards = invoke(env, "changes", "--since", "1h", "--until", "2h")
    assert backwards.exit_code == 2 and "must be before --until" in backwards.stderr


@pytest.mark.parametrize(
    "args",
    [
        ("jobs", "--limit", "0"),
        ("check", "--max-age", "0"),
        ("enqueue", "noop", "--defer", "-1"),
        ("alerts", "deliveries", "--limit", "0"),
    ],
)
def test_nonsense_numbers_are_usage_errors(env: dict[str, str], args: tuple[str, ...]) -> None:
    result = invoke(env, *args)
    assert result.exit_code == 2, result.output


# -- Redis ----------------------------------------------------------------------------------


def test_a_query_gives_up_on_an_unreachable_redis_quickly(
    env: dict[str, str], unused_tcp_port: int
) -> None:
    env = {**env, "VULTR_SCRAPER__REDIS__URL": f"redis://127.0.0.1:{unused_tcp_port}/0"}
    for args in (("plans",), ("changes",), ("availability",), ("health",), ("quarantine",)):
        started = time.monotonic()
        result = invoke(env, *args)
        assert result.exit_code == 69, (args, result.output)
        assert time.monotonic() - started < 10
        assert result.stderr.startswith("vultr-scraper: Redis unreachable: ")
        assert len(result.stderr.splitlines()) == 1


def test_run_gives_up_on_an_unreachable_redis_quickly(
    env: dict[str, str], unused_tcp_port: int
) -> None:
    # The job itself would ride out an outage of worker.redis_outage_budget (30 s by default,
    # about a minute in all); reaching Redis at all has the short one-shot budget.
    env = {**env, "VULTR_SCRAPER__REDIS__URL": f"redis://127.0.0.1:{unused_tcp_port}/0"}
    started = time.monotonic()
    result = invoke(env, "run", "noop", "t:down", "--jobs-module", QUIET)
    assert result.exit_code == 69, result.output
    assert time.monotonic() - started < 10
    assert result.stderr.splitlines()[-1].startswith("vultr-scraper: Redis unreachable: ")


def test_redis_refusing_a_command_is_a_failure_not_an_outage(env: dict[str, str]) -> None:
    loaded = load_config(None, environ=env)

    async def refused(redis: Any) -> None:
        raise ResponseError("WRONGTYPE Operation against a key holding the wrong kind of value")

    with pytest.raises(SystemExit) as stopped:
        with_redis(loaded, refused)
    assert stopped.value.code == 1


# -- output ---------------------------------------------------------------------------------


def test_quarantine_discard_and_config_check_speak_json(env: dict[str, str]) -> None:
    discard = invoke(env, "quarantine", "discard", "--json")
    assert discard.exit_code == 1 and msgspec.json.decode(discard.stdout) == {
        "discarded": False,
        "stock_discarded": [],
    }
    accept = invoke(env, "quarantine", "accept")
    assert accept.exit_code == 1 and "nothing is quarantined" in accept.stderr
    check = invoke(env, "config", "check", "--json")
    assert check.exit_code == 0 and msgspec.json.decode(check.stdout)["ok"] is True


def test_accept_summary_reads_as_a_sentence() -> None:
    result = {"status": "success", "added": 0, "retired": 4, "updated": 4, "events": 1}
    assert _accept_summary(result) == "0 added, 4 retired, 4 updated, 1 change event"
    assert _accept_summary({"status": "success"}) == "done"


def test_jobs_table_shows_readable_schedules(env: dict[str, str]) -> None:
    result = invoke(env, "jobs", "--jobs-module", "tests.worker.sample_jobs")
    assert result.exit_code == 0, result.output
    schedules = result.stdout.split("\nJobs\n", 1)[1]
    assert "hour * minute" not in schedules
    assert "on demand" in schedules


def test_an_empty_list_cell_is_a_dash(capsys: pytest.CaptureFixture[str]) -> None:
    print_table([{"alert": "a", "sinks": []}], ("alert", "sinks"))
    assert capsys.readouterr().out.splitlines()[1].split() == ["a", "-"]


def test_top_level_help_documents_every_exit_status(env: dict[str, str]) -> None:
    result = invoke(env, "--help")
    for status in ("0 ", "1 ", "2 ", "3 ", "69 ", "78 "):
        assert f"\n    {status}" in result.stdout


def test_help_lists_every_exit_status() -> None:
    shown = cli_runner({}).invoke(cli, ["--help"])
    assert shown.exit_code == 0
    for status in ExitStatus:
        assert f"  {int(status):<3} {MEANINGS[status]}" in shown.output


@pytest.mark.parametrize(
    ("status", "expected"),
    [(None, 0), ("success", 0), ("quarantined", 3), ("failed", 1), ("unheard-of", 1)],
)
def test_a_job_result_status_is_one_exit_status(status: object, expected: int) -> None:
    assert for_job_status(status) == expected
