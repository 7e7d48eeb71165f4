"""Running the CLI in-process in the worker tests: a click runner that keeps stderr apart from
stdout, ``invoke`` with an environment, and the environment of a CLI run against the private
Redis."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from vultr_scraper_worker.cli import cli


def cli_runner(env: dict[str, str] | None = None) -> CliRunner:
    # click < 8.2 (the lowest-direct leg) mixes stderr into stdout unless told not to; 8.2
    # removed the option and always keeps them apart.
    try:
        options: dict[str, Any] = {"mix_stderr": False}
        return CliRunner(env=env, **options)
    except TypeError:
        return CliRunner(env=env)


def invoke(env: dict[str, str] | None, *args: str) -> Result:
    """``vultr-scraper <args>`` in-process, with ``env`` set for the run."""
    return cli_runner().invoke(cli, list(args), env=env, prog_name="vultr-scraper")


def cli_env(redis_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """No inherited ``VULTR_SCRAPER*`` variables; the returned environment points the CLI at
    the private Redis and a state directory under ``tmp_path``, with no HTTP server."""
    for name in list(os.environ):
        if name.startswith("VULTR_SCRAPER"):
            monkeypatch.delenv(name)
    return {
        "VULTR_SCRAPER__REDIS__URL": redis_url,
        "VULTR_SCRAPER__PATHS__STATE_DIR": str(tmp_path / "state"),
        "VULTR_SCRAPER__HTTP__LISTEN": "",
    }
