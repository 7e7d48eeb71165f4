"""Loading: the TOML file, then ``VULTR_SCRAPER__*`` environment overrides, then validation,
then the secret files.

Every problem is one ``ConfigError`` line naming the key and where its value came from (the
file, or the environment variable), for the process to exit with ``EX_CONFIG`` before it
touches Redis.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import msgspec
import msgspec.inspect

from vultr_scraper_core.config.schema import Config, problems
from vultr_scraper_core.config.secrets import SecretFileError, Secrets, read_secrets

ENV_PREFIX = "VULTR_SCRAPER__"
CONFIG_PATH_ENV = "VULTR_SCRAPER_CONFIG"
EX_CONFIG = 78  # sysexits.h: configuration error; systemd's RestartPreventExitStatus uses it


class ConfigError(Exception):
    """A configuration problem, with a one-line message naming the key and its source."""

    def __init__(self, message: str) -> None:
        # One line whatever the underlying library put in its message (journald, exit 78).
        super().__init__(" ".join(message.splitlines()))


class LoadedConfig(msgspec.Struct, frozen=True, kw_only=True):
    config: Config
    secrets: Secrets
    # Where the values came from: the file read (or "defaults"), plus the environment variables
    # that overrode keys, e.g. "defaults + environment (VULTR_SCRAPER__VULTR__BASE_URL)".
    source: str


_DEFAULTS: dict[str, Any] = msgspec.to_builtins(Config())


def load_config(
    path: str | os.PathLike[str] | None = None, environ: Mapping[str, str] | None = None
) -> LoadedConfig:
    """Read the file (``path``, else ``$VULTR_SCRAPER_CONFIG``, else none), apply env overrides,
    validate, and read the secret files. Raises ConfigError with a one-line message."""
    env = os.environ if environ is None else environ
    chosen = os.fspath(path) if path else env.get(CONFIG_PATH_ENV, "")
    data: dict[str, Any] = _read_toml(chosen) if chosen else {}
    source = chosen or "defaults"
    origins = _Origins(source, data)
    origins.env_keys = _apply_env_overrides(data, env)
    try:
        config = msgspec.convert(_over_defaults(_DEFAULTS, data), Config)
    except msgspec.ValidationError as exc:
        raise ConfigError(_describe_validation_error(exc, origins)) from None
    found = problems(config)
    if found:
        key, reason = found[0]
        raise ConfigError(f"{origins.of(key)}: {key}: {reason}")
    try:
        secrets = read_secrets(config, env)
    except SecretFileError as error:
        raise ConfigError(f"{origins.of(error.key)}: {error.key}: {error.reason}") from None
    return LoadedConfig(
        config=config, secrets=secrets, source=describe_source(source, origins.env_keys.values())
    )


def describe_source(base: str, env_vars: Iterable[str]) -> str:
    """``base`` (the file or "defaults") with the overriding environment variables, if any."""
    names = sorted(env_vars)
    return f"{base} + environment ({', '.join(names)})" if names else base


def _over_defaults(defaults: Any, data: Any) -> Any:
    """``data`` laid over the default tables, key by key. Without this, setting one key of a
    table whose default differs from its type's defaults (``[schedules.prune] minute = [9]``)
    would silently reset that table's other keys (``hour = [3]`` -> every hour)."""
    if not isinstance(defaults, dict) or not isinstance(data, dict):
        return data
    merged = dict(defaults)
    for key, value in data.items():
        merged[key] = _over_defaults(defaults[key], value) if key in defaults else value
    return merged


