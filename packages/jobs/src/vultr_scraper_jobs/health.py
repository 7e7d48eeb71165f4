"""The ``check-health`` job: probe every due endpoint with bounded concurrency and record it.

The job runs every minute (``[schedules.check_health]``); each endpoint is probed only when its
own ``interval`` has passed since its last probe (less a few seconds of scheduler jitter).
Probes run ``health.concurrency`` at a time in one HTTP session of this run, opened without a
request-rate limit (that limit protects the Vultr API) and without keep-alive, so every probe
measures a fresh connection like blackbox_exporter does. A failing probe is data, not a job
failure: the job succeeds and the failure is in the endpoint's results. Only transitions
(DOWN after ``failure_threshold`` failures in a row, UP after ``success_threshold`` successes)
become ``endpoint_down`` / ``endpoint_up`` events in the change feed.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from datetime import UTC, datetime
from typing import Any

import aiohttp

from vultr_scraper_core.config import Config, EndpointConfig, mask_url
from vultr_scraper_core.http import create_session
from vultr_scraper_core.store.changes import ChangeFeed
from vultr_scraper_core.store.health import EndpointState, HealthStore, decode_state, is_due
from vultr_scraper_jobs.context import JobDeps, deps
from vultr_scraper_jobs.probes import probe

VULTR_API_ENDPOINT = "vultr-api"
DUE_GRACE = 5.0  # seconds of scheduler jitter tolerated when deciding that a probe is due
# Stop starting probes this long before the job's timeout, so the run ends cleanly and the
# endpoints left over are the first ones due on the next run.
DEADLINE_MARGIN = 0.9
LISTED = 50  # names listed in the job result (the counts are exact)


def configured_endpoints(config: Config) -> list[EndpointConfig]:
    """The ``[[health.endpoints]]``, plus the Vultr API unless disabled or named explicitly."""
    endpoints = list(config.health.endpoints)
    if config.health.check_vultr_api and not any(
        endpoint.name == VULTR_API_ENDPOINT for endpoint in endpoints
    ):
        base = config.vultr.base_url.rstrip("/")
        endpoints.insert(
            0,
            EndpointConfig(
                name=VULTR_API_ENDPOINT,
                url=f"{base}/regions?per_page=1",
                json_path="meta.total",
                timeout=min(config.client.timeout, 15.0),
            ),
        )
    return endpoints


def thresholds(config: Config, endpoint: EndpointConfig) -> tuple[int, int]:
    return (
        endpoint.failure_threshold or config.health.failure_threshold,
        endpoint.success_threshold or config.health.success_threshold,
    )


def probe_session(config: Config) -> aiohttp.ClientSession:
    """A session for one run: the project's User-Agent, at most ``concurrency`` connections,
    a fresh connection per probe (latency includes connect and TLS)."""
    return create_session(
        config.client, connection_limit=config.health.concurrency, force_close=True
    )


async def check_endpoint_health(ctx: dict[str, Any]) -> dict[str, Any]:
    """Probe the endpoints that are due, store results and state, emit transitions."""
    d = deps(ctx)
    config = d.config
    prefix = config.redis.key_prefix
    store = HealthStore(d.redis, prefix, keep_results=config.health.keep_results)
    feed = ChangeFeed(d.redis, prefix)
    endpoints = configured_endpoints(config)
    now = datetime.now(UTC)
    raws = await store.raw_states([endpoint.name for endpoint in endpoints])
    states = {name: decode_state(raw) for name, raw in raws.items()}
    due = [
        endpoint
        for endpoint in endpoints
        if is_due(states[endpoint.name], endpoint.interval, now, DUE_GRACE)
    ]
    # Most overdue first: what a previous run could not reach goes first now.
    due.sort(key=lambda endpoint: _last_probe(states[endpoint.name]))
    deadline = time.monotonic() + config.schedules.check_health.timeout * DEADLINE_MARGIN
    queue = deque(due)
    checked: list[str] = []
    deferred: list[str] = []
    failing: list[str] = []
    transitions: list[dict[str, str]] = []

    async def worker(session: aiohttp.ClientSession) -> None:
        while queue:
            endpoint = queue.popleft()
            if time.monotonic() + endpoint.timeout > deadline:
                deferred.append(endpoint.name)  # it might not finish: the next run takes it
                continue
            result = await probe(session, endpoint)
            failure_threshold, success_threshold = thresholds(config, endpoint)
            _, transition = await store.record(
                endpoint.name,
                # The URL goes into the change feed, the Atom feed and notifications.
                mask_url(endpoint.url),
                result,
                failure_threshold=failure_threshold,
                success_threshold=success_threshold,
                feed=feed,
                expected=raws[endpoint.name],
            )
            checked.append(endpoint.name)
            if not result.ok:
                failing.append(endpoint.name)
            if transition is not None:
                transitions.append({"endpoint": endpoint.name, "to": transition})

    async with probe_session(config) as session, asyncio.TaskGroup() as group:
        for _ in range(min(config.health.concurrency, len(due))):
            group.create_task(worker(session))

    down = [
        name
        for name, state in (await store.states([e.name for e in endpoints])).items()
        if state.state == "down"
    ]
    return {
        "status": "success",
        "endpoints": len(endpoints),
        "checked": len(checked),
        "not_due": len(endpoints) - len(due),
        "deferred": len(deferred),
        "failing": len(failing),  # probes of this run that failed a condition
        "down": len(down),  # endpoints DOWN after this run
        "transitions": transitions,
        "failing_endpoints": sorted(failing)[:LISTED],
        "down_endpoints": sorted(down)[:LISTED],
    }


def _last_probe(state: EndpointState) -> float:
    return state.last.at.timestamp() if state.last is not None else 0.0


async def prune_health(job: JobDeps, now: datetime) -> dict[str, int]:
    """The ``prune`` job's health part: hourly rollups older than ``health.rollup_days``, and
    every key of an endpoint no longer configured and not checked for that long. Raw results
    need no pruning (a list capped at ``health.keep_results``)."""
    config = job.config
    store = HealthStore(job.redis, config.redis.key_prefix, keep_results=config.health.keep_results)
    return await store.prune(
        now,
        keep_days=config.health.rollup_days,
        configured=[endpoint.name for endpoint in configured_endpoints(config)],
    )
