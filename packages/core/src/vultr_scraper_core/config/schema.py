"""Every table and key of the configuration, with its default, and the rules types cannot express.

The schema is a tree of msgspec Structs rooted at ``Config``: keyword-only, and an unknown key is
an error. ``problems`` lists the values that have the right type but are out of range or
inconsistent (a schedule minute of 60, an alert naming a sink that does not exist), each as the
dotted key and the reason; ``loading`` turns the first one into a ``ConfigError`` naming where
the key came from.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

import msgspec

from vultr_scraper_core.maintenance import WEEKDAYS, parse_window
from vultr_scraper_core.targets import parse_target


class _Section(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Base of every config table: keyword-only, and unknown keys are errors."""


class RedisConfig(_Section):
    # Empty (and no sentinels): the CLI and the worker start and own a private redis-server
    # under the state dir. redis+sentinel:// URLs name sentinels and a service (see
    # vultr_scraper_core.redis_target).
    url: str = ""
    password_file: str = ""
    # Sentinel, as a list instead of a redis+sentinel:// URL: "host:port" entries.
    sentinels: list[str] = msgspec.field(default_factory=list)
    service_name: str = "mymaster"
    database: int = 0  # with `sentinels` only: a URL carries its own
    sentinel_password_file: str = ""
    # TLS: rediss:// and rediss+sentinel:// URLs turn it on; `tls` does for `sentinels`.
    tls: bool = False
    ca_file: str = ""  # empty: the system's trust store
    cert_file: str = ""  # client certificate (with key_file), for servers that ask for one
    key_file: str = ""
    tls_check_hostname: bool = True
    queue_name: str = "arq:queue"
    # Prefix of every key the project stores (catalogue, changes, failed jobs, ...).
    key_prefix: str = "vs"


class VultrConfig(_Section):
    base_url: str = "https://api.vultr.com/v2"
    # The catalogue endpoints need no key; one is only sent where an endpoint requires it.
    api_key_file: str = ""
    per_page: int = 500
    availability_concurrency: int = 4
    # Byte caps on what is read from Vultr (streamed; past the cap the request fails): one list
    # endpoint's answer, all pages together (the full plan list is ~0.1 MB), and one region's
    # availability answer (a few KB).
    max_response_bytes: int = 4 * 1024 * 1024
    max_availability_bytes: int = 256 * 1024


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
    # Origins whose pages may read the read routes (CORS); "*" for any; empty: CORS off.
    cors_origins: list[str] = msgspec.field(default_factory=list)
    # How people reach this server (e.g. https://vultr.example.com), for links in notifications;
    # empty: http://<listen>.
    public_url: str = ""
    public_badges: bool = False  # /badge/... without the token (for READMEs and wikis)
    badge_max_age: int = 300  # seconds a badge may be cached (Cache-Control max-age)
    # Seconds each Redis call made for a request may take: an outage is a fast 503, not a hang.
    redis_timeout: float = 1.0
    # Wrong tokens (login form or Bearer header) one client address may send within a minute;
    # past that it gets 429 with Retry-After. 0: no limit (failed logins are still logged).
    max_failed_logins: int = 10


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


class CatalogGateConfig(_Section):
    """The plausibility gate: a scraped catalogue is quarantined when one of these trips."""

    max_count_drop: float = 0.2  # a collection's item count falls by more than this share
    max_count_growth: float = 0.5  # ... or grows by more than this share
    max_turnover: float = 0.25  # share of a collection's ids replaced by others in one run
    max_price_ratio: float = 1.5  # a price rises above old * ratio
    min_price_ratio: float = 0.5  # a price falls below old * ratio
    max_lost_prices: int = 0  # published prices that may vanish or turn unreadable in one run
    # Fields every plan must carry ("price": at least one of the four published prices).
    required_plan_fields: list[str] = msgspec.field(default_factory=lambda: ["locations", "price"])


# Collections of the catalogue scrape beyond plans, regions and OS images (one request per
# page each); "databases" is read only when vultr.api_key_file is set.
CATALOG_EXTRAS = ("apps", "k8s_versions", "storage_clusters", "isos", "databases")


class CatalogConfig(_Section):
    gate: CatalogGateConfig = msgspec.field(default_factory=CatalogGateConfig)
    archive_retention_days: int = 30
    include_os: bool = True
    include: list[str] = msgspec.field(default_factory=lambda: list(CATALOG_EXTRAS))


