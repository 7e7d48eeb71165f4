"""The CLI loads what a command uses, no more: help and version never load the HTTP client,
Redis, Prometheus or the web app; a read command loads the store and Redis but not the web
server or the HTTP client. Each check runs the CLI in a fresh interpreter and reads its
``sys.modules`` afterwards (an import here, in the test process, would prove nothing)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import click
import pytest

from tests.worker.cli_harness import cli_env
from vultr_scraper_worker.cli import cli

# Top-level packages and our own modules that help must not load.
HEAVY = ("aiohttp", "redis", "prometheus_client", "arq")
WEB = (
    "vultr_scraper_worker.api",
    "vultr_scraper_worker.worker_main",
    "vultr_scraper_core.http",
)

# Runs each argument list given as JSON in turn, in this one process, and after each records
# which watched modules are loaded; prints {"<args>": [modules], ...} on the last line.
PROBE = """
import json, sys
from vultr_scraper_worker.cli import cli
watched = tuple(sys.argv[2:])
seen = {}
for args in json.loads(sys.argv[1]):
    try:
        cli.main(args, prog_name="vultr-scraper", standalone_mode=False)
    except SystemExit:
        pass
    except Exception as error:
        seen[" ".join(args)] = ["error: " + repr(error)]
        continue
    seen[" ".join(args)] = sorted(
        name for name in sys.modules if name in watched or name.startswith(
            tuple(prefix + "." for prefix in watched))
    )
print(json.dumps(seen))
"""


def _probe(
    invocations: list[list[str]], watched: tuple[str, ...], env: dict[str, str] | None = None
) -> dict[str, list[str]]:
    result = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(invocations), *watched],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    loaded: dict[str, list[str]] = json.loads(result.stdout.strip().splitlines()[-1])
    return loaded


def _help_invocations() -> list[list[str]]:
    """``--help`` of the CLI and of every command and subcommand, found by walking the groups."""
    found: list[list[str]] = []

    def walk(group: click.Group, path: list[str]) -> None:
        for name, command in sorted(group.commands.items()):
            found.append([*path, name, "--help"])
            if isinstance(command, click.Group):
                walk(command, [*path, name])

    walk(cli, [])
    return found


def test_help_and_version_load_no_heavy_module() -> None:
    invocations = [["--help"], ["-V"], *_help_invocations()]
    assert len(invocations) > 15  # the walk found the commands
    loaded = _probe(invocations, HEAVY + WEB)
    # Modules accumulate in the one process: the first invocation that shows one is its cause.
    culprit = next(((args, modules) for args, modules in loaded.items() if modules), None)
    if culprit is not None:
        args, modules = culprit
        shown = sorted({name if name.startswith(WEB) else name.split(".")[0] for name in modules})
        pytest.fail(f"`vultr-scraper {args}` (or importing the CLI) loads {', '.join(shown)}")


def test_version_prints_the_installed_version() -> None:
    from vultr_scraper_core import __version__

    result = subprocess.run(
        [sys.executable, "-m", "vultr_scraper_worker", "-V"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert result.stdout.strip() == f"vultr-scraper {__version__}"
    assert __version__ != "0.0.0"  # the installed metadata was found


@pytest.mark.parametrize(
    "args",
    [["plans", "--json"], ["changes", "--json"], ["availability", "--json"], ["check", "--json"]],
    ids=lambda args: args[0],
)
def test_a_read_command_loads_redis_and_the_store_only(
    args: list[str], redis_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = {**os.environ, **cli_env(redis_url, tmp_path, monkeypatch)}
    watched = ("redis", "vultr_scraper_core.store", "aiohttp", "prometheus_client", *WEB)
    loaded = _probe([args], watched, env)[" ".join(args)]
    assert not any(name.startswith("error") for name in loaded), loaded
    assert "redis" in loaded and "vultr_scraper_core.store" in loaded, loaded
    unwanted = [name for name in loaded if name.split(".")[0] in ("aiohttp", "prometheus_client")]
    unwanted += [name for name in loaded if name.startswith(WEB)]
    assert not unwanted, f"{' '.join(args)} loads {unwanted}"
