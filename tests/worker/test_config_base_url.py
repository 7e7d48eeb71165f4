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