class StockGateConfig(_Section):
    """The stock gate: a region's availability answer that trips one of these changes nothing
    until a second check, ``confirm_after`` seconds later, sees the same."""

    emptied_min: int = 3  # a region with at least this many plans in stock now reports none
    min_changes: int = 5  # fewer state changes than this never trip the share checks
    max_region_changes: float = 0.5  # share of a region's plans changing state in one check
    max_run_changes: float = 0.25  # share of all tracked pairs changing state in one run
    confirm_after: float = 300.0  # seconds until a second check may confirm a held answer


class StockConfig(_Section):
    gate: StockGateConfig = msgspec.field(default_factory=StockGateConfig)


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
    # A job's timeout is also how long a run killed with its worker (SIGKILL, OOM, power loss)
    # stays claimed before another worker reruns it: timeout + 10 s. Short jobs get short ones.
    scrape_catalog: ScheduleConfig = _schedule([0, 15, 30, 45], timeout=60.0)
    scrape_availability: ScheduleConfig = _schedule(list(range(0, 60, 5)), timeout=90.0)
    check_health: ScheduleConfig = _schedule(list(range(60)), timeout=60.0)
    dispatch_alerts: ScheduleConfig = _schedule(list(range(60)), timeout=60.0)
    prune: ScheduleConfig = _schedule([7], hour=[3], timeout=600.0)
    move_history: ScheduleConfig = _schedule([37], timeout=1800.0)


class TimeoutsConfig(_Section):
    """Seconds each job that runs only when queued may take (a scheduled job's timeout is in
    its ``[schedules.*]`` table); the key is the job's name with underscores."""

    confirm_availability: float = 90.0
    deliver_notification: float = 60.0
    deliver_digest: float = 60.0


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
    timeouts: TimeoutsConfig = msgspec.field(default_factory=TimeoutsConfig)


class DeliveriesConfig(_Section):
    """How long and how often an undeliverable notification is tried again (``notify``)."""

    # Seconds from a delivery's first failed attempt until it is given up as failed.
    horizon: float = 24 * 3600.0
    # Ceiling of the wait after the first failed attempt, doubled per attempt, with jitter.
    backoff_base: float = 30.0
    backoff_cap: float = 3600.0  # the longest wait between two attempts


class WindowConfig(_Section):
    """A recurring maintenance window: on each of ``days``, from ``start`` to ``end`` (``HH:MM``,
    wall-clock time in ``timezone``). An ``end`` at or before ``start`` runs past midnight into
    the next day. Evaluated by ``vultr_scraper_core.maintenance``."""

    start: str
    end: str
    days: list[str] = msgspec.field(default_factory=lambda: list(WEEKDAYS))
    timezone: str = "UTC"
    # [[maintenance]] only: the endpoints (names or globs) it covers; empty: every endpoint
    # and the catalogue's own alerts (stale, quarantined).
    endpoints: list[str] = msgspec.field(default_factory=list)


class EndpointConfig(_Section):
    name: str
    url: str  # http(s)://..., tcp://host:port, tls://host:port, dns://[server[:port]]/name
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
    send: str = ""  # tcp / tls: text sent after connecting (body_* then judge the reply)
    query_type: str = "A"  # dns: the record type asked for
    expect_answers: list[str] = msgspec.field(default_factory=list)  # dns: each must be answered
    expect_rcode: str = "NOERROR"  # dns: the response code required
    maintenance: list[WindowConfig] = msgspec.field(default_factory=list)


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
    "catalog_stale",
    "catalog_fresh",
    "catalog_quarantined",
    "quarantine_cleared",
    # The rest of the catalogue (named like the change events they watch).
    "region_service_added",
    "region_service_removed",
    "app_added",
    "app_removed",
    "k8s_version_added",
    "k8s_version_removed",
    "storage_cluster_added",
    "storage_cluster_removed",
    "storage_availability_changed",
    "iso_added",
    "iso_removed",
    "os_added",
    "os_removed",
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
    # Stock reliability (0 to 1): the share of the last 24 h / 7 d / 30 d (the part observed
    # since the region's first stock check) the plan was in stock in the event's region, or
    # in one of ``regions`` for an event about the whole plan.
    min_in_stock_share_24h: float | None = None
    min_in_stock_share_7d: float | None = None
    min_in_stock_share_30d: float | None = None
    endpoint: str | None = None  # endpoint name or glob for endpoint_down / endpoint_up
    # Catalogue collections whose events match (plans, metal, databases, apps, ...); empty: any.
    collections: list[str] = msgspec.field(default_factory=list)
    # Glob on the subject of app / k8s version / storage cluster / ISO / OS events and on the
    # service of region_service_* events; None: any.
    subject: str | None = None
    # Seconds between reminders while what an opening kind reported (endpoint_down,
    # catalog_stale, catalog_quarantined) lasts; also sends the recovery. None: no reminders.
    remind_every: float | None = None


