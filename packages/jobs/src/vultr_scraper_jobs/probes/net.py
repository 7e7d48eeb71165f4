"""TCP and DNS probes, judged by the same conditions as HTTP ones where they apply.

``tcp://HOST:PORT`` connects (``tls://`` adds a TLS handshake, verified like HTTPS, whose
certificate ``cert_min_days`` is checked). With ``send`` the text is sent after connecting;
with ``body_contains`` / ``body_regex`` the reply is read (up to 1 MiB, until the condition
holds, the peer closes or the timeout) and judged. ``max_latency_ms`` bounds the whole probe.

``dns://[SERVER[:PORT]]/NAME`` asks for ``query_type`` records of ``NAME`` (UDP, then TCP when
the answer is truncated) from ``SERVER``, or from the system's resolvers when no server is
given. Conditions: the response code is ``expect_rcode`` (default ``NOERROR``, which also
needs at least one answer), every value of ``expect_answers`` is among the answers (compared
without case, trailing dot or TXT quotes), ``body_contains`` / ``body_regex`` match the
answers (one per line), and ``max_latency_ms``.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import re
import ssl
import time
from datetime import UTC, datetime

import dns.asyncquery
import dns.asyncresolver
import dns.exception
import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import dns.resolver

from vultr_scraper_core.config import EndpointConfig
from vultr_scraper_core.store.health import ProbeResult
from vultr_scraper_core.targets import Target
from vultr_scraper_jobs.probes.http import (
    MAX_BODY,
    PROBE_ERRORS,
    certificate_not_after,
    describe_failure,
    evaluate,
    ssl_context,
)


def _result(
    started: datetime,
    endpoint: EndpointConfig,
    latency_ms: float,
    failed: list[str],
    **extra: float,
) -> ProbeResult:
    return ProbeResult(
        at=started,
        ok=not failed,
        latency_ms=round(latency_ms, 3),
        error=failed[0] if failed else "",
        failures=tuple(failed),
        **extra,  # type: ignore[arg-type]
    )


def _failure(started: datetime, reason: str) -> ProbeResult:
    return ProbeResult(at=started, ok=False, error=reason, failures=(reason,))


# -- TCP ------------------------------------------------------------------------------------
def _reply_satisfies(endpoint: EndpointConfig, reply: bytes) -> bool:
    text = reply.decode("utf-8", errors="replace")
    if endpoint.body_contains is not None and endpoint.body_contains not in text:
        return False
    return endpoint.body_regex is None or re.search(endpoint.body_regex, text) is not None


async def _read_reply(
    reader: asyncio.StreamReader, endpoint: EndpointConfig, deadline: float
) -> bytes:
    """What the peer sends until the conditions hold, it closes, 1 MiB, or the deadline."""
    reply = b""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout_at(deadline):
            while len(reply) < MAX_BODY and not _reply_satisfies(endpoint, reply):
                chunk = await reader.read(64 * 1024)
                if not chunk:
                    break
                reply += chunk
    return reply[:MAX_BODY]


async def probe_tcp(
    endpoint: EndpointConfig, target: Target, *, now: datetime | None = None
) -> ProbeResult:
    started = now or datetime.now(UTC)
    loop = asyncio.get_running_loop()
    clock = time.perf_counter()
    deadline = loop.time() + endpoint.timeout
    context = ssl_context(endpoint.tls_verify, endpoint.ca_file) if target.tls else None
    cert_days: float | None = None
    try:
        async with asyncio.timeout_at(deadline):
            reader, writer = await asyncio.open_connection(
                target.host,
                target.port,
                ssl=context,
                server_hostname=target.host if context is not None else None,
            )
    except PROBE_ERRORS as error:
        return _failure(started, _connect_failure(error, endpoint.timeout))
    try:
        if context is not None:
            ssl_object = writer.get_extra_info("ssl_object")
            der = ssl_object.getpeercert(binary_form=True) if ssl_object else None
            if not der:
                return _failure(started, "TLS error: the server presented no certificate")
            expires = certificate_not_after(bytes(der))
            cert_days = (expires - datetime.now(UTC)).total_seconds() / 86400
        if endpoint.send:
            writer.write(endpoint.send.encode())
            await writer.drain()
        reply = b""
        if endpoint.body_contains is not None or endpoint.body_regex is not None:
            reply = await _read_reply(reader, endpoint, deadline)
    except PROBE_ERRORS as error:
        return _failure(started, describe_failure(error, endpoint.timeout))
    finally:
        writer.close()
        with contextlib.suppress(OSError, ssl.SSLError, TimeoutError):
            async with asyncio.timeout(1.0):
                await writer.wait_closed()
    latency_ms = (time.perf_counter() - clock) * 1000
    failed = evaluate(endpoint, status=None, latency_ms=latency_ms, body=reply, cert_days=cert_days)
    extra = {} if cert_days is None else {"cert_days": round(cert_days, 3)}
    return _result(started, endpoint, latency_ms, failed, **extra)


def _connect_failure(error: BaseException, timeout: float) -> str:
    if isinstance(error, ConnectionRefusedError):
        return "connection failed: Connection refused"
    if isinstance(error, OSError) and not isinstance(error, ssl.SSLError) and error.strerror:
        return f"connection failed: {error.strerror}"
    return describe_failure(error, timeout)


# -- DNS ------------------------------------------------------------------------------------
def normal_answer(text: str) -> str:
    """How answers compare: no case, no trailing dot, no TXT quotes."""
    return text.strip().strip('"').rstrip(".").lower()


async def _server_address(host: str, port: int) -> str:
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port)
        return str(infos[0][4][0])


async def _ask(
    target: Target, rdtype: dns.rdatatype.RdataType, timeout: float
) -> tuple[str, list[str]]:
    """The response code and the answers (as text) for ``target``."""
    if not target.host:
        resolver = dns.asyncresolver.Resolver()
        try:
            answer = await resolver.resolve(
                target.name, rdtype, raise_on_no_answer=False, lifetime=timeout
            )
        except dns.resolver.NXDOMAIN:
            return "NXDOMAIN", []
        rrset = answer.rrset
        return "NOERROR", [rdata.to_text() for rdata in rrset] if rrset is not None else []
    server = await _server_address(target.host, target.port)
    query = dns.message.make_query(target.name, rdtype)
    response, _ = await dns.asyncquery.udp_with_fallback(
        query, server, timeout=timeout, port=target.port
    )
    answers = [
        rdata.to_text() for rrset in response.answer if rrset.rdtype == rdtype for rdata in rrset
    ]
    return dns.rcode.to_text(response.rcode()), answers


def dns_failures(
    endpoint: EndpointConfig, target: Target, rcode: str, answers: list[str]
) -> list[str]:
    failed: list[str] = []
    expected = endpoint.expect_rcode.upper()
    if rcode != expected:
        failed.append(f"DNS response code {rcode} (expected {expected})")
    elif expected == "NOERROR" and not answers:
        failed.append(f"no {endpoint.query_type.upper()} record for {target.name}")
    have = {normal_answer(answer) for answer in answers}
    missing = [value for value in endpoint.expect_answers if normal_answer(value) not in have]
    if missing:
        got = ", ".join(answers) or "nothing"
        failed.append(f"{target.name} {endpoint.query_type.upper()} lacks {missing[0]} (got {got})")
    return failed


async def probe_dns(
    endpoint: EndpointConfig, target: Target, *, now: datetime | None = None
) -> ProbeResult:
    started = now or datetime.now(UTC)
    rdtype = dns.rdatatype.from_text(endpoint.query_type)
    clock = time.perf_counter()
    try:
        async with asyncio.timeout(endpoint.timeout):
            rcode, answers = await _ask(target, rdtype, endpoint.timeout)
    except dns.exception.Timeout:
        return _failure(started, f"timed out after {endpoint.timeout:g} s")
    except dns.resolver.NoNameservers as error:
        return _failure(started, f"DNS failed: {error}")
    except (dns.exception.DNSException, *PROBE_ERRORS) as error:
        return _failure(started, _connect_failure(error, endpoint.timeout))
    latency_ms = (time.perf_counter() - clock) * 1000
    failed = dns_failures(endpoint, target, rcode, answers)
    body = "\n".join(answers).encode()
    failed.extend(evaluate(endpoint, status=None, latency_ms=latency_ms, body=body))
    return _result(started, endpoint, latency_ms, failed)
