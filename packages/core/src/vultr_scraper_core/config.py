"""The whole configuration as msgspec Structs, loaded from TOML and ``VULTR_SCRAPER__*`` variables.

Every key has a default, so no file is needed. Unknown keys and wrong types are errors that name
the key and where it came from (the file, or the environment variable). Secrets are never part of
the TOML itself: only paths to files (``*_file`` keys) whose contents are read at load time.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import msgspec

ENV_PREFIX = "VULTR_SCRAPER__"
CONFIG_PATH_ENV = "VULTR_SCRAPER_CONFIG"
EX_CONFIG = 78  # sysexits.h: configuration error; systemd's RestartPreventExitStatus uses it


class ConfigError(Exception):
    """A configuration problem, with a one-line message naming the key and its source."""


class _Section(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Base of every config table: keyword-only, and unknown keys are errors."""


class RedisConfig(_Section):
    # Empty: the CLI and the worker start and own a private redis-server under the state dir.
    url: str = ""
    password_file: str = ""
    queue_name: str = "arq:queue"
    # Prefix of every key the project stores (catalogue, changes, failed jobs, ...).
    key_prefix: str = "vs"


class VultrConfig(_Section):
    base_url: str = "https://api.vultr.com/v2"
    # The catalogue endpoints need no key; one is only sent where an endpoint requires it.
    api_key_file: str = ""
    per_page: int = 500
    availability_concurrency: int = 4


class ClientConfig(_Section):
    """Outgoing HTTP: timeouts, pacing and the one retry policy every caller shares."""

    timeout: float = 30.0
    connect_timeout: float = 10.0
    rate_limit: float = 5.0  # requests per second per session; 0 disables pacing
    connection_limit: int = 20
    max_attempts: int = 4
    backoff_base: float = 0.5
    backoff_cap: float = 30.0
    retry_after_cap: float = 120.0


class HttpConfig(_Section):
    """The worker's own HTTP server: API, status page and metrics."""

    listen: str = "127.0.0.1:8080"  # empty disables the server
    token_file: str = ""  # bearer token for write endpoints
    protect_reads: bool = False
    catalog_max_age: float = 3600.0  # /healthz turns 503 when the last good scrape is older
    price_metrics: bool = False  # per-plan price series (high cardinality) on /metrics


class CatalogConfig(_Section):
    max_count_drop: float = 0.2  # quarantine when the item count falls by more than this share
    max_price_ratio: float = 1.5  # quarantine when a price rises above old * ratio
    min_price_ratio: float = 0.5  # quarantine when a price falls below old * ratio
    archive_retention_days: int = 30
    include_os: bool = True


class ScheduleConfig(_Section):
    enabled: bool = True
    # Cron fields in UTC; an empty list means "every".
    minute: list[int] = msgspec.field(default_factory=list)
    hour: list[int] = msgspec.field(default_factory=list)
    timeout: float = 300.0


def _schedule(minute: list[int], hour: list[int] | None = None, timeout: float = 300.0) -> Any:
    return msgspec.field(
        default_factory=lambda: ScheduleConfig(minute=minute, hour=hour or [], timeout=timeout)
    )


class SchedulesConfig(_Section):
    scrape_catalog: ScheduleConfig = _schedule([0, 15, 30, 45], timeout=600.0)
    scrape_availability: ScheduleConfig = _schedule(list(range(0, 60, 5)), timeout=300.0)
    check_health: ScheduleConfig = _schedule(list(range(60)), timeout=120.0)
    prune: ScheduleConfig = _schedule([7], hour=[3], timeout=600.0)


class WorkerConfig(_Section):
    max_tries: int = 3
    max_jobs: int = 10
    job_completion_wait: float = 30.0
    health_check_interval: float = 30.0
    poll_delay: float = 0.5
    keep_result: float = 3600.0
    retry_backoff_base: float = 5.0
    retry_backoff_cap: float = 300.0
    # How long Redis may be unreachable before the worker gives up and exits non-zero.
    redis_outage_budget: float = 30.0