def alert_share_conditions(alert: AlertConfig) -> dict[str, float]:
    """Window ("24h", "7d", "30d") -> the least share of it in stock that ``alert`` asks for."""
    wanted = {
        "24h": alert.min_in_stock_share_24h,
        "7d": alert.min_in_stock_share_7d,
        "30d": alert.min_in_stock_share_30d,
    }
    return {window: share for window, share in wanted.items() if share is not None}


SmtpSecurity = Literal["starttls", "tls", "none"]


class SinkConfig(_Section):
    name: str
    # webhook: JSON + HMAC signature; slack / discord: chat message; ntfy: plain-text POST;
    # apprise: any Apprise URL; email: SMTP.
    kind: Literal["webhook", "slack", "discord", "ntfy", "apprise", "email"] = "webhook"
    url: str = ""
    # webhook: the HMAC-SHA256 key; ntfy: a bearer token; slack / discord: the webhook URL
    # itself (used when ``url`` is empty, since those URLs are credentials); apprise: the
    # Apprise URL(s), whitespace-separated; email: the SMTP password.
    secret_file: str = ""
    timeout: float = 10.0
    headers: dict[str, str] = msgspec.field(default_factory=dict)
    # More deliveries than this for the sink in one dispatch-alerts run are sent as one digest;
    # 0: never (one delivery per event, however many).
    storm_limit: int = 20
    # email only
    host: str = ""  # SMTP server
    port: int = 0  # 0: 587 for starttls, 465 for tls, 25 for none
    security: SmtpSecurity = "starttls"  # starttls: upgrade after EHLO; tls: TLS from the start
    username: str = ""  # SMTP login (the password comes from secret_file)
    sender: str = ""  # From:, e.g. "vultr-scraper <alerts@example.com>"
    recipients: list[str] = msgspec.field(default_factory=list)
    ca_file: str = ""  # PEM file of the only CAs to trust for the SMTP server


def smtp_port(sink: SinkConfig) -> int:
    return sink.port or {"starttls": 587, "tls": 465, "none": 25}[sink.security]


class LogConfig(_Section):
    level: str = "INFO"


class HistoryConfig(_Section):
    """The Redis window and the on-disk archive (see docs/operations.md)."""

    # Days of versions, stock intervals and change events kept in Redis; older ones are moved.
    window_days: int = 90
    # Where older history goes: a directory (empty: <state_dir>/archive) or s3://bucket/prefix.
    archive: str = ""
    s3_endpoint_url: str = ""  # e.g. https://ewr1.vultrobjects.com; empty: AWS
    s3_region: str = ""
    s3_access_key_file: str = ""
    s3_secret_key_file: str = ""
    max_days_per_run: int = 31  # a long backlog is moved over several runs


class PathsConfig(_Section):
    # Empty: $STATE_DIRECTORY (systemd), else $XDG_STATE_HOME/vultr-scraper.
    state_dir: str = ""