def state_dir(config: Config, environ: Mapping[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    if config.paths.state_dir:
        return Path(config.paths.state_dir)
    if env.get("STATE_DIRECTORY"):
        # systemd may pass several colon-separated directories; the first is ours.
        return Path(env["STATE_DIRECTORY"].split(":")[0])
    xdg = env.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(xdg) / "vultr-scraper"


def _read_toml(path: str) -> dict[str, Any]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config file: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: config file is not UTF-8 text") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None


def _parse_env_value(raw: str, target: msgspec.inspect.Type | None = None) -> Any:
    """``3`` -> int, ``true`` -> bool, ``[0, 30]`` -> list; anything else stays a string.

    A key whose type is a string keeps the text as written (``8080``, ``2024-01-01``), unless it
    is a quoted TOML string."""
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw
    if _is_text(target) and not isinstance(value, str):
        return raw
    return value


def _is_text(target: msgspec.inspect.Type | None) -> bool:
    if isinstance(target, msgspec.inspect.StrType):
        return True
    if isinstance(target, msgspec.inspect.LiteralType):
        return all(isinstance(value, str) for value in target.values)
    if isinstance(target, msgspec.inspect.UnionType):
        kinds = [t for t in target.types if not isinstance(t, msgspec.inspect.NoneType)]
        return bool(kinds) and all(_is_text(t) for t in kinds)
    return False


def _field_type(parts: list[str]) -> msgspec.inspect.Type | None:
    """The declared type at a dotted path of Config, or None when it is not a struct field."""
    node: msgspec.inspect.Type | None = msgspec.inspect.type_info(Config)
    for part in parts:
        if not isinstance(node, msgspec.inspect.StructType):
            return None
        node = next((field.type for field in node.fields if field.name == part), None)
    return node


def _apply_env_overrides(data: dict[str, Any], env: Mapping[str, str]) -> dict[str, str]:
    """Merge ``VULTR_SCRAPER__SECTION__KEY`` variables into ``data``; return key -> var name."""
    applied: dict[str, str] = {}
    for name in sorted(env):
        if not name.startswith(ENV_PREFIX):
            continue
        parts = [part.lower() for part in name[len(ENV_PREFIX) :].split("__")]
        if not all(parts):
            raise ConfigError(f"environment variable {name}: empty key segment")
        node = data
        for index, part in enumerate(parts[:-1]):
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                dotted = ".".join(parts[: index + 1])
                raise ConfigError(f"environment variable {name}: {dotted} is not a table")
            node = child
        node[parts[-1]] = _parse_env_value(env[name], _field_type(parts))
        applied[".".join(parts)] = name
    return applied


class _Origins:
    """Says where a key's value came from: an environment variable, else the file."""

    def __init__(self, source: str, file_data: dict[str, Any]) -> None:
        self.source = source
        self.env_keys: dict[str, str] = {}
        self._file_data = _copy_tables(file_data)

    def of(self, key: str) -> str:
        if key in self.env_keys:
            return f"environment variable {self.env_keys[key]}"
        for dotted, var in self.env_keys.items():
            # The variable set a whole table or array that holds the key.
            if key.startswith((dotted + ".", dotted + "[")):
                return f"environment variable {var}"
        if not self._in_file(key):
            for dotted, var in self.env_keys.items():
                # The variable created the (unknown) table named by the key.
                if dotted.startswith(key + "."):
                    return f"environment variable {var}"
        return self.source

    def _in_file(self, key: str) -> bool:
        node: Any = self._file_data
        for part in re.sub(r"\[\d+\]", "", key).split("."):
            if not isinstance(node, dict) or part not in node:
                return False
            node = node[part]
            if isinstance(node, list):
                return True
        return True


def _copy_tables(data: dict[str, Any]) -> dict[str, Any]:
    return {
        key: _copy_tables(value) if isinstance(value, dict) else value
        for key, value in data.items()
    }


# Keys that moved: an old file names them, the error says where they live now.
MOVED_KEYS = {
    f"catalog.{name}": f"catalog.gate.{name}"
    for name in ("max_count_drop", "max_price_ratio", "min_price_ratio")
}

_PATH_RE = re.compile(r" - at `\$(?P<path>[^`]*)`$")
_UNKNOWN_RE = re.compile(r"^Object contains unknown field `(?P<field>[^`]+)`")
_MISSING_RE = re.compile(r"^Object missing required field `(?P<field>[^`]+)`")


def _describe_validation_error(exc: msgspec.ValidationError, origins: _Origins) -> str:
    message = str(exc)
    match = _PATH_RE.search(message)
    key = match.group("path").lstrip(".") if match else ""
    detail = message[: match.start()] if match else message
    for pattern, reason in ((_UNKNOWN_RE, "unknown key"), (_MISSING_RE, "required key missing")):
        found = pattern.match(detail)
        if found:
            key = f"{key}.{found.group('field')}" if key else found.group("field")
            detail = reason
    if detail == "unknown key" and key in MOVED_KEYS:
        detail = f"unknown key (moved to {MOVED_KEYS[key]})"
    # TOML words, not JSON ones: a table is what msgspec calls an object.
    detail = detail.replace("`object`", "`table`")
    return f"{origins.of(key)}: {key or '(top level)'}: {detail}"