class EndpointConfig(_Section):
    name: str
    url: str
    method: str = "GET"
    headers: dict[str, str] = msgspec.field(default_factory=dict)
    timeout: float = 10.0
    interval: float = 60.0
    status: list[int] = msgspec.field(default_factory=lambda: [200])
    max_latency_ms: float | None = None
    body_contains: str | None = None
    body_regex: str | None = None
    json_path: str | None = None
    json_equals: Any = None
    cert_min_days: int | None = None


class HealthConfig(_Section):
    check_vultr_api: bool = True
    failure_threshold: int = 3
    success_threshold: int = 2
    concurrency: int = 20
    keep_results: int = 100
    endpoints: list[EndpointConfig] = msgspec.field(default_factory=list)


class AlertConfig(_Section):
    name: str
    kinds: list[str] = msgspec.field(default_factory=list)
    sinks: list[str] = msgspec.field(default_factory=list)
    plan_type: str | None = None
    plan: str | None = None
    min_vcpu: int | None = None
    min_ram_mb: int | None = None
    min_gpu_vram_gb: int | None = None
    gpu_type: str | None = None
    regions: list[str] = msgspec.field(default_factory=list)
    max_monthly: float | None = None
    max_hourly: float | None = None
    in_stock: bool | None = None
    endpoint: str | None = None


class SinkConfig(_Section):
    name: str
    kind: Literal["webhook", "slack", "ntfy"] = "webhook"
    url: str = ""
    secret_file: str = ""
    timeout: float = 10.0


class LogConfig(_Section):
    level: str = "INFO"


class PathsConfig(_Section):
    # Empty: $STATE_DIRECTORY (systemd), else $XDG_STATE_HOME/vultr-scraper.
    state_dir: str = ""


class Config(_Section):
    redis: RedisConfig = msgspec.field(default_factory=RedisConfig)
    vultr: VultrConfig = msgspec.field(default_factory=VultrConfig)
    client: ClientConfig = msgspec.field(default_factory=ClientConfig)
    http: HttpConfig = msgspec.field(default_factory=HttpConfig)
    catalog: CatalogConfig = msgspec.field(default_factory=CatalogConfig)
    worker: WorkerConfig = msgspec.field(default_factory=WorkerConfig)
    schedules: SchedulesConfig = msgspec.field(default_factory=SchedulesConfig)
    health: HealthConfig = msgspec.field(default_factory=HealthConfig)
    alerts: list[AlertConfig] = msgspec.field(default_factory=list)
    sinks: list[SinkConfig] = msgspec.field(default_factory=list)
    log: LogConfig = msgspec.field(default_factory=LogConfig)
    paths: PathsConfig = msgspec.field(default_factory=PathsConfig)


class Secrets(msgspec.Struct, frozen=True, kw_only=True):
    """Secret values read from the ``*_file`` keys. Never logged, never shown."""

    vultr_api_key: str | None = None
    redis_password: str | None = None
    http_token: str | None = None
    sink_secrets: dict[str, str] = msgspec.field(default_factory=dict)

    def values(self) -> list[str]:
        found = [self.vultr_api_key, self.redis_password, self.http_token]
        found.extend(self.sink_secrets.values())
        return [value for value in found if value]


class LoadedConfig(msgspec.Struct, frozen=True, kw_only=True):
    config: Config
    secrets: Secrets
    source: str  # the file read, or "defaults"


def load_config(
    path: str | os.PathLike[str] | None = None, environ: Mapping[str, str] | None = None
) -> LoadedConfig:
    """Read the file (``path``, else ``$VULTR_SCRAPER_CONFIG``, else none), apply env overrides,
    validate, and read the secret files. Raises ConfigError with a one-line message."""
    env = os.environ if environ is None else environ
    chosen = os.fspath(path) if path else env.get(CONFIG_PATH_ENV, "")
    data: dict[str, Any] = _read_toml(chosen) if chosen else {}
    source = chosen or "defaults"
    env_keys = _apply_env_overrides(data, env)
    try:
        config = msgspec.convert(data, Config)
    except msgspec.ValidationError as exc:
        raise ConfigError(_describe_validation_error(exc, source, env_keys)) from None
    _check_values(config, source)
    secrets = _read_secrets(config, env)
    return LoadedConfig(config=config, secrets=secrets, source=source)