class Config(_Section):
    redis: RedisConfig = msgspec.field(default_factory=RedisConfig)
    vultr: VultrConfig = msgspec.field(default_factory=VultrConfig)
    client: ClientConfig = msgspec.field(default_factory=ClientConfig)
    http: HttpConfig = msgspec.field(default_factory=HttpConfig)
    catalog: CatalogConfig = msgspec.field(default_factory=CatalogConfig)
    stock: StockConfig = msgspec.field(default_factory=StockConfig)
    worker: WorkerConfig = msgspec.field(default_factory=WorkerConfig)
    schedules: SchedulesConfig = msgspec.field(default_factory=SchedulesConfig)
    health: HealthConfig = msgspec.field(default_factory=HealthConfig)
    alerts: list[AlertConfig] = msgspec.field(default_factory=list)
    sinks: list[SinkConfig] = msgspec.field(default_factory=list)
    deliveries: DeliveriesConfig = msgspec.field(default_factory=DeliveriesConfig)
    maintenance: list[WindowConfig] = msgspec.field(default_factory=list)
    log: LogConfig = msgspec.field(default_factory=LogConfig)
    paths: PathsConfig = msgspec.field(default_factory=PathsConfig)
    history: HistoryConfig = msgspec.field(default_factory=HistoryConfig)


LOG_LEVELS = ("TRACE", "DEBUG", "INFO", "SUCCESS", "WARNING", "ERROR", "CRITICAL")


