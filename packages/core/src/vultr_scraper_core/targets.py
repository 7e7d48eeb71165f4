"""What an endpoint's ``url`` asks to probe: the one parser of the probe URL forms.

* ``http://...`` / ``https://...``: an HTTP request (``probes.http``);
* ``tcp://HOST:PORT``: a TCP connect, optionally sending ``send`` and reading the reply;
* ``tls://HOST:PORT``: the same plus a TLS handshake (certificate verified, expiry checked);
* ``dns://[SERVER[:PORT]]/NAME``: a DNS query for ``NAME`` (type ``query_type``) sent to
  ``SERVER`` (port 53 by default), or to the system's resolvers when no server is given
  (``dns:///example.com``), after RFC 4501.

The config loader validates with ``parse_target`` and the probes use what it returns.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal
from urllib.parse import unquote, urlsplit

ProbeKind = Literal["http", "tcp", "dns"]


@dataclass(frozen=True)
class Target:
    kind: ProbeKind
    tls: bool = False  # https:// and tls://
    host: str = ""  # tcp / tls: where to connect; dns: the server ("" = system resolvers)
    port: int = 0
    name: str = ""  # dns: the name asked for


def parse_target(url: str) -> Target:
    """The probe ``url`` asks for; ValueError with the reason (no key name) when invalid."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as error:
        raise ValueError(f"invalid URL {url!r}: {error}") from None
    scheme = parts.scheme.lower()
    if scheme in ("http", "https"):
        if not parts.hostname:
            raise ValueError(f"no host in {url!r}")
        return Target(kind="http", tls=scheme == "https", host=parts.hostname, port=port or 0)
    if scheme in ("tcp", "tls"):
        if not parts.hostname or port is None:
            raise ValueError(f"expected {scheme}://HOST:PORT, got {url!r}")
        if parts.path not in ("", "/") or parts.query:
            raise ValueError(f"{scheme}:// takes no path or query, got {url!r}")
        return Target(kind="tcp", tls=scheme == "tls", host=parts.hostname, port=port)
    if scheme == "dns":
        name = unquote(parts.path.lstrip("/")).rstrip(".")
        if not name or "/" in name:
            raise ValueError(f"expected dns://[SERVER[:PORT]]/NAME, got {url!r}")
        return Target(kind="dns", host=parts.hostname or "", port=port or 53, name=name)
    raise ValueError(
        "must start with http://, https://, tcp://, tls:// or dns:// "
        f"(got {parts.scheme + '://' if parts.scheme else url!r})"
    )
