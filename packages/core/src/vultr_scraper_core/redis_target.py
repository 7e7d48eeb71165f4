"""Where Redis is and how to reach it: one address for a single server, or Sentinel.

``RedisTarget`` is built once from the configuration (``target_from_config``) and is the only
input of the connection factory (``vultr_scraper_core.redis.connection_pool``), so the queue,
the store, the HTTP API's short-deadline client and the CLI all reach the same Redis the same
way:

* a URL: ``redis://``, ``rediss://`` (TLS) or ``unix://``;
* Sentinel: ``redis+sentinel://[user:password@]host:port,host:port/service_name[/db]`` (or
  ``rediss+sentinel://`` for TLS), or the ``[redis] sentinels`` list with ``service_name``.
  The sentinels are asked for the current primary of ``service_name`` on every new connection,
  so after a failover the next reconnect reaches the new primary.

TLS (``rediss://``, ``rediss+sentinel://`` or ``[redis] tls``) verifies the server against
``ca_file`` (else the system's trust store) and checks its host name unless told not to;
``cert_file`` / ``key_file`` add a client certificate. With Sentinel, the sentinels are reached
with the same TLS settings as the data nodes (a TLS deployment runs its sentinels on TLS too).

``describe`` is what logs and error lines show: passwords never appear in it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING
from urllib.parse import unquote

import msgspec

if TYPE_CHECKING:
    from vultr_scraper_core.config.schema import RedisConfig
    from vultr_scraper_core.config.secrets import Secrets

SENTINEL_SCHEMES = ("redis+sentinel", "rediss+sentinel")
URL_SCHEMES = ("redis", "rediss", "unix")
DEFAULT_SENTINEL_PORT = 26379
_SERVICE_NAME = re.compile(r"^[A-Za-z0-9._-]+$")
SENTINEL_URL_FORM = "redis+sentinel://host:26379,host:26380/service_name"


class TlsOptions(msgspec.Struct, frozen=True, kw_only=True):
    """Files are paths already resolved (``$CREDENTIALS_DIRECTORY``) and checked readable."""

    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    check_hostname: bool = True


class RedisTarget(msgspec.Struct, frozen=True, kw_only=True):
    """A single server (``url``) or a Sentinel-managed primary (``sentinels``)."""

    url: str = ""
    sentinels: tuple[tuple[str, int], ...] = ()
    service_name: str = ""
    database: int = 0
    username: str | None = None
    password: str | None = None
    sentinel_password: str | None = None
    tls: TlsOptions | None = None

    @property
    def is_sentinel(self) -> bool:
        return bool(self.sentinels)

    def describe(self) -> str:
        """For logs and error lines: the address without any password."""
        # Imported here: config imports this module for its validation.
        from vultr_scraper_core.config.secrets import mask_url

        if not self.is_sentinel:
            return mask_url(self.url)
        scheme = SENTINEL_SCHEMES[1] if self.tls else SENTINEL_SCHEMES[0]
        hosts = ",".join(_join_host(host, port) for host, port in self.sentinels)
        return f"{scheme}://{hosts}/{self.service_name}/{self.database}"


def from_url(
    url: str, *, password: str | None = None, tls: TlsOptions | None = None
) -> RedisTarget:
    """The target a URL names: one server, or Sentinel for ``redis+sentinel://``. ``password``
    is used where the URL carries none; ``tls`` applies to the TLS schemes only."""
    if is_sentinel_url(url):
        spec = parse_sentinel_url(url)
        return RedisTarget(
            sentinels=spec.sentinels,
            service_name=spec.service_name,
            database=spec.database,
            username=spec.username,
            password=spec.password or password,
            tls=(tls or TlsOptions()) if spec.tls else None,
        )
    secure = url.startswith("rediss://")
    return RedisTarget(url=url, password=password, tls=(tls or TlsOptions()) if secure else None)


def uses_tls(redis: RedisConfig) -> bool:
    """Whether the configured Redis is reached over TLS."""
    scheme = redis.url.split("://", 1)[0].lower() if "://" in redis.url else ""
    return scheme in ("rediss", SENTINEL_SCHEMES[1]) or (bool(redis.sentinels) and redis.tls)


def target_from_config(redis: RedisConfig, secrets: Secrets, url: str) -> RedisTarget:
    """The target for the configured ``[redis]``; ``url`` is ``redis.url`` or, when neither it
    nor ``sentinels`` is set, the embedded server's. The configuration is already validated."""
    tls = (
        TlsOptions(
            ca_file=secrets.redis_ca_file,
            cert_file=secrets.redis_cert_file,
            key_file=secrets.redis_key_file,
            check_hostname=redis.tls_check_hostname,
        )
        if uses_tls(redis)
        else None
    )
    if redis.sentinels:
        return RedisTarget(
            sentinels=parse_sentinel_hosts(redis.sentinels),
            service_name=redis.service_name,
            database=redis.database,
            password=secrets.redis_password,
            sentinel_password=secrets.redis_sentinel_password,
            tls=tls,
        )
    target = from_url(url, password=secrets.redis_password, tls=tls)
    return msgspec.structs.replace(target, sentinel_password=secrets.redis_sentinel_password)