def _http_url_problem(url: str) -> str | None:
    """Why ``url`` is not an http(s) URL with a host; None if it is. The URL itself is never
    quoted back: it may carry a password."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        return "must be an http:// or https:// URL (it does not parse as a URL)"
    if parts.scheme not in ("http", "https"):
        shown = ascii(parts.scheme) if parts.scheme else "none"
        return f"must be an http:// or https:// URL (its scheme is {shown})"
    if not host:
        return "must be an http:// or https:// URL with a host"
    return None


def problems(config: Config) -> list[tuple[str, str]]:
    """Range and consistency checks that types alone cannot express: ``(dotted key, reason)``
    pairs, in the order of the reference (docs/configuration.md); empty when all is well."""
    found: list[tuple[str, str]] = []

    def at_least(key: str, value: float, minimum: float) -> None:
        if value < minimum:
            found.append((key, f"must be at least {minimum}, got {value}"))

    def positive(key: str, value: float) -> None:
        if not value > 0:
            found.append((key, f"must be greater than 0, got {value}"))

    at_least("worker.max_tries", config.worker.max_tries, 1)
    at_least("worker.max_jobs", config.worker.max_jobs, 1)
    at_least("client.max_attempts", config.client.max_attempts, 1)
    positive("client.timeout", config.client.timeout)
    positive("client.connect_timeout", config.client.connect_timeout)
    at_least("client.rate_limit", config.client.rate_limit, 0)
    at_least("client.connection_limit", config.client.connection_limit, 0)
    at_least("client.backoff_base", config.client.backoff_base, 0)
    at_least("client.backoff_cap", config.client.backoff_cap, 0)
    base_url = _http_url_problem(config.vultr.base_url)
    if base_url:
        found.append(("vultr.base_url", base_url))
    positive("http.redis_timeout", config.http.redis_timeout)
    at_least("vultr.availability_concurrency", config.vultr.availability_concurrency, 1)
    if not 1 <= config.vultr.per_page <= 500:
        found.append(("vultr.per_page", f"must be between 1 and 500, got {config.vultr.per_page}"))
    at_least("vultr.max_response_bytes", config.vultr.max_response_bytes, 1024)
    at_least("vultr.max_availability_bytes", config.vultr.max_availability_bytes, 1024)
    gate = config.catalog.gate
    if not 0 < gate.max_count_drop < 1:
        found.append(("catalog.gate.max_count_drop", "must be between 0 and 1"))
    positive("catalog.gate.max_count_growth", gate.max_count_growth)
    if not 0 < gate.max_turnover <= 1:
        found.append(("catalog.gate.max_turnover", "must be greater than 0 and at most 1"))
    if not gate.min_price_ratio < 1 < gate.max_price_ratio:
        found.append(
            ("catalog.gate", "min_price_ratio must be below 1 and max_price_ratio above 1")
        )
    at_least("catalog.gate.max_lost_prices", gate.max_lost_prices, 0)
    if not all(name.strip() for name in gate.required_plan_fields):
        found.append(("catalog.gate.required_plan_fields", "names must not be empty"))
    unknown = [name for name in config.catalog.include if name not in CATALOG_EXTRAS]
    if unknown:
        found.append(
            (
                "catalog.include",
                f"unknown collection {unknown[0]!r}: one of {', '.join(CATALOG_EXTRAS)}",
            )
        )
    at_least("history.window_days", config.history.window_days, 1)
    at_least("history.max_days_per_run", config.history.max_days_per_run, 1)
    if config.history.archive.startswith("s3://") and not config.history.archive[5:].strip("/"):
        found.append(("history.archive", "an S3 location needs a bucket: s3://bucket/prefix"))
    stock = config.stock.gate
    at_least("stock.gate.emptied_min", stock.emptied_min, 1)
    at_least("stock.gate.min_changes", stock.min_changes, 1)
    for key, share in (
        ("max_region_changes", stock.max_region_changes),
        ("max_run_changes", stock.max_run_changes),
    ):
        if not 0 < share <= 1:
            found.append((f"stock.gate.{key}", "must be greater than 0 and at most 1"))
    at_least("stock.gate.confirm_after", stock.confirm_after, 0)
    at_least("health.failure_threshold", config.health.failure_threshold, 1)
    at_least("health.success_threshold", config.health.success_threshold, 1)
    if config.log.level.upper() not in LOG_LEVELS:
        found.append(("log.level", f"must be one of {', '.join(LOG_LEVELS)}"))
    for name in TimeoutsConfig.__struct_fields__:
        positive(f"worker.timeouts.{name}", getattr(config.worker.timeouts, name))
    for name in SchedulesConfig.__struct_fields__:
        schedule: ScheduleConfig = getattr(config.schedules, name)
        positive(f"schedules.{name}.timeout", schedule.timeout)
        for field, values, top in (("minute", schedule.minute, 59), ("hour", schedule.hour, 23)):
            bad = [value for value in values if not 0 <= value <= top]
            if bad:
                found.append((f"schedules.{name}.{field}", f"values must be 0-{top}, got {bad[0]}"))
    names = [endpoint.name for endpoint in config.health.endpoints]
    if len(names) != len(set(names)):
        found.append(("health.endpoints", "names must be unique"))
    sink_names = {sink.name for sink in config.sinks}
    for index, alert in enumerate(config.alerts):
        missing = [name for name in alert.sinks if name not in sink_names]
        if missing:
            found.append((f"alerts[{index}].sinks", f"unknown sink {', '.join(missing)}"))
    found.extend(_alerting_problems(config))
    try:
        parse_listen(config.http.listen)
    except ValueError as error:
        found.append(("http.listen", str(error)))
    if config.http.public_url and not config.http.public_url.startswith(("http://", "https://")):
        found.append(("http.public_url", "must start with http:// or https://"))
    at_least("http.badge_max_age", config.http.badge_max_age, 0)
    at_least("http.max_failed_logins", config.http.max_failed_logins, 0)
    found.extend(_redis_problems(config.redis))
    return found


def _redis_problems(redis: RedisConfig) -> list[tuple[str, str]]:
    """A URL or a sentinel list that cannot be used, and TLS files given where no TLS is."""
    from vultr_scraper_core.redis_address import (
        check_service_name,
        is_sentinel_url,
        parse_sentinel_hosts,
        parse_sentinel_url,
        uses_tls,
    )

    found: list[tuple[str, str]] = []
    if redis.url and redis.sentinels:
        found.append(("redis.sentinels", "give either redis.url or redis.sentinels, not both"))
    if is_sentinel_url(redis.url):
        try:
            parse_sentinel_url(redis.url)
        except ValueError as error:
            found.append(("redis.url", str(error)))
    elif redis.url and not redis.url.startswith(("redis://", "rediss://", "unix://")):
        found.append(
            (
                "redis.url",
                "must start with redis://, rediss://, unix://, redis+sentinel:// "
                "or rediss+sentinel://",
            )
        )
    if redis.sentinels:
        try:
            parse_sentinel_hosts(redis.sentinels)
            check_service_name(redis.service_name)
        except ValueError as error:
            found.append(("redis.sentinels", str(error)))
    if redis.database < 0:
        found.append(("redis.database", f"must be at least 0, got {redis.database}"))
    if redis.tls and redis.url:
        found.append(
            ("redis.tls", "is for redis.sentinels; with redis.url the scheme decides (rediss://)")
        )
    if redis.key_file and not redis.cert_file:
        found.append(("redis.key_file", "needs redis.cert_file (the client certificate)"))
    if not uses_tls(redis.url, redis.sentinels, redis.tls):
        for key in ("ca_file", "cert_file", "key_file"):
            if getattr(redis, key):
                found.append(
                    (
                        f"redis.{key}",
                        "is only used with TLS: a rediss:// or rediss+sentinel:// URL, "
                        "or redis.tls = true with redis.sentinels",
                    )
                )
    return found


def _alerting_problems(config: Config) -> list[tuple[str, str]]:
    """Health endpoints, alerts and sinks: what types alone cannot check."""
    found: list[tuple[str, str]] = []
    health = config.health
    if health.concurrency < 1:
        found.append(("health.concurrency", "must be at least 1"))
    if health.keep_results < 1:
        found.append(("health.keep_results", "must be at least 1"))
    if health.rollup_days < 1:
        found.append(("health.rollup_days", "must be at least 1"))
    for index, endpoint in enumerate(health.endpoints):
        key = f"health.endpoints[{index}]"
        found.extend(_probe_problems(key, endpoint))
        for number, window in enumerate(endpoint.maintenance):
            found.extend(_window_problems(f"{key}.maintenance[{number}]", window, scoped=True))
        if not endpoint.timeout > 0 or not endpoint.interval > 0:
            found.append((key, "timeout and interval must be greater than 0"))
        for name in ("failure_threshold", "success_threshold"):
            value = getattr(endpoint, name)
            if value is not None and value < 1:
                found.append((f"{key}.{name}", "must be at least 1"))
        if endpoint.body_regex is not None:
            try:
                re.compile(endpoint.body_regex)
            except re.error as exc:
                found.append((f"{key}.body_regex", f"invalid regular expression: {exc}"))
        if endpoint.json_path is not None and not re.fullmatch(
            r"\$?\.?([^.\[\]]+|\[-?\d+\])(\.?([^.\[\]]+|\[-?\d+\]))*", endpoint.json_path
        ):
            found.append((f"{key}.json_path", "invalid path (e.g. meta.total, items[0].id)"))
    for index, alert in enumerate(config.alerts):
        unknown = [kind for kind in alert.kinds if kind not in ALERT_KINDS]
        if not alert.kinds:
            found.append((f"alerts[{index}].kinds", "must name at least one event kind"))
        elif unknown:
            found.append(
                (
                    f"alerts[{index}].kinds",
                    f"unknown kind {unknown[0]!r}; known: {', '.join(ALERT_KINDS)}",
                )
            )
        collections = ("plans", "metal", "regions", "os", *CATALOG_EXTRAS)
        odd = [name for name in alert.collections if name not in collections]
        if odd:
            found.append(
                (
                    f"alerts[{index}].collections",
                    f"unknown collection {odd[0]!r}; known: {', '.join(collections)}",
                )
            )
        if alert.remind_every is not None and alert.remind_every < 60:
            found.append((f"alerts[{index}].remind_every", "must be at least 60 seconds"))
        for span, share in alert_share_conditions(alert).items():
            if not 0 <= share <= 1:
                found.append(
                    (
                        f"alerts[{index}].min_in_stock_share_{span}",
                        "must be a share from 0 to 1 (0.9: in stock 90 % of the time)",
                    )
                )
    names = [alert.name for alert in config.alerts]
    if len(names) != len(set(names)):
        found.append(("alerts", "names must be unique"))
    for index, window in enumerate(config.maintenance):
        found.extend(_window_problems(f"maintenance[{index}]", window, scoped=False))
    sink_names = [sink.name for sink in config.sinks]
    if len(sink_names) != len(set(sink_names)):
        found.append(("sinks", "names must be unique"))
    for index, sink in enumerate(config.sinks):
        found.extend(_sink_problems(f"sinks[{index}]", sink))
        if sink.storm_limit < 0:
            found.append((f"sinks[{index}].storm_limit", "must be 0 (no digest) or more"))
        found.extend(
            _sink_timeout_problems(f"sinks[{index}].timeout", sink, config.worker.timeouts)
        )
    deliveries = config.deliveries
    for name in ("horizon", "backoff_base"):
        if not getattr(deliveries, name) > 0:
            found.append(
                (f"deliveries.{name}", f"must be greater than 0, got {getattr(deliveries, name)}")
            )
    if deliveries.backoff_cap < deliveries.backoff_base:
        found.append(("deliveries.backoff_cap", "must be at least deliveries.backoff_base"))
    return found


_HTTP_ONLY = ("method", "headers", "status", "json_path", "json_equals")
_TCP_ONLY = ("send",)
_DNS_ONLY = ("query_type", "expect_answers", "expect_rcode")
_TLS_ONLY = ("cert_min_days", "tls_verify", "ca_file")
_ENDPOINT_DEFAULTS = EndpointConfig(name="", url="")


def _probe_problems(key: str, endpoint: EndpointConfig) -> list[tuple[str, str]]:
    """The URL form, and no key set that the endpoint's probe kind would silently ignore."""
    try:
        target = parse_target(endpoint.url)
    except ValueError as error:
        return [(f"{key}.url", str(error))]
    unused = {"http": _TCP_ONLY + _DNS_ONLY, "tcp": _HTTP_ONLY + _DNS_ONLY}.get(
        target.kind, _HTTP_ONLY + _TCP_ONLY + _TLS_ONLY
    )
    if target.kind == "tcp" and not target.tls:
        unused += _TLS_ONLY
    for name in unused:
        if getattr(endpoint, name) != getattr(_ENDPOINT_DEFAULTS, name):
            scheme = endpoint.url.partition(":")[0].lower()
            return [(f"{key}.{name}", f"does not apply to a {scheme}:// endpoint")]
    return _dns_problems(key, endpoint) if target.kind == "dns" else []


