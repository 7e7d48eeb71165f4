"""One HTTP probe of one endpoint, and the conditions every probe kind is judged by (after
Gatus and blackbox_exporter).

Conditions of an ``[[health.endpoints]]`` table, all of which must hold:

* ``status``: the final status (redirects followed) is one of the list (default ``[200]``);
* ``max_latency_ms``: request start to the last body byte, in milliseconds, is below the bound;
* ``body_contains`` / ``body_regex``: the body (first 1 MiB, decoded as UTF-8) contains the text
  / matches the regular expression (``re.search``);
* ``json_path`` (+ ``json_equals``): the body is JSON and the path exists and is not null (and
  equals the value: numbers compare numerically, booleans only with booleans). Path syntax:
  ``meta.total``, ``regions[0].id``, ``$.a.b`` (a leading ``$`` or ``$.`` is optional);
* ``cert_min_days``: the TLS certificate of the URL's host expires in more than N days. The
  certificate is read in a separate TLS handshake (the HTTP response may release its
  connection before it can be inspected) with the same trust settings as the request.

A certificate that fails verification (expired, self-signed, wrong host) fails the probe with
the reason OpenSSL gives, whatever the conditions are. ``tls_verify = false`` skips verification
(``cert_min_days`` still works); ``ca_file`` trusts only the CA certificates in that PEM file.

A probe never raises for anything the endpoint or the network does: every failure is a
``ProbeResult`` with ``ok = false`` and a readable ``error``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import re
import ssl
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import msgspec

from vultr_scraper_core.config import EndpointConfig
from vultr_scraper_core.http import connection_error_reason
from vultr_scraper_core.store.health import ProbeResult
from vultr_scraper_core.text import mask_urls

MAX_BODY = 1024 * 1024
_MISSING = object()


class PathError(LookupError):
    pass


# -- JSON paths -----------------------------------------------------------------------------
_SEGMENT = re.compile(r"([^.\[\]]+)|\[(-?\d+)\]|\.")


@functools.lru_cache(maxsize=256)
def parse_path(path: str) -> tuple[str | int, ...]:
    """``a.b[0].c`` -> ``("a", "b", 0, "c")``; digit-only names also index lists."""
    text = path.strip()
    if text.startswith("$"):
        text = text[1:]
    steps: list[str | int] = []
    position = 0
    while position < len(text):
        match = _SEGMENT.match(text, position)
        if match is None:
            raise ValueError(f"invalid JSON path {path!r} at {text[position:]!r}")
        name, index = match.groups()
        if name is not None:
            steps.append(name)
        elif index is not None:
            steps.append(int(index))
        position = match.end()
    if not steps:
        raise ValueError(f"empty JSON path {path!r}")
    return tuple(steps)


def resolve_path(document: Any, path: str) -> Any:
    value = document
    for step in parse_path(path):
        if isinstance(value, dict) and isinstance(step, str):
            if step not in value:
                raise PathError(f"{path}: no key {step!r}")
            value = value[step]
        elif isinstance(value, list) and (
            isinstance(step, int) or (isinstance(step, str) and step.isdigit())
        ):
            index = int(step)
            if not -len(value) <= index < len(value):
                raise PathError(f"{path}: index {index} out of range ({len(value)} items)")
            value = value[index]
        else:
            raise PathError(f"{path}: cannot take {step!r} of {type(value).__name__}")
    return value


def json_equal(actual: Any, expected: Any) -> bool:
    if isinstance(actual, bool) or isinstance(expected, bool):
        return isinstance(actual, bool) and isinstance(expected, bool) and actual == expected
    if isinstance(actual, int | float) and isinstance(expected, int | float):
        return float(actual) == float(expected)
    if isinstance(actual, list) and isinstance(expected, list):
        return len(actual) == len(expected) and all(
            json_equal(a, e) for a, e in zip(actual, expected, strict=True)
        )
    if isinstance(actual, dict) and isinstance(expected, dict):
        return actual.keys() == expected.keys() and all(
            json_equal(actual[key], expected[key]) for key in actual
        )
    return bool(actual == expected)


# -- conditions -----------------------------------------------------------------------------
def evaluate(
    endpoint: EndpointConfig,
    *,
    status: int | None,
    latency_ms: float,
    body: bytes,
    cert_days: float | None = None,
) -> list[str]:
    """Every failed condition, as a short sentence; empty when the probe passed. ``status`` is
    None for probes without one (TCP, DNS): the ``status`` condition is HTTP's alone."""
    failed: list[str] = []
    if status is not None and endpoint.status and status not in endpoint.status:
        expected = ", ".join(str(code) for code in endpoint.status)
        failed.append(f"status {status} not in [{expected}]")
    if endpoint.max_latency_ms is not None and not latency_ms < endpoint.max_latency_ms:
        failed.append(f"latency {latency_ms:.0f} ms not under {endpoint.max_latency_ms:g} ms")
    text = body.decode("utf-8", errors="replace")
    if endpoint.body_contains is not None and endpoint.body_contains not in text:
        failed.append(f"body does not contain {endpoint.body_contains!r}")
    if endpoint.body_regex is not None and not re.search(endpoint.body_regex, text):
        failed.append(f"body does not match /{endpoint.body_regex}/")
    if endpoint.json_path is not None:
        failed.extend(_json_condition(endpoint, body))
    if endpoint.cert_min_days is not None and cert_days is not None:
        if cert_days < 0:
            failed.append(f"certificate expired {-cert_days:.1f} days ago")
        elif not cert_days > endpoint.cert_min_days:
            failed.append(
                f"certificate expires in {cert_days:.1f} days "
                f"(needs more than {endpoint.cert_min_days})"
            )
    return failed