class SentinelSpec(msgspec.Struct, frozen=True, kw_only=True):
    """What a ``redis+sentinel://`` URL says."""

    sentinels: tuple[tuple[str, int], ...]
    service_name: str
    database: int = 0
    tls: bool = False
    username: str | None = None
    password: str | None = None


def is_sentinel_url(url: str) -> bool:
    return url.split("://", 1)[0].lower() in SENTINEL_SCHEMES and "://" in url


def parse_sentinel_url(url: str) -> SentinelSpec:
    """``redis+sentinel://[user:pw@]h:p,h:p/service[/db]``; raises ValueError saying what is
    wrong without quoting the URL (it may carry a password)."""
    scheme, separator, rest = url.partition("://")
    if not separator or scheme.lower() not in SENTINEL_SCHEMES:
        raise ValueError(f"a sentinel URL starts with redis+sentinel:// ({SENTINEL_URL_FORM})")
    rest = rest.split("?", 1)[0].split("#", 1)[0]
    netloc, _, path = rest.partition("/")
    userinfo, at, hosts = netloc.rpartition("@")
    username = password = None
    if at:
        user, colon, secret = userinfo.partition(":")
        username = unquote(user) or None
        password = unquote(secret) if colon and secret else None
    sentinels = parse_sentinel_hosts(hosts.split(",") if hosts else [])
    parts = [part for part in path.split("/") if part]
    if not parts:
        raise ValueError(
            f"a sentinel URL needs a service name after the hosts ({SENTINEL_URL_FORM})"
        )
    if len(parts) > 2:
        raise ValueError(
            f"a sentinel URL's path is /service_name or /service_name/db ({SENTINEL_URL_FORM})"
        )
    service = unquote(parts[0])
    check_service_name(service)
    database = parse_database(parts[1]) if len(parts) == 2 else 0
    return SentinelSpec(
        sentinels=sentinels,
        service_name=service,
        database=database,
        tls=scheme.lower() == SENTINEL_SCHEMES[1],
        username=username,
        password=password,
    )


def parse_sentinel_hosts(entries: Sequence[str]) -> tuple[tuple[str, int], ...]:
    """``["10.0.0.1:26379", "[::1]:26380", "sentinel-c"]`` -> (host, port) pairs (the port
    defaults to 26379); raises ValueError naming the bad entry's position."""
    if not entries:
        raise ValueError(f"at least one sentinel host:port is needed ({SENTINEL_URL_FORM})")
    found: list[tuple[str, int]] = []
    for index, raw in enumerate(entries, 1):
        entry = raw.strip()
        host, port_text = _split_host_port(entry)
        if not host or any(ch.isspace() or ch in "/@?#" for ch in host):
            raise ValueError(f"sentinel {index} is not host:port")
        if port_text is None:
            port = DEFAULT_SENTINEL_PORT
        elif port_text.isdigit() and 0 < int(port_text) < 65536:
            port = int(port_text)
        else:
            raise ValueError(f"sentinel {index} has no valid port (1-65535)")
        found.append((host, port))
    if len(set(found)) != len(found):
        raise ValueError("the same sentinel is listed twice")
    return tuple(found)


def check_service_name(name: str) -> None:
    if not _SERVICE_NAME.match(name):
        raise ValueError(
            "the sentinel service name must be letters, digits, '.', '_' or '-' (e.g. mymaster)"
        )


def parse_database(text: str) -> int:
    if not text.isdigit():
        raise ValueError("the database number must be a non-negative integer")
    return int(text)


def _split_host_port(entry: str) -> tuple[str, str | None]:
    """``host``, ``host:port``, ``[v6]`` or ``[v6]:port``; an empty host means malformed."""
    if entry.startswith("["):
        host, closed, tail = entry[1:].partition("]")
        if not closed or (tail and not tail.startswith(":")):
            return "", None
        return host, tail[1:] if tail else None
    host, colon, port = entry.partition(":")
    if ":" in port:  # an IPv6 address must be written in brackets
        return "", None
    return host, port if colon else None


def _join_host(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