def _dns_problems(key: str, endpoint: EndpointConfig) -> list[tuple[str, str]]:
    import dns.rcode  # the probe's own library: what it accepts is what the probe can ask
    import dns.rdatatype

    found: list[tuple[str, str]] = []
    try:
        dns.rdatatype.from_text(endpoint.query_type)
    except dns.rdatatype.UnknownRdatatype:
        found.append((f"{key}.query_type", f"unknown record type {endpoint.query_type!r}"))
    try:
        dns.rcode.from_text(endpoint.expect_rcode)
    except dns.rcode.UnknownRcode:
        found.append((f"{key}.expect_rcode", f"unknown response code {endpoint.expect_rcode!r}"))
    return found


def _window_problems(key: str, window: WindowConfig, *, scoped: bool) -> list[tuple[str, str]]:
    if scoped and window.endpoints:
        return [(f"{key}.endpoints", "only for [[maintenance]]: this window is the endpoint's")]
    try:
        parse_window(window)
    except ValueError as error:
        return [(key, str(error))]
    return []


def _sink_timeout_problems(
    key: str, sink: SinkConfig, timeouts: TimeoutsConfig
) -> list[tuple[str, str]]:
    """A sink's attempt must end before the job making it is cancelled: an attempt cut off
    mid-request by the job's timeout is a retried *job* (the same request again within
    seconds, the worker's retry), not a failed attempt tried again after its backoff."""
    job = min(("deliver_notification", "deliver_digest"), key=lambda name: getattr(timeouts, name))
    limit: float = getattr(timeouts, job)
    if sink.timeout < limit:
        return []
    return [
        (
            key,
            f"must be lower than worker.timeouts.{job} ({limit:g} s), got {sink.timeout:g} s: "
            "an attempt that slow would be cut off by the job's timeout",
        )
    ]


def _sink_problems(key: str, sink: SinkConfig) -> list[tuple[str, str]]:
    if sink.kind == "apprise":
        if sink.url:
            return [(f"{key}.url", "an Apprise URL holds credentials: put it in secret_file")]
        if not sink.secret_file:
            return [(f"{key}.secret_file", "required: a file holding the Apprise URL")]
        return []
    if sink.kind == "email":
        if not sink.host:
            return [(f"{key}.host", "required for an email sink (the SMTP server)")]
        if not sink.sender or not sink.recipients:
            return [(key, "an email sink needs sender and recipients")]
        if sink.secret_file and not sink.username:
            return [(f"{key}.username", "required when secret_file holds a password")]
        if not 0 <= sink.port <= 65535:
            return [(f"{key}.port", "must be between 1 and 65535 (0: the default)")]
        return []
    chat_url_in_secret = sink.kind in ("slack", "discord") and sink.secret_file
    if not sink.url and not chat_url_in_secret:
        return [(f"{key}.url", "required (or secret_file for slack/discord)")]
    if sink.url and not sink.url.lower().startswith(("http://", "https://")):
        return [(f"{key}.url", "must start with http:// or https://")]
    return []
