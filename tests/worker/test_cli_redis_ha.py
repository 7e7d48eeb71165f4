"""The CLI with a Sentinel or TLS Redis that is misconfigured: exit 78, one line, no secret."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.worker import cli_harness
from vultr_scraper_core.config import EX_CONFIG

PASSWORD = "sentinel-url-pw-4411"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in list(os.environ):
        if name.startswith("VULTR_SCRAPER") or name == "CREDENTIALS_DIRECTORY":
            monkeypatch.delenv(name)
    yield


def _error_line(env: dict[str, str], *args: str) -> str:
    result = cli_harness.invoke(env, *args)
    assert result.exit_code == EX_CONFIG, result.output
    (line,) = result.stderr.splitlines()
    assert PASSWORD not in result.stderr
    return line


@pytest.mark.parametrize("command", [("config", "check"), ("jobs",), ("worker",)])
def test_a_bad_sentinel_url_stops_every_command_with_78(command: tuple[str, ...]) -> None:
    env = {"VULTR_SCRAPER__REDIS__URL": f"redis+sentinel://app:{PASSWORD}@h1:26379,h2:x/m"}
    line = _error_line(env, *command)
    assert "redis.url: sentinel 2 has no valid port" in line, line


def test_a_missing_ca_file_stops_the_worker_with_78(tmp_path: Path) -> None:
    env = {
        "VULTR_SCRAPER__REDIS__URL": "rediss://127.0.0.1:9/0",
        "VULTR_SCRAPER__REDIS__CA_FILE": str(tmp_path / "missing-ca.pem"),
    }
    line = _error_line(env, "worker")
    assert "redis.ca_file: cannot read file" in line and "missing-ca.pem" in line, line