def _json_condition(endpoint: EndpointConfig, body: bytes) -> list[str]:
    path = endpoint.json_path or ""
    try:
        document = msgspec.json.decode(body)
    except msgspec.DecodeError:
        return [f"body is not JSON (for {path})"]
    try:
        value = resolve_path(document, path)
    except (PathError, ValueError) as error:
        return [str(error)]
    if endpoint.json_equals is None:
        return [] if value is not None else [f"{path} is null"]
    if not json_equal(value, endpoint.json_equals):
        return [f"{path} is {_short(value)}, expected {_short(endpoint.json_equals)}"]
    return []


def _short(value: Any) -> str:
    text = msgspec.json.encode(value).decode()
    return text if len(text) <= 80 else text[:77] + "..."


# -- TLS ------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=32)
def ssl_context(verify: bool, ca_file: str) -> ssl.SSLContext:
    """The trust settings of an endpoint: system CAs, only ``ca_file``, or no verification."""
    if not verify:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    return ssl.create_default_context(cafile=ca_file or None)


def request_ssl(endpoint: EndpointConfig) -> ssl.SSLContext | bool:
    """aiohttp's ``ssl=`` argument: ``True`` keeps its default verification."""
    if endpoint.tls_verify and not endpoint.ca_file:
        return True
    return ssl_context(endpoint.tls_verify, endpoint.ca_file)


def _der_items(data: bytes, start: int, end: int) -> list[tuple[int, int, int]]:
    """The (tag, content start, content end) of each DER element in ``data[start:end]``."""
    items = []
    position = start
    while position < end:
        tag, length = data[position], data[position + 1]
        position += 2
        if length & 0x80:
            size = length & 0x7F
            length = int.from_bytes(data[position : position + size], "big")
            position += size
        items.append((tag, position, position + length))
        position += length
    return items


def certificate_not_after(der: bytes) -> datetime:
    """``notAfter`` of an X.509 certificate in DER form (no third-party parser needed)."""
    try:
        [(_, cert_start, cert_end)] = _der_items(der, 0, len(der))[:1]
        _, tbs_start, tbs_end = _der_items(der, cert_start, cert_end)[0]
        fields = _der_items(der, tbs_start, tbs_end)
        if fields[0][0] == 0xA0:  # explicit [0] version
            fields = fields[1:]
        _, validity_start, validity_end = fields[3]  # serial, signature, issuer, validity
        tag, start, end = _der_items(der, validity_start, validity_end)[1]
        text = der[start:end].decode("ascii")
    except (IndexError, ValueError, UnicodeDecodeError) as error:
        raise ValueError(f"cannot read the certificate's expiry: {error}") from None
    if tag == 0x17:  # UTCTime YYMMDDHHMMSSZ
        year = int(text[:2])
        text = f"{1900 + year if year >= 50 else 2000 + year}{text[2:]}"
    elif tag != 0x18:  # GeneralizedTime YYYYMMDDHHMMSSZ
        raise ValueError(f"unexpected time tag 0x{tag:02x} in certificate")
    return datetime.strptime(text.rstrip("Z")[:14], "%Y%m%d%H%M%S").replace(tzinfo=UTC)


