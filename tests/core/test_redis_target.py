"""Where Redis is: URLs and Sentinel specs, their validation, and the pools built from them.

The pools are inspected, not connected: what reaches redis-py (TLS files, host name checks,
sentinel addresses and password, deadlines) is what these tests pin down. Real connections
are in tests/integration/test_redis_sentinel.py and test_redis_tls.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from redis.asyncio import SSLConnection
from redis.asyncio.sentinel import SentinelConnectionPool, SentinelManagedSSLConnection

from vultr_scraper_core.config import ConfigError, LoadedConfig, load_config
from vultr_scraper_core.redis import connection_options, connection_pool, deadline_options
from vultr_scraper_core.redis_address import parse_sentinel_url
from vultr_scraper_core.redis_target import RedisTarget, TlsOptions, from_url, target_from_config

PASSWORD = "s3cret-pw-771"


def test_a_sentinel_url_names_hosts_service_database_and_credentials() -> None:
    spec = parse_sentinel_url(
        f"redis+sentinel://app:{PASSWORD}@10.0.0.1:26379,sentinel-b,[::1]:26380/cache/3"
    )
    assert spec.sentinels == (("10.0.0.1", 26379), ("sentinel-b", 26379), ("::1", 26380))
    assert (spec.service_name, spec.database, spec.tls) == ("cache", 3, False)
    assert (spec.username, spec.password) == ("app", PASSWORD)
    assert parse_sentinel_url("rediss+sentinel://h:1/m").tls
    assert parse_sentinel_url("redis+sentinel://h:1/m").database == 0


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("redis+sentinel:///mymaster", "at least one sentinel"),
        ("redis+sentinel://h:26379", "needs a service name"),
        ("redis+sentinel://h:26379/", "needs a service name"),
        ("redis+sentinel://h:99999/m", "sentinel 1 has no valid port"),
        ("redis+sentinel://h:1,h:x/m", "sentinel 2 has no valid port"),
        ("redis+sentinel://h:1,h:1/m", "listed twice"),
        ("redis+sentinel://h:1/my master", "service name must be"),
        ("redis+sentinel://h:1/m/zero", "database number"),
        ("redis+sentinel://h:1/m/0/extra", "/service_name or /service_name/db"),
    ],
)
def test_a_bad_sentinel_url_says_what_is_wrong(url: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        parse_sentinel_url(url)


def _config(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> LoadedConfig:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return load_config(path, env or {})


@pytest.mark.parametrize(
    ("text", "key", "reason"),
    [
        (
            f'[redis]\nurl = "redis+sentinel://u:{PASSWORD}@h:1:2/m"',
            "redis.url",
            "sentinel 1 is not host:port",
        ),
        ('[redis]\nurl = "redis+sentinel://h:1"', "redis.url", "needs a service name"),
        ('[redis]\nurl = "sentinel://h:1/m"', "redis.url", "must start with redis://"),
        ('[redis]\nsentinels = ["h:1", "h:nope"]', "redis.sentinels", "sentinel 2"),
        ('[redis]\nsentinels = ["h:1"]\nservice_name = "a b"', "redis.sentinels", "service"),
        (
            '[redis]\nurl = "redis://h/0"\nsentinels = ["h:1"]',
            "redis.sentinels",
            "either redis.url or redis.sentinels",
        ),
        ('[redis]\nurl = "redis://h/0"\nca_file = "ca.pem"', "redis.ca_file", "only used with TLS"),
        ('[redis]\nurl = "redis://h/0"\ntls = true', "redis.tls", "the scheme decides"),
        (
            '[redis]\nurl = "rediss://h/0"\nkey_file = "k.pem"',
            "redis.key_file",
            "needs redis.cert_file",
        ),
    ],
)
def test_a_bad_redis_setting_is_a_config_error_naming_the_key(
    tmp_path: Path, text: str, key: str, reason: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        _config(tmp_path, text)
    message = str(caught.value)
    assert f"{key}: " in message and reason in message, message
    assert PASSWORD not in message


def test_a_missing_ca_file_is_a_config_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope" / "ca.pem"
    with pytest.raises(ConfigError, match=r"redis\.ca_file: cannot read file .*ca\.pem"):
        _config(tmp_path, f'[redis]\nurl = "rediss://h:6380/0"\nca_file = "{missing}"')


def test_tls_files_resolve_against_the_credentials_directory(tmp_path: Path) -> None:
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    for name in ("ca.pem", "client.pem", "client.key"):
        (credentials / name).write_text("-----BEGIN-----\n", encoding="utf-8")
    (credentials / "redis-pw").write_text("data-pw\n", encoding="utf-8")
    (credentials / "sentinel-pw").write_text("sentinel-pw-9\n", encoding="utf-8")
    loaded = _config(
        tmp_path,
        '[redis]\nsentinels = ["10.0.0.1:26379", "10.0.0.2"]\nservice_name = "cache"\n'
        'database = 2\ntls = true\nca_file = "ca.pem"\ncert_file = "client.pem"\n'
        'key_file = "client.key"\ntls_check_hostname = false\n'
        'password_file = "redis-pw"\nsentinel_password_file = "sentinel-pw"\n',
        {"CREDENTIALS_DIRECTORY": str(credentials)},
    )
    target = target_from_config(loaded.config.redis, loaded.secrets, "")
    assert target.sentinels == (("10.0.0.1", 26379), ("10.0.0.2", 26379))
    assert (target.service_name, target.database) == ("cache", 2)
    assert (target.password, target.sentinel_password) == ("data-pw", "sentinel-pw-9")
    assert target.tls == TlsOptions(
        ca_file=str(credentials / "ca.pem"),
        cert_file=str(credentials / "client.pem"),
        key_file=str(credentials / "client.key"),
        check_hostname=False,
    )
    assert target.describe() == "rediss+sentinel://10.0.0.1:26379,10.0.0.2:26379/cache/2"


def test_secrets_of_a_sentinel_url_are_masked_and_redacted(tmp_path: Path) -> None:
    loaded = _config(tmp_path, f'[redis]\nurl = "redis+sentinel://app:{PASSWORD}@h1:1,h2:2/m/1"\n')
    secrets = loaded.secrets
    assert PASSWORD in secrets.values()  # the log filter redacts it
    target = target_from_config(loaded.config.redis, secrets, loaded.config.redis.url)
    assert target.password == PASSWORD and target.username == "app"
    assert PASSWORD not in target.describe()
    assert target.describe() == "redis+sentinel://h1:1,h2:2/m/1"


def test_a_rediss_pool_verifies_the_server_with_the_ca_file() -> None:
    tls = TlsOptions(ca_file="/etc/ca.pem", cert_file="/etc/c.pem", key_file="/etc/k.pem")
    pool = connection_pool(
        from_url("rediss://db.example:6380/2", password="pw", tls=tls),
        connection_options(outage_budget=1),
    )
    assert pool.connection_class is SSLConnection
    kwargs = pool.connection_kwargs
    assert (kwargs["host"], kwargs["port"], kwargs["db"], kwargs["password"]) == (
        "db.example",
        6380,
        2,
        "pw",
    )
    assert kwargs["ssl_ca_certs"] == "/etc/ca.pem"
    assert kwargs["ssl_certfile"] == "/etc/c.pem" and kwargs["ssl_keyfile"] == "/etc/k.pem"
    assert kwargs["ssl_cert_reqs"] == "required" and kwargs["ssl_check_hostname"] is True


def test_a_plain_url_gets_no_tls_options() -> None:
    pool = connection_pool(from_url("redis://h:1/0"), connection_options(outage_budget=1))
    assert not any(key.startswith("ssl") for key in pool.connection_kwargs)


def test_a_sentinel_pool_asks_the_sentinels_with_their_own_password_and_tls() -> None:
    target = RedisTarget(
        sentinels=(("10.0.0.1", 26379), ("10.0.0.2", 26380)),
        service_name="cache",
        database=1,
        password="data-pw",
        sentinel_password="sentinel-pw",
        tls=TlsOptions(ca_file="/etc/ca.pem"),
    )
    pool = connection_pool(target, connection_options(outage_budget=5))
    assert isinstance(pool, SentinelConnectionPool)
    assert pool.service_name == "cache" and pool.is_master
    assert issubclass(pool.connection_class, SentinelManagedSSLConnection)
    assert pool.connection_kwargs["db"] == 1
    assert pool.connection_kwargs["password"] == "data-pw"
    assert pool.connection_kwargs["ssl_ca_certs"] == "/etc/ca.pem"
    sentinels = pool.sentinel_manager.sentinels
    addresses = [
        (s.connection_pool.connection_kwargs["host"], s.connection_pool.connection_kwargs["port"])
        for s in sentinels
    ]
    assert addresses == [("10.0.0.1", 26379), ("10.0.0.2", 26380)]
    first = sentinels[0].connection_pool
    assert first.connection_kwargs["password"] == "sentinel-pw"
    assert first.connection_kwargs["ssl_ca_certs"] == "/etc/ca.pem"
    assert issubclass(first.connection_class, SSLConnection)


def test_a_deadline_pool_bounds_the_sentinels_too() -> None:
    target = from_url("redis+sentinel://h:1,h:2/m")
    pool = connection_pool(target, deadline_options(0.3))
    assert isinstance(pool, SentinelConnectionPool)
    assert pool.connection_kwargs["socket_timeout"] == 0.3
    sentinel = pool.sentinel_manager.sentinels[0].connection_pool.connection_kwargs
    assert sentinel["socket_timeout"] == 0.3 and sentinel["socket_connect_timeout"] == 0.3
    assert pool.connection_kwargs["retry_on_error"] == []  # one try: the deadline is all
