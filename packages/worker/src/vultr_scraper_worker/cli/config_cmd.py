"""``vultr-scraper config check`` and ``config show``."""

from __future__ import annotations

from typing import Any

import click

from vultr_scraper_core.config import config_to_dict
from vultr_scraper_worker.cli.common import State, json_option, print_json

MASK = "***"


@click.group()
def config() -> None:
    """Validate or display the effective configuration."""


@config.command("check")
@click.pass_obj
def check(state: State) -> None:
    """Load the configuration and read its secret files; exit 78 on any problem."""
    loaded = state.loaded()
    click.echo(f"configuration OK ({loaded.source})")


@config.command("show")
@json_option
@click.pass_obj
def show(state: State, as_json: bool) -> None:
    """Print the effective configuration (defaults, file, environment); secrets masked."""
    loaded = state.loaded()
    document: dict[str, Any] = {
        "source": loaded.source,
        "config": config_to_dict(loaded.config),
        "secrets": {
            "vultr_api_key": MASK if loaded.secrets.vultr_api_key else None,
            "redis_password": MASK if loaded.secrets.redis_password else None,
            "http_token": MASK if loaded.secrets.http_token else None,
            "sink_secrets": {name: MASK for name in loaded.secrets.sink_secrets},
        },
    }
    if as_json:
        print_json(document)
        return
    click.echo(f"# source: {loaded.source}")
    _print_toml(document["config"])
    click.echo("# secrets (masked)")
    for key, value in document["secrets"].items():
        click.echo(f"# {key} = {value if value is not None else '(not set)'}")


def _print_toml(data: dict[str, Any], prefix: str = "") -> None:
    scalars = {
        key: value
        for key, value in data.items()
        if not isinstance(value, dict | list)
        or (isinstance(value, list) and not any(isinstance(item, dict) for item in value))
    }
    tables = {key: value for key, value in data.items() if key not in scalars}
    for key, value in scalars.items():
        click.echo(f"{key} = {_toml_value(value)}")
    for key, value in tables.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            click.echo(f"\n[{name}]")
            _print_toml(value, f"{name}.")
        else:
            for item in value:
                click.echo(f"\n[[{name}]]")
                _print_toml(item, f"{name}.")


def _toml_value(value: Any) -> str:
    if value is None:
        return '""  # unset'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    return str(value)
