"""Redis addresses as written in the configuration: Sentinel URLs and ``host:port`` lists.

Pure parsing, with errors that say what is wrong without quoting the URL (it may carry a
password); the configuration's validation and ``redis_target`` both use it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from urllib.parse import unquote

import msgspec

SENTINEL_SCHEMES = ("redis+sentinel", "rediss+sentinel")
TLS_SCHEMES = ("rediss", "rediss+sentinel")
DEFAULT_SENTINEL_PORT = 26379
_SERVICE_NAME = re.compile(r"^[A-Za-z0-9._-]+$")
SENTINEL_URL_FORM = "redis+sentinel://host:26379,host:26380/service_name"


def uses_tls(url: str, sentinels: Sequence[str], tls: bool) -> bool:
    """Whether ``[redis]`` with these ``url``, ``sentinels`` and ``tls`` values means TLS."""
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    return scheme in TLS_SCHEMES or (bool(sentinels) and tls)


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


def join_host(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
