"""A real DNS server on loopback (dnslib, UDP and TCP on one port) answering from a small zone."""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from typing import Any

from dnslib import QTYPE, RCODE, RR, DNSRecord
from dnslib.server import BaseResolver, DNSLogger, DNSServer


class _Zone(BaseResolver):  # type: ignore[misc]
    def __init__(self, records: dict[tuple[str, str], list[str]], delay: float) -> None:
        self.records = records
        self.delay = delay
        self.queries: list[tuple[str, str]] = []

    def resolve(self, request: DNSRecord, handler: Any) -> DNSRecord:
        name = str(request.q.qname).rstrip(".").lower()
        qtype = QTYPE[request.q.qtype]
        self.queries.append((name, qtype))
        reply = request.reply()
        if not any(known == name for known, _ in self.records):
            reply.header.rcode = RCODE.NXDOMAIN
            return reply
        for value in self.records.get((name, qtype), []):
            reply.add_answer(*RR.fromZone(f"{name}. 60 IN {qtype} {value}"))
        return reply


class _Quiet(DNSLogger):  # type: ignore[misc]
    def __init__(self) -> None:
        super().__init__(log="-recv,-send,-request,-reply,-truncated,-error,-data", prefix=False)


def _free_port() -> int:
    """A port free for both UDP and TCP on 127.0.0.1 (dnslib binds both to the same number)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind(("127.0.0.1", 0))
            port = int(tcp.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port
    raise RuntimeError("no free port for the DNS server")


@dataclass
class DnsZoneServer:
    """``records``: (name, type) -> answers in zone-file form, ("db.test", "A") -> ["10.0.0.7"]."""

    records: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    port: int = 0
    _servers: list[DNSServer] = field(default_factory=list)
    zone: _Zone | None = None

    def __enter__(self) -> DnsZoneServer:
        self.zone = _Zone(self.records, 0.0)
        self.port = _free_port()
        for tcp in (False, True):
            server = DNSServer(self.zone, "127.0.0.1", self.port, tcp=tcp, logger=_Quiet())
            server.start_thread()
            self._servers.append(server)
        return self

    def __exit__(self, *exc: object) -> None:
        for server in self._servers:
            server.stop()
            server.server.server_close()
