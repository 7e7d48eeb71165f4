"""The whole configuration as msgspec Structs, loaded from TOML and ``VULTR_SCRAPER__*`` variables.

Every key has a default, so no file is needed. Unknown keys and wrong types are errors that name
the key and where it came from (the file, or the environment variable). Secrets are never part of
the TOML itself: only paths to files (``*_file`` keys) whose contents are read at load time.
"""

from __future__ import annotations

import contextlib
import os
import re
import tomllib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit, urlunsplit

import msgspec
import msgspec.inspect

ENV_PREFIX = "VULTR_SCRAPER__"
CONFIG_PATH_ENV = "VULTR_SCRAPER_CONFIG"
EX_CONFIG = 78  # sysexits.h: configuration error; systemd's RestartPreventExitStatus uses it


class ConfigError(Exception):
    """A configuration problem, with a one-line message naming the key and its source."""

    def __init__(self, message: str) -> None:
        # One line whatever the underlying library put in its message (journald, exit 78).
        super().__init__(" ".join(message.splitlines()))


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


@dataclass(frozen=True)
class ListenAddress:
    """A parsed ``[http] listen``: a TCP host and port, or a unix socket path."""

    host: str | None = None  # None: every interface
    port: int = 0  # 0: any free port
    path: str | None = None  # a unix socket


_LISTEN_FORMS = "HOST:PORT (e.g. 127.0.0.1:8080), [IPv6]:PORT, :PORT, unix:/path or empty"


def parse_listen(value: str) -> ListenAddress | None:
    """The address from ``[http] listen``; None when it is empty (the server is disabled).

    The one parser of the key: the config loader validates with it and the HTTP server binds
    what it returns. Raises ValueError with a reason (no key name) when the value is invalid.
    """
    text = value.strip()
    if not text:
        return None
    if text.startswith("unix:"):
        path = text[len("unix:") :]
        if not path:
            raise ValueError(f"a unix socket needs a path (unix:/path), got {value!r}")
        return ListenAddress(path=path)
    host, separator, port_text = text.rpartition(":")
    bracketed = host.startswith("[") and host.endswith("]") and len(host) > 2
    if (
        not separator
        or not port_text.isdigit()
        or not 0 <= int(port_text) <= 65535
        or ("[" in host or "]" in host) != bracketed
        or (":" in host and not bracketed)
    ):
        raise ValueError(f"expected {_LISTEN_FORMS}, got {value!r}")
    if bracketed:
        host = host[1:-1]
    return ListenAddress(host=host or None, port=int(port_text))


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
    dispatch_alerts: ScheduleConfig = _schedule(list(range(60)), timeout=120.0)
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
    tls_verify: bool = True  # false: accept any certificate (cert_min_days still applies)
    ca_file: str = ""  # PEM file of the only CAs to trust for this endpoint
    # Per-endpoint overrides of the [health] thresholds.
    failure_threshold: int | None = None
    success_threshold: int | None = None


class HealthConfig(_Section):
    check_vultr_api: bool = True
    failure_threshold: int = 3
    success_threshold: int = 2
    concurrency: int = 20
    keep_results: int = 100
    rollup_days: int = 30  # hourly uptime rollups older than this are pruned
    endpoints: list[EndpointConfig] = msgspec.field(default_factory=list)


# The event kinds an [[alerts]] table may watch (see docs/health-and-alerts.md). Each maps to a
# change-event kind, some with a condition on the event's values.
ALERT_KINDS = (
    "new_plan",
    "plan_retired",
    "price_changed",
    "price_dropped",
    "price_increased",
    "back_in_stock",
    "out_of_stock",
    "stock_changed",
    "spec_changed",
    "region_added",
    "region_removed",
    "schema_drift",
    "endpoint_down",
    "endpoint_up",
)


class AlertConfig(_Section):
    """A saved search: which change events to watch and which plans / endpoints they concern."""

    name: str
    kinds: list[str] = msgspec.field(default_factory=list)  # from ALERT_KINDS, at least one
    sinks: list[str] = msgspec.field(default_factory=list)
    plan_type: str | None = None  # e.g. "vcg"
    plan: str | None = None  # plan id or glob, e.g. "vcg-*"
    min_vcpu: int | None = None
    min_ram_mb: int | None = None
    min_gpu_vram_gb: int | None = None
    gpu_type: str | None = None  # case-insensitive substring: "nvidia", "A100"
    regions: list[str] = msgspec.field(default_factory=list)  # empty: any region
    # USD, exact: a TOML number is read as written (0.15 -> Decimal("0.15")), and a string
    # ("0.0075") is accepted too, so money never passes through float arithmetic.
    max_monthly: Decimal | None = None
    max_hourly: Decimal | None = None
    in_stock: bool | None = None  # true: in stock in one of ``regions`` (any if empty)
    endpoint: str | None = None  # endpoint name or glob for endpoint_down / endpoint_up


