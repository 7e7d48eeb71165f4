"""``vultr.base_url`` must be http(s): anything else is caught by ``config check`` (exit 78)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.worker.cli_harness import cli_env, invoke


@pytest.mark.parametrize("url", ["not a url", "ftp://user:hunter2@host/v2", "javascript:x"])
def test_config_check_refuses_a_base_url_that_is_not_http(
    url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = cli_env("redis://127.0.0.1:9/0", tmp_path, monkeypatch)
    result = invoke({**env, "VULTR_SCRAPER__VULTR__BASE_URL": url}, "config", "check")
    assert result.exit_code == 78, result.output
    (line,) = result.stderr.splitlines()
    assert "vultr.base_url: must be an http:// or https:// URL" in line
    assert "hunter2" not in result.stderr


def test_tables_escape_control_characters_from_external_data(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from vultr_scraper_worker.cli.common import print_table

    print_table([{"plan": "vc2\x1b]0;owned\x07", "region": "fra"}], ["plan", "region"])
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out
    assert "vc2\\x1b]0;owned\\x07" in out


def test_a_password_in_base_url_is_masked_in_the_cli_error_line_and_the_logs(
    redis_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = cli_env(redis_url, tmp_path, monkeypatch)
    env["VULTR_SCRAPER__VULTR__BASE_URL"] = "http://alice:hunter2@127.0.0.1:9/v2"  # refused
    result = invoke(env, "run", "scrape-catalog")
    assert result.exit_code == 1, result.output
    *logs, line = result.stderr.splitlines()  # the job's log lines, then the error line
    shown = "request to http://alice:***@127.0.0.1:9/v2/regions failed"
    assert line.startswith(f"vultr-scraper: scrape-catalog failed: {shown}")
    assert any(shown in log for log in logs)
    assert "hunter2" not in result.stderr + result.stdout


def test_config_show_masks_the_password_of_every_url(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = cli_env("redis://127.0.0.1:9/0", tmp_path, monkeypatch)
    env["VULTR_SCRAPER__HTTP__PUBLIC_URL"] = "https://bob:pw1234@status.example"
    env["VULTR_SCRAPER__HISTORY__S3_ENDPOINT_URL"] = "https://k:pw5678@s3.example"
    result = invoke(env, "config", "show")
    assert result.exit_code == 0, result.output
    assert 'public_url = "https://bob:***@status.example"' in result.stdout
    assert 's3_endpoint_url = "https://k:***@s3.example"' in result.stdout
    assert "pw1234" not in result.stdout and "pw5678" not in result.stdout


def test_config_check_masks_the_password_of_a_url_it_quotes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "config.toml"
    config.write_text(
        '[[health.endpoints]]\nname = "db"\nurl = "tcp://u:pw999@db.example:5432/x"\n'
    )
    env = cli_env("redis://127.0.0.1:9/0", tmp_path, monkeypatch)
    result = invoke(env, "--config", str(config), "config", "check")
    assert result.exit_code == 78, result.output
    (line,) = result.stderr.splitlines()
    assert "health.endpoints[0].url" in line and "tcp://u:***@db.example:5432/x" in line
    assert "pw999" not in result.stderr