async def peer_certificate(url: str, context: ssl.SSLContext, timeout: float) -> bytes:
    """The DER certificate the host of ``url`` presents; raises on handshake failure."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or 443
    async with asyncio.timeout(timeout):
        _, writer = await asyncio.open_connection(host, port, ssl=context, server_hostname=host)
    try:
        ssl_object = writer.get_extra_info("ssl_object")
        der = ssl_object.getpeercert(binary_form=True) if ssl_object else None
    finally:
        writer.close()
        with contextlib.suppress(OSError, ssl.SSLError, TimeoutError):
            async with asyncio.timeout(1.0):
                await writer.wait_closed()
    if not der:
        raise ssl.SSLError("the server presented no certificate")
    return bytes(der)


# -- the probe ------------------------------------------------------------------------------
def describe_failure(error: BaseException, timeout: float) -> str:
    """A one-line reason for a request that got no usable response (stored and shown, so a
    URL it quotes has its password masked)."""
    return mask_urls(_failure(error, timeout))


def _failure(error: BaseException, timeout: float) -> str:
    certificate = getattr(error, "certificate_error", None)
    if isinstance(error, ssl.SSLCertVerificationError) or certificate is not None:
        cause = certificate if certificate is not None else error
        reason = getattr(cause, "verify_message", None) or getattr(cause, "reason", None)
        return f"TLS certificate verification failed: {reason or cause}"
    if isinstance(error, TimeoutError | asyncio.TimeoutError | aiohttp.ServerTimeoutError):
        return f"timed out after {timeout:g} s"
    if isinstance(error, aiohttp.ClientConnectorError):
        return f"connection failed: {connection_error_reason(error)}"
    if isinstance(error, ssl.SSLError | aiohttp.ClientSSLError):
        return f"TLS error: {error}"
    if isinstance(error, aiohttp.InvalidURL):
        return f"invalid URL: {error}"
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__


PROBE_ERRORS = (aiohttp.ClientError, OSError, TimeoutError, ssl.SSLError, ValueError)


async def probe_http(
    session: aiohttp.ClientSession,
    endpoint: EndpointConfig,
    *,
    now: datetime | None = None,
) -> ProbeResult:
    """Check an HTTP(S) ``endpoint`` once: optional certificate handshake, then the request."""
    started = now or datetime.now(UTC)
    cert_days: float | None = None
    https = endpoint.url.lower().startswith("https://")
    if https and endpoint.cert_min_days is not None:
        try:
            context = ssl_context(endpoint.tls_verify, endpoint.ca_file)
            der = await peer_certificate(endpoint.url, context, endpoint.timeout)
            expires = certificate_not_after(der)
        except PROBE_ERRORS as error:
            reason = describe_failure(error, endpoint.timeout)
            return ProbeResult(at=started, ok=False, error=reason, failures=(reason,))
        cert_days = (expires - datetime.now(UTC)).total_seconds() / 86400
    clock = time.perf_counter()
    try:
        async with session.request(
            endpoint.method,
            endpoint.url,
            headers=endpoint.headers or None,
            timeout=aiohttp.ClientTimeout(total=endpoint.timeout),
            ssl=request_ssl(endpoint) if https else True,
            allow_redirects=True,
        ) as response:
            body = await _read_capped(response, MAX_BODY)
            status = response.status
        latency_ms = (time.perf_counter() - clock) * 1000
    except PROBE_ERRORS as error:
        reason = describe_failure(error, endpoint.timeout)
        return ProbeResult(
            at=started, ok=False, error=reason, failures=(reason,), cert_days=cert_days
        )
    failed = evaluate(
        endpoint, status=status, latency_ms=latency_ms, body=body, cert_days=cert_days
    )
    return ProbeResult(
        at=started,
        ok=not failed,
        status=status,
        latency_ms=round(latency_ms, 3),
        error=failed[0] if failed else "",
        failures=tuple(failed),
        cert_days=None if cert_days is None else round(cert_days, 3),
    )


async def _read_capped(response: aiohttp.ClientResponse, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(64 * 1024):
        chunks.append(chunk)
        size += len(chunk)
        if size >= limit:
            break
    return b"".join(chunks)[:limit]