class SinkConfig(_Section):
    name: str
    # webhook: JSON + HMAC signature; slack / discord: chat message; ntfy: plain-text POST.
    kind: Literal["webhook", "slack", "discord", "ntfy"] = "webhook"
    url: str = ""
    # webhook: the HMAC-SHA256 key; ntfy: a bearer token; slack / discord: the webhook URL
    # itself (used when ``url`` is empty, since those URLs are credentials).
    secret_file: str = ""
    timeout: float = 10.0
    headers: dict[str, str] = msgspec.field(default_factory=dict)


def _check_alerting(config: Config) -> list[tuple[str, str]]:
    """Health endpoints, alerts and sinks: what types alone cannot check."""
    problems: list[tuple[str, str]] = []
    health = config.health
    if health.concurrency < 1:
        problems.append(("health.concurrency", "must be at least 1"))
    if health.keep_results < 1:
        problems.append(("health.keep_results", "must be at least 1"))
    if health.rollup_days < 1:
        problems.append(("health.rollup_days", "must be at least 1"))
    for index, endpoint in enumerate(health.endpoints):
        key = f"health.endpoints[{index}]"
        if not endpoint.url.lower().startswith(("http://", "https://")):
            problems.append((f"{key}.url", "must start with http:// or https://"))
        if not endpoint.timeout > 0 or not endpoint.interval > 0:
            problems.append((key, "timeout and interval must be greater than 0"))
        for name in ("failure_threshold", "success_threshold"):
            value = getattr(endpoint, name)
            if value is not None and value < 1:
                problems.append((f"{key}.{name}", "must be at least 1"))
        if endpoint.body_regex is not None:
            try:
                re.compile(endpoint.body_regex)
            except re.error as exc:
                problems.append((f"{key}.body_regex", f"invalid regular expression: {exc}"))
        if endpoint.json_path is not None and not re.fullmatch(
            r"\$?\.?([^.\[\]]+|\[-?\d+\])(\.?([^.\[\]]+|\[-?\d+\]))*", endpoint.json_path
        ):
            problems.append((f"{key}.json_path", "invalid path (e.g. meta.total, items[0].id)"))
    for index, alert in enumerate(config.alerts):
        unknown = [kind for kind in alert.kinds if kind not in ALERT_KINDS]
        if not alert.kinds:
            problems.append((f"alerts[{index}].kinds", "must name at least one event kind"))
        elif unknown:
            problems.append(
                (
                    f"alerts[{index}].kinds",
                    f"unknown kind {unknown[0]!r}; known: {', '.join(ALERT_KINDS)}",
                )
            )
    names = [alert.name for alert in config.alerts]
    if len(names) != len(set(names)):
        problems.append(("alerts", "names must be unique"))
    sink_names = [sink.name for sink in config.sinks]
    if len(sink_names) != len(set(sink_names)):
        problems.append(("sinks", "names must be unique"))
    for index, sink in enumerate(config.sinks):
        chat_url_in_secret = sink.kind in ("slack", "discord") and sink.secret_file
        if not sink.url and not chat_url_in_secret:
            problems.append((f"sinks[{index}].url", "required (or secret_file for slack/discord)"))
        elif sink.url and not sink.url.lower().startswith(("http://", "https://")):
            problems.append((f"sinks[{index}].url", "must start with http:// or https://"))
    return problems


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
    # Secrets written into the TOML itself: URL passwords (``redis://:pw@host``) and the values
    # of credential-like endpoint headers (``Authorization``). Redacted from logs like the rest.
    inline: tuple[str, ...] = ()

    def values(self) -> list[str]:
        """Every secret value, for the log redaction filter."""
        found = [self.vultr_api_key, self.redis_password, self.http_token]
        found.extend(self.sink_secrets.values())
        found.extend(self.inline)
        return [value for value in found if value]


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
    _check_values(config, origins)
    secrets = _read_secrets(config, env, origins)
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


