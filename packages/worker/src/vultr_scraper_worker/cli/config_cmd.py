"""``vultr-scraper config check`` and ``config show``."""

from __future__ import annotations

import math
import re
from typing import Any

import click

from vultr_scraper_worker.cli.common import State, json_option, print_json

MASK = "***"


@click.group()
def config() -> None:
    """Validate or display the effective configuration."""


@config.command("check")
@json_option
@click.pass_obj
def check(state: State, as_json: bool) -> None:
    """Load the configuration and read its secret files; exit 78 on any problem.

    The problem is one line on stderr naming the key and the file or environment variable.
    """
    loaded = state.loaded()
    if as_json:
        print_json({"ok": True, "source": loaded.source})
        return
    click.echo(f"configuration OK ({loaded.source})")


@config.command("show")
@json_option
@click.pass_obj
def show(state: State, as_json: bool) -> None:
    """Print the effective configuration (defaults, file, environment); secrets masked."""
    from vultr_scraper_core.config import config_to_dict

    loaded = state.loaded()
    document: dict[str, Any] = {
        "source": loaded.source,
        "config": config_to_dict(loaded.config),
        "secrets": {
            "vultr_api_key": MASK if loaded.secrets.vultr_api_key else None,
            "redis_password": MASK if loaded.secrets.redis_password else None,
            "redis_sentinel_password": MASK if loaded.secrets.redis_sentinel_password else None,
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


def _print_toml(data: dict[str, Any], path: tuple[str, ...] = ()) -> None:
    """TOML that ``tomllib`` reads back to the same values; ``None`` (unset) becomes a comment."""
    scalars = {
        key: value
        for key, value in data.items()
        if not isinstance(value, dict | list)
        or (isinstance(value, list) and not any(isinstance(item, dict) for item in value))
    }
    tables = {key: value for key, value in data.items() if key not in scalars}
    for key, value in scalars.items():
        if value is None:
            click.echo(f"# {_toml_key(key)} is unset")
        else:
            click.echo(f"{_toml_key(key)} = {_toml_value(value)}")
    for key, value in tables.items():
        name = ".".join(_toml_key(part) for part in (*path, key))
        if isinstance(value, dict):
            click.echo(f"\n[{name}]")
            _print_toml(value, (*path, key))
        else:
            for item in value:
                click.echo(f"\n[[{name}]]")
                _print_toml(item, (*path, key))


_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def _toml_key(key: str) -> str:
    return key if _BARE_KEY.fullmatch(key) else _toml_string(key)


def _toml_string(value: str) -> str:
    # A JSON string is a valid TOML basic string (same escapes, \uXXXX included).
    import msgspec

    return msgspec.json.encode(value).decode()


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return _toml_string(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(item) for item in value if item is not None) + "]"
    if isinstance(value, dict):
        inner = ", ".join(
            f"{_toml_key(key)} = {_toml_value(item)}"
            for key, item in value.items()
            if item is not None
        )
        return "{" + inner + "}" if inner else "{}"
    return str(value)