def config_to_dict(config: Config) -> dict[str, Any]:
    """Plain data for ``config show``. Contains only paths to secrets, never their values."""
    result: dict[str, Any] = msgspec.to_builtins(config)
    return result


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


def _parse_env_value(raw: str) -> Any:
    """``3`` -> int, ``true`` -> bool, ``[0, 30]`` -> list; anything else stays a string."""
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw


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
        node[parts[-1]] = _parse_env_value(env[name])
        applied[".".join(parts)] = name
    return applied


_PATH_RE = re.compile(r" - at `\$(?P<path>[^`]*)`$")
_UNKNOWN_RE = re.compile(r"^Object contains unknown field `(?P<field>[^`]+)`")


def _describe_validation_error(
    exc: msgspec.ValidationError, source: str, env_keys: Mapping[str, str]
) -> str:
    message = str(exc)
    match = _PATH_RE.search(message)
    path = match.group("path") if match else ""
    detail = message[: match.start()] if match else message
    key = re.sub(r"\[(\d+)\]", r"[\1]", path).lstrip(".")
    unknown = _UNKNOWN_RE.match(detail)
    if unknown:
        key = f"{key}.{unknown.group('field')}" if key else unknown.group("field")
        detail = "unknown key"
    origin = env_keys.get(key) or next(
        (var for dotted, var in env_keys.items() if key.startswith(dotted + ".")), None
    )
    where = f"environment variable {origin}" if origin else source
    return f"{where}: {key or '(top level)'}: {detail}"


def _check_values(config: Config, source: str) -> None:
    """Range checks that types alone cannot express."""
    problems: list[str] = []
    if config.worker.max_tries < 1:
        problems.append("worker.max_tries: must be at least 1")
    if config.worker.max_jobs < 1:
        problems.append("worker.max_jobs: must be at least 1")
    if config.client.max_attempts < 1:
        problems.append("client.max_attempts: must be at least 1")
    if not 0 < config.catalog.max_count_drop < 1:
        problems.append("catalog.max_count_drop: must be between 0 and 1")
    if config.health.failure_threshold < 1 or config.health.success_threshold < 1:
        problems.append("health thresholds: must be at least 1")
    names = [endpoint.name for endpoint in config.health.endpoints]
    if len(names) != len(set(names)):
        problems.append("health.endpoints: names must be unique")
    sink_names = {sink.name for sink in config.sinks}
    for alert in config.alerts:
        missing = [name for name in alert.sinks if name not in sink_names]
        if missing:
            problems.append(f"alerts.{alert.name}.sinks: unknown sink {', '.join(missing)}")
    if config.redis.url and not config.redis.url.startswith(("redis://", "rediss://", "unix://")):
        problems.append("redis.url: must start with redis://, rediss:// or unix://")
    if problems:
        raise ConfigError(f"{source}: {problems[0]}")


def _read_secret_file(key: str, path: str, env: Mapping[str, str]) -> str:
    resolved = Path(path)
    # Relative paths name a systemd credential (LoadCredential=) when one is provided.
    if not resolved.is_absolute() and env.get("CREDENTIALS_DIRECTORY"):
        resolved = Path(env["CREDENTIALS_DIRECTORY"]) / resolved
    try:
        value = resolved.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(f"{key}: cannot read secret file {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{key}: secret file {path} is not UTF-8 text") from None
    if not value:
        raise ConfigError(f"{key}: secret file {path} is empty")
    return value


def _read_secrets(config: Config, env: Mapping[str, str]) -> Secrets:
    def optional(key: str, path: str) -> str | None:
        return _read_secret_file(key, path, env) if path else None

    sink_secrets = {
        sink.name: _read_secret_file(f"sinks.{sink.name}.secret_file", sink.secret_file, env)
        for sink in config.sinks
        if sink.secret_file
    }
    return Secrets(
        vultr_api_key=optional("vultr.api_key_file", config.vultr.api_key_file),
        redis_password=optional("redis.password_file", config.redis.password_file),
        http_token=optional("http.token_file", config.http.token_file),
        sink_secrets=sink_secrets,
    )
