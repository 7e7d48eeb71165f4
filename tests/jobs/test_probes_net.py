"""TCP, TLS and DNS probes against real loopback servers: an asyncio TCP server, a TLS one with a
self-signed certificate, and a dnslib DNS server."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from redis.asyncio import Redis

from tests.fakes.dns_server import DnsZoneServer
from tests.fakes.tls import HAVE_OPENSSL, self_signed, server_context
from vultr_scraper_core.config import ClientConfig, Config, EndpointConfig, HealthConfig, Secrets
from vultr_scraper_core.http import HttpClient, create_session
from vultr_scraper_core.store.changes import ChangeFeed, EventKind
from vultr_scraper_core.store.health import ProbeResult
from vultr_scraper_jobs.context import make_context
from vultr_scraper_jobs.health import check_endpoint_health
from vultr_scraper_jobs.probes import probe


def endpoint(url: str, **conditions: Any) -> EndpointConfig:
    return EndpointConfig(name="target", url=url, timeout=3.0, **conditions)


async def check(config: EndpointConfig) -> ProbeResult:
    async with aiohttp.ClientSession() as session:
        result = await probe(session, config)
    assert result.ok == (not result.failures)
    return result


class Banner:
    """A TCP server that greets, then answers ``PING`` with ``PONG`` (or stays silent)."""

    def __init__(self, greeting: bytes = b"", silent: bool = False) -> None:
        self.greeting = greeting
        self.silent = silent
        self.connections = 0
        self.port = 0
        self._server: asyncio.Server | None = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            if self.greeting:
                writer.write(self.greeting)
                await writer.drain()
            line = await reader.readline()
            if line.strip() == b"PING" and not self.silent:
                writer.write(b"+PONG\r\n")
                await writer.drain()
            await reader.read()  # until the prober closes
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    async def start(self, ssl: Any = None) -> Banner:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0, ssl=ssl)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()


@pytest.fixture
async def banner() -> AsyncIterator[Banner]:
    server = await Banner(greeting=b"220 ready\r\n").start()
    yield server
    await server.stop()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_tcp_connect_passes_and_times_latency(banner: Banner) -> None:
    result = await check(endpoint(f"tcp://127.0.0.1:{banner.port}", max_latency_ms=5000))
    assert result.ok and result.latency_ms is not None and result.latency_ms < 5000
    assert result.status is None and banner.connections == 1


async def test_tcp_refused_is_a_failed_probe() -> None:
    result = await check(endpoint(f"tcp://127.0.0.1:{_closed_port()}"))
    assert not result.ok
    assert result.error == "connection failed: Connection refused"


async def test_tcp_send_and_expect_reply(banner: Banner) -> None:
    url = f"tcp://127.0.0.1:{banner.port}"
    ok = await check(endpoint(url, send="PING\r\n", body_contains="+PONG"))
    assert ok.ok
    regex = await check(endpoint(url, send="PING\r\n", body_regex=r"^220 ready\r\n\+PONG"))
    assert regex.ok
    missing = await check(endpoint(url, send="PING\r\n", body_contains="+OK"))
    assert missing.failures == ("body does not contain '+OK'",)


async def test_tcp_silent_peer_fails_the_reply_condition_within_the_timeout() -> None:
    server = await Banner(silent=True).start()
    try:
        config = EndpointConfig(
            name="t", url=f"tcp://127.0.0.1:{server.port}", timeout=0.5, body_contains="PONG",
            send="PING\r\n",
        )  # fmt: skip
        result = await check(config)
    finally:
        await server.stop()
    assert result.failures == ("body does not contain 'PONG'",)
    assert result.latency_ms is not None and 400 <= result.latency_ms < 3000


async def test_tcp_latency_condition(banner: Banner) -> None:
    # A bound no real connection can meet: the condition, not the connection, fails.
    result = await check(endpoint(f"tcp://127.0.0.1:{banner.port}", max_latency_ms=0.0001))
    assert len(result.failures) == 1 and result.failures[0].startswith("latency ")


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    if not HAVE_OPENSSL:
        pytest.skip("needs the openssl CLI to make a certificate")
    return self_signed(tmp_path_factory.mktemp("tcp-tls"), "tls", days=2)


async def test_tls_probe_checks_certificate_expiry(certificate: tuple[Path, Path]) -> None:
    server = await Banner(greeting=b"* OK IMAP ready\r\n").start(ssl=server_context(*certificate))
    url = f"tls://127.0.0.1:{server.port}"
    ca_file = str(certificate[0])
    try:
        enough = await check(endpoint(url, ca_file=ca_file, cert_min_days=1, body_contains="OK"))
        too_short = await check(endpoint(url, ca_file=ca_file, cert_min_days=7))
        untrusted = await check(endpoint(url))
        lenient = await check(endpoint(url, tls_verify=False, cert_min_days=1))
    finally:
        await server.stop()
    assert enough.ok and enough.cert_days is not None and 1.9 < enough.cert_days <= 2.0
    assert len(too_short.failures) == 1
    assert too_short.failures[0].startswith("certificate expires in 2.0 days")
    assert untrusted.error.startswith("TLS certificate verification failed:")
    assert lenient.ok


# -- DNS ------------------------------------------------------------------------------------
@pytest.fixture
def zone() -> Iterator[DnsZoneServer]:
    records = {
        ("db.test", "A"): ["10.0.0.7", "10.0.0.8"],
        ("db.test", "TXT"): ['"v=spf1 -all"'],
        ("mail.test", "MX"): ["10 mx1.mail.test."],
        ("empty.test", "A"): [],
    }
    with DnsZoneServer(records) as server:
        yield server


async def test_dns_answers_and_expected_values(zone: DnsZoneServer) -> None:
    base = f"dns://127.0.0.1:{zone.port}"
    found = await check(endpoint(f"{base}/db.test", expect_answers=["10.0.0.8"]))
    assert found.ok and found.latency_ms is not None
    missing = await check(endpoint(f"{base}/db.test", expect_answers=["10.0.0.9"]))
    assert missing.failures == ("db.test A lacks 10.0.0.9 (got 10.0.0.7, 10.0.0.8)",)
    txt = await check(endpoint(f"{base}/db.test", query_type="TXT", expect_answers=["v=spf1 -all"]))
    assert txt.ok
    mx = await check(endpoint(f"{base}/mail.test", query_type="MX", body_regex=r"^10 mx1\."))
    assert mx.ok
    assert ("db.test", "TXT") in (zone.zone.queries if zone.zone else [])


async def test_dns_response_codes(zone: DnsZoneServer) -> None:
    base = f"dns://127.0.0.1:{zone.port}"
    nxdomain = await check(endpoint(f"{base}/nowhere.test"))
    assert nxdomain.failures == ("DNS response code NXDOMAIN (expected NOERROR)",)
    expected_gone = await check(endpoint(f"{base}/nowhere.test", expect_rcode="NXDOMAIN"))
    assert expected_gone.ok
    empty = await check(endpoint(f"{base}/empty.test"))
    assert empty.failures == ("no A record for empty.test",)


async def test_dns_server_not_answering_times_out() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))  # receives, never answers
        port = silent.getsockname()[1]
        config = EndpointConfig(name="d", url=f"dns://127.0.0.1:{port}/db.test", timeout=0.5)
        result = await check(config)
    assert result.error == "timed out after 0.5 s"


# -- through the check-health job: thresholds, transitions, the change feed ---------------------


async def test_tcp_and_dns_endpoints_go_down_and_up_by_the_thresholds(
    redis: Redis, zone: DnsZoneServer
) -> None:
    server = await Banner(greeting=b"220 ready\r\n").start()
    port = server.port
    config = Config(
        health=HealthConfig(
            check_vultr_api=False,
            failure_threshold=2,
            success_threshold=1,
            endpoints=[
                EndpointConfig(name="smtp", url=f"tcp://127.0.0.1:{port}", interval=1, timeout=2),
                EndpointConfig(
                    name="db-dns",
                    url=f"dns://127.0.0.1:{zone.port}/db.test",
                    interval=1,
                    timeout=2,
                    expect_answers=["10.0.0.8"],
                    failure_threshold=1,  # per endpoint, over [health]'s 2
                ),
            ],
        ),
        client=ClientConfig(rate_limit=0),
    )
    assert zone.zone is not None
    async with create_session(ClientConfig(rate_limit=0)) as session:

        async def run() -> dict[str, Any]:
            ctx = make_context(
                config=config,
                secrets=Secrets(),
                redis=redis,
                http=HttpClient(session, config.client),
            )
            return await check_endpoint_health(ctx)

        first = await run()
        assert (first["checked"], first["failing"], first["transitions"]) == (2, 0, [])
        await server.stop()  # nothing listens there any more
        zone.zone.records[("db.test", "A")] = ["10.0.0.7"]  # the expected answer is gone
        second = await run()
        assert second["failing_endpoints"] == ["db-dns", "smtp"]
        assert second["transitions"] == [{"endpoint": "db-dns", "to": "down"}]
        third = await run()
        assert third["transitions"] == [{"endpoint": "smtp", "to": "down"}]
        zone.zone.records[("db.test", "A")] = ["10.0.0.8"]
        fourth = await run()
        assert fourth["transitions"] == [{"endpoint": "db-dns", "to": "up"}]
    events = await ChangeFeed(redis, "vs").read(
        kinds={EventKind.ENDPOINT_DOWN, EventKind.ENDPOINT_UP}, limit=10
    )
    assert [(event.kind, event.subject) for event in events] == [
        ("endpoint_down", "db-dns"), ("endpoint_down", "smtp"), ("endpoint_up", "db-dns"),
    ]  # fmt: skip
    down = events[1]
    assert down.detail is not None and "refused" in str(down.detail).lower()