def config_to_dict(config: Config) -> dict[str, Any]:
    """Plain data for ``config show``: paths to secret files, never their contents, and the
    inline secrets (URL passwords, credential headers, chat webhook URLs) masked."""
    result: dict[str, Any] = msgspec.to_builtins(config)
    result["redis"]["url"] = mask_url(config.redis.url)
    result["vultr"]["base_url"] = mask_url(config.vultr.base_url)
    for table in (*result["health"]["endpoints"], *result["sinks"]):
        table["url"] = mask_url(table["url"])
        table["headers"] = {
            name: MASK if _is_credential_header(name) else value
            for name, value in table.get("headers", {}).items()
        }
    for sink, shown in zip(config.sinks, result["sinks"], strict=True):
        if sink.kind in _CHAT_KINDS and sink.url:
            shown["url"] = _mask_url_path(sink.url)
    return result


# Slack and Discord webhook URLs are credentials themselves: whoever has one can post.
_CHAT_KINDS = ("slack", "discord")


def _mask_url_path(url: str) -> str:
    """``https://hooks.slack.com/services/T/B/X`` -> ``https://hooks.slack.com/***``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return MASK
    return urlunsplit((parts.scheme, parts.hostname or "", f"/{MASK}", "", "")) or MASK


MASK = "***"
_CREDENTIAL_HEADER = re.compile(r"auth|token|key|secret|cookie|passw", re.IGNORECASE)


def _is_credential_header(name: str) -> bool:
    return bool(_CREDENTIAL_HEADER.search(name))


def _url_secrets(url: str) -> Iterator[str]:
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return
    if password:
        yield password
    yield from parse_qs(parts.query).get("password", [])


def mask_url(url: str) -> str:
    """``redis://user:pw@host/0`` -> ``redis://user:***@host/0`` (and ``?password=***``).

    For every URL from the configuration that is shown or stored (``config show``, the status
    page, endpoint health events), since a probe URL may carry credentials."""
    secrets = list(_url_secrets(url))
    if not secrets:
        return url
    parts = urlsplit(url)
    netloc = parts.netloc
    if parts.password:
        userinfo, _, hostinfo = netloc.rpartition("@")
        user, _, _ = userinfo.partition(":")
        netloc = f"{user}:{MASK}@{hostinfo}"
    query = re.sub(r"(^|&)password=[^&]*", rf"\1password={MASK}", parts.query)
    masked = urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
    if not netloc and url.startswith(f"{parts.scheme}://"):
        # urlunsplit drops the empty authority: unix:///run/x.sock would become unix:/run/x.sock
        masked = f"{parts.scheme}://{masked[len(parts.scheme) + 1 :]}"
    return masked


def _inline_secrets(config: Config) -> tuple[str, ...]:
    found: list[str] = []
    urls = [config.redis.url, config.vultr.base_url]
    urls.extend(endpoint.url for endpoint in config.health.endpoints)
    urls.extend(sink.url for sink in config.sinks)
    for url in urls:
        found.extend(_url_secrets(url))
    for sink in config.sinks:
        if sink.kind in _CHAT_KINDS and sink.url:
            found.append(sink.url)
            with contextlib.suppress(ValueError):
                path = urlsplit(sink.url).path
                if len(path) > 1:
                    found.append(path)  # a client may log the path alone
    tables: list[EndpointConfig | SinkConfig] = [*config.health.endpoints, *config.sinks]
    for table in tables:
        for name, value in table.headers.items():
            if _is_credential_header(name) and value:
                found.append(value)
                # "Bearer abc": the credential alone may be logged without its scheme.
                _scheme, _, credential = value.strip().partition(" ")
                if credential.strip():
                    found.append(credential.strip())
    return tuple(dict.fromkeys(value for value in found if value))


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
    # TOML words, not JSON ones: a table is what msgspec calls an object.
    detail = detail.replace("`object`", "`table`")
    return f"{origins.of(key)}: {key or '(top level)'}: {detail}"


LOG_LEVELS = ("TRACE", "DEBUG", "INFO", "SUCCESS", "WARNING", "ERROR", "CRITICAL")


def _check_values(config: Config, origins: _Origins) -> None:
    """Range checks that types alone cannot express."""
    problems: list[tuple[str, str]] = []

    def at_least(key: str, value: float, minimum: float) -> None:
        if value < minimum:
            problems.append((key, f"must be at least {minimum}, got {value}"))

    def positive(key: str, value: float) -> None:
        if not value > 0:
            problems.append((key, f"must be greater than 0, got {value}"))

    at_least("worker.max_tries", config.worker.max_tries, 1)
    at_least("worker.max_jobs", config.worker.max_jobs, 1)
    at_least("client.max_attempts", config.client.max_attempts, 1)
    positive("client.timeout", config.client.timeout)
    positive("client.connect_timeout", config.client.connect_timeout)
    at_least("client.rate_limit", config.client.rate_limit, 0)
    at_least("client.connection_limit", config.client.connection_limit, 0)
    at_least("client.backoff_base", config.client.backoff_base, 0)
    at_least("client.backoff_cap", config.client.backoff_cap, 0)
    at_least("vultr.availability_concurrency", config.vultr.availability_concurrency, 1)
    if not 1 <= config.vultr.per_page <= 500:
        problems.append(
            ("vultr.per_page", f"must be between 1 and 500, got {config.vultr.per_page}")
        )
    if not 0 < config.catalog.max_count_drop < 1:
        problems.append(("catalog.max_count_drop", "must be between 0 and 1"))
    at_least("health.failure_threshold", config.health.failure_threshold, 1)
    at_least("health.success_threshold", config.health.success_threshold, 1)
    if config.log.level.upper() not in LOG_LEVELS:
        problems.append(("log.level", f"must be one of {', '.join(LOG_LEVELS)}"))
    for name in SchedulesConfig.__struct_fields__:
        schedule: ScheduleConfig = getattr(config.schedules, name)
        for field, values, top in (("minute", schedule.minute, 59), ("hour", schedule.hour, 23)):
            bad = [value for value in values if not 0 <= value <= top]
            if bad:
                problems.append(
                    (f"schedules.{name}.{field}", f"values must be 0-{top}, got {bad[0]}")
                )
    names = [endpoint.name for endpoint in config.health.endpoints]
    if len(names) != len(set(names)):
        problems.append(("health.endpoints", "names must be unique"))
    sink_names = {sink.name for sink in config.sinks}
    for index, alert in enumerate(config.alerts):
        missing = [name for name in alert.sinks if name not in sink_names]
        if missing:
            problems.append((f"alerts[{index}].sinks", f"unknown sink {', '.join(missing)}"))
    problems.extend(_check_alerting(config))
    try:
        parse_listen(config.http.listen)
    except ValueError as error:
        problems.append(("http.listen", str(error)))
    if config.redis.url and not config.redis.url.startswith(("redis://", "rediss://", "unix://")):
        problems.append(("redis.url", "must start with redis://, rediss:// or unix://"))
    if problems:
        key, reason = problems[0]
        raise ConfigError(f"{origins.of(key)}: {key}: {reason}")


def _read_secret_file(key: str, path: str, env: Mapping[str, str], where: str) -> str:
    resolved = Path(path)
    # Relative paths name a systemd credential (LoadCredential=) when one is provided.
    if not resolved.is_absolute() and env.get("CREDENTIALS_DIRECTORY"):
        resolved = Path(env["CREDENTIALS_DIRECTORY"]) / resolved
    shown = os.fspath(resolved)
    try:
        value = resolved.read_text(encoding="utf-8").strip()
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise ConfigError(f"{where}: {key}: cannot read secret file {shown}: {reason}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{where}: {key}: secret file {shown} is not UTF-8 text") from None
    if not value:
        raise ConfigError(f"{where}: {key}: secret file {shown} is empty")
    return value


def _read_secrets(config: Config, env: Mapping[str, str], origins: _Origins) -> Secrets:
    def optional(key: str, path: str) -> str | None:
        return _read_secret_file(key, path, env, origins.of(key)) if path else None

    sink_secrets: dict[str, str] = {}
    for index, sink in enumerate(config.sinks):
        if sink.secret_file:
            key = f"sinks[{index}].secret_file"
            sink_secrets[sink.name] = _read_secret_file(key, sink.secret_file, env, origins.of(key))
    return Secrets(
        vultr_api_key=optional("vultr.api_key_file", config.vultr.api_key_file),
        redis_password=optional("redis.password_file", config.redis.password_file),
        http_token=optional("http.token_file", config.http.token_file),
        sink_secrets=sink_secrets,
        inline=_inline_secrets(config),
    )
