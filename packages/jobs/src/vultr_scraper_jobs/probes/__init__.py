"""Probes of an endpoint, one kind per URL scheme (``vultr_scraper_core.targets``): HTTP(S) in
``http``, TCP / TLS and DNS in ``net``. Every kind is judged by the conditions in
``http.evaluate`` that apply to it, and never raises for what the target or the network does:
a failure is a ``ProbeResult`` with ``ok = false`` and a readable ``error``.
"""

from __future__ import annotations

from datetime import datetime

import aiohttp

from vultr_scraper_core.config import EndpointConfig
from vultr_scraper_core.store.health import ProbeResult
from vultr_scraper_core.targets import parse_target
from vultr_scraper_jobs.probes.http import (
    certificate_not_after,
    evaluate,
    json_equal,
    parse_path,
    probe_http,
    resolve_path,
)
from vultr_scraper_jobs.probes.net import probe_dns, probe_tcp

__all__ = [
    "certificate_not_after",
    "evaluate",
    "json_equal",
    "parse_path",
    "probe",
    "resolve_path",
]


async def probe(
    session: aiohttp.ClientSession, endpoint: EndpointConfig, *, now: datetime | None = None
) -> ProbeResult:
    """Check ``endpoint`` once with the probe its URL asks for (``session`` serves HTTP)."""
    target = parse_target(endpoint.url)
    if target.kind == "tcp":
        return await probe_tcp(endpoint, target, now=now)
    if target.kind == "dns":
        return await probe_dns(endpoint, target, now=now)
    return await probe_http(session, endpoint, now=now)
