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

import msgspec

from vultr_scraper_core.config.schema import RedisConfig
from vultr_scraper_core.config.secrets import Secrets, mask_url
from vultr_scraper_core.redis_address import (
    SENTINEL_SCHEMES,
    is_sentinel_url,
    join_host,
    parse_sentinel_hosts,
    parse_sentinel_url,
    uses_tls,
)


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
        if not self.is_sentinel:
            return mask_url(self.url)
        scheme = SENTINEL_SCHEMES[1] if self.tls else SENTINEL_SCHEMES[0]
        hosts = ",".join(join_host(host, port) for host, port in self.sentinels)
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
        if uses_tls(redis.url, redis.sentinels, redis.tls)
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
