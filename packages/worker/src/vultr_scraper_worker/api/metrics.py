"""``/metrics``: Prometheus text format, read from Redis at scrape time.

All state lives in Redis (history, queue, catalogue, health), so there are no in-process
counters to lose on restart: each scrape gathers a snapshot asynchronously, then hands it to a
throw-away ``CollectorRegistry`` whose one collector yields the metric families. If Redis is
down the scrape still succeeds with ``vultr_scraper_redis_up 0``, so the alert is about Redis
and not about a failed scrape.

Cardinality is bounded by design: labels are job names (the registry), outcomes (a fixed set),
catalogue collections, endpoint and sink names (the config) and uptime windows. Per-plan prices
are only exported with ``[http] price_metrics = true`` (one series per plan and price kind).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from loguru import logger
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from redis.exceptions import RedisError

from vultr_scraper_core import __version__
from vultr_scraper_core.redis_faults import redis_cause
from vultr_scraper_worker.api import reads_catalog, reads_health, reads_jobs
from vultr_scraper_worker.api.routing import Response, Route
from vultr_scraper_worker.api.state import ApiState, state_of
from vultr_scraper_worker.records.runs import OUTCOMES

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
NS = "vultr_scraper"


@dataclass
class Snapshot:
    """Everything one scrape reports, gathered before any metric is built."""

    redis_up: bool = True
    families: list[Metric] = field(default_factory=list)


def _gauge(name: str, doc: str, labels: Iterable[str] = ()) -> GaugeMetricFamily:
    return GaugeMetricFamily(f"{NS}_{name}", doc, labels=list(labels))


async def _job_families(state: ApiState) -> list[Metric]:
    stats = await reads_jobs.job_stats(state)
    jobs = await reads_jobs.scheduled_jobs(state)
    names = sorted({job.name for job in jobs} | {name for name, _ in stats.runs})
    runs = CounterMetricFamily(
        f"{NS}_job_runs", "Job tries that ended, by job and outcome", labels=["job_name", "outcome"]
    )
    for name in names:
        for outcome in OUTCOMES:
            runs.add_metric([name, outcome], stats.runs.get((name, outcome), 0))
    durations = HistogramMetricFamily(
        f"{NS}_job_duration_seconds", "Duration of job tries", labels=["job_name"]
    )
    for name in names:
        buckets = stats.histogram(name)
        durations.add_metric([name], buckets, sum_value=stats.seconds.get(name, 0.0))
    last_run = _gauge(
        "job_last_run_timestamp_seconds", "When the job's latest try ended", ["job_name"]
    )
    last_ok = _gauge(
        "job_last_success_timestamp_seconds", "When the job last ended successfully", ["job_name"]
    )
    last_outcome = _gauge(
        "job_last_outcome",
        "1 for the outcome of the job's latest try, else 0",
        ["job_name", "outcome"],
    )
    next_run = _gauge(
        "job_next_run_timestamp_seconds", "When the job's schedule runs it next", ["job_name"]
    )
    for job in jobs:
        if job.last_run is not None:
            last_run.add_metric([job.name], job.last_run.end)
            for outcome in OUTCOMES:
                last_outcome.add_metric([job.name, outcome], float(job.last_run.outcome == outcome))
        if job.last_success is not None:
            last_ok.add_metric([job.name], job.last_success.timestamp())
        if job.next_run is not None:
            next_run.add_metric([job.name], job.next_run.timestamp())
    queue = await reads_jobs.queue_status(state, limit=1000)
    depth = _gauge("queue_jobs", "Jobs in the queue by state", ["state"])
    for kind in ("queued", "deferred", "running"):
        depth.add_metric([kind], sum(job.state == kind for job in queue.jobs))
    total = _gauge("queue_length", "Every job id in the queue, running ones included")
    total.add_metric([], queue.total)
    failed_count, _ = await reads_jobs.failed_jobs(state, 0)
    failed = _gauge("failed_jobs", "Failed-job records held (retry them from the status page)")
    failed.add_metric([], failed_count)
    pending = _gauge(
        "deliveries_pending",
        "Notification deliveries that failed transiently and wait for their next attempt",
        ["sink"],
    )
    for sink, count in sorted((await reads_jobs.pending_deliveries(state)).items()):
        pending.add_metric([sink], count)
    families: list[Metric] = [runs, durations, last_run, last_ok, last_outcome, next_run]
    return [*families, depth, total, failed, pending]


async def _health_families(state: ApiState) -> list[Metric]:
    endpoints = await reads_health.endpoint_health(state)
    up = _gauge(
        "endpoint_up", "1 when the endpoint is up, 0 when down (absent: unknown)", ["endpoint"]
    )
    status = _gauge("endpoint_state", "1 for the endpoint's current state", ["endpoint", "state"])
    latency = _gauge(
        "endpoint_latency_seconds", "Latency of the endpoint's latest probe", ["endpoint"]
    )
    checks = CounterMetricFamily(f"{NS}_endpoint_checks", "Probes recorded", labels=["endpoint"])
    uptime = _gauge(
        "endpoint_uptime_ratio", "Share of successful probes in the window", ["endpoint", "window"]
    )
    for endpoint in endpoints:
        current = endpoint.state
        if current.state != "unknown":
            up.add_metric([endpoint.name], float(current.state == "up"))
        for name in ("unknown", "up", "down"):
            status.add_metric([endpoint.name, name], float(current.state == name))
        if current.last is not None and current.last.latency_ms is not None:
            latency.add_metric([endpoint.name], current.last.latency_ms / 1000)
        checks.add_metric([endpoint.name], current.checks)
        for window, found in endpoint.uptime.items():
            if found.ratio is not None:
                uptime.add_metric([endpoint.name, window], found.ratio)
    return [up, status, latency, checks, uptime]


async def _catalog_families(state: ApiState) -> list[Metric]:
    summary = await reads_catalog.summary(state, with_stock=True)
    items = _gauge("catalog_items", "Records in the current catalogue", ["collection"])
    for collection, count in sorted(summary.counts.items()):
        items.add_metric([collection], count)
    last_ok = _gauge(
        "catalog_last_success_timestamp_seconds",
        "When a catalogue scrape last ended with the catalogue current",
    )
    last_try = _gauge("catalog_last_attempt_timestamp_seconds", "When a catalogue scrape last ran")
    if summary.last_success is not None:
        last_ok.add_metric([], summary.last_success.timestamp())
    if summary.last_attempt is not None:
        last_try.add_metric([], summary.last_attempt.timestamp())
    quarantined = _gauge(
        "catalog_quarantined", "1 while a scraped catalogue is held back by the plausibility gate"
    )
    quarantined.add_metric([], float(summary.quarantine is not None))
    since = _gauge(
        "catalog_quarantined_since_timestamp_seconds", "When the held-back snapshot was quarantined"
    )
    if summary.quarantine is not None:
        since.add_metric([], summary.quarantine.quarantined_at.timestamp())
    held = _gauge(
        "stock_held_regions",
        "Regions whose availability answer the stock gate holds back (unusable, or a mass "
        "change waiting for confirmation)",
    )
    held.add_metric([], len(summary.held_stock))
    held_since = _gauge(
        "stock_held_since_timestamp_seconds",
        "When the held-back availability answer of a region arrived",
        ["region"],
    )
    for answer in summary.held_stock:
        held_since.add_metric([answer.region], answer.observed_at.timestamp())
    fresh = _gauge(
        "catalog_fresh", "1 when the last good scrape is younger than [http] catalog_max_age"
    )
    fresh.add_metric([], float(reads_catalog.freshness(state, summary)[0]))
    stock = _gauge("stock_pairs", "Plan x region pairs by stock state", ["state"])
    for name, count in sorted(summary.stock.items()):
        stock.add_metric([name], count)
    changes = CounterMetricFamily(f"{NS}_changes", "Events in the change feed (never trimmed)")
    changes.add_metric([], await reads_catalog.change_count(state))
    families: list[Metric] = [items, last_ok, last_try, quarantined, since, held, held_since]
    families += [fresh, stock, changes]
    if state.config.http.price_metrics:
        families.extend(await _price_families(state))
    return families


async def _price_families(state: ApiState) -> list[Metric]:
    monthly = _gauge("plan_monthly_cost_dollars", "Published monthly price (USD)", ["plan", "type"])
    hourly = _gauge("plan_hourly_cost_dollars", "Published hourly price (USD)", ["plan", "type"])
    for plan in await reads_catalog.plan_prices(state):
        if plan.monthly is not None:
            monthly.add_metric([plan.id, plan.type], float(plan.monthly))
        if plan.hourly is not None:
            hourly.add_metric([plan.id, plan.type], float(plan.hourly))
    return [monthly, hourly]


async def gather(state: ApiState) -> Snapshot:
    snapshot = Snapshot()
    try:
        snapshot.families.extend(await _job_families(state))
        snapshot.families.extend(await _health_families(state))
        snapshot.families.extend(await _catalog_families(state))
    except (RedisError, OSError) as error:
        logger.warning("metrics: {}", redis_cause(error))
        snapshot.redis_up = False
        snapshot.families.clear()
    info = _gauge("build_info", "The running version", ["version"])
    info.add_metric([__version__], 1)
    redis_up = _gauge("redis_up", "1 when Redis answered this scrape's reads")
    redis_up.add_metric([], float(snapshot.redis_up))
    uptime = _gauge("worker_start_timestamp_seconds", "When this worker's HTTP server started")
    uptime.add_metric([], state.started_at.timestamp())
    snapshot.families[:0] = [info, redis_up, uptime]
    return snapshot


class _SnapshotCollector:
    def __init__(self, families: list[Metric]) -> None:
        self._families = families

    def collect(self) -> Iterator[Metric]:
        yield from self._families


def render(snapshot: Snapshot) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_SnapshotCollector(snapshot.families))
    return generate_latest(registry)


async def metrics(request: web.Request, args: dict[str, Any]) -> web.StreamResponse:
    snapshot = await gather(state_of(request))
    return web.Response(body=render(snapshot), headers={"Content-Type": CONTENT_TYPE})


ROUTES = [
    Route(
        "GET",
        "/metrics",
        metrics,
        operation_id="getMetrics",
        summary="Prometheus metrics: jobs, queue, catalogue, stock, endpoint health",
        tag="meta",
        uses_redis=False,  # a Redis outage is reported as vultr_scraper_redis_up 0
        responses={
            200: Response(
                "Prometheus text exposition format 0.0.4",
                media_type="text/plain",
                schema={"type": "string"},
            )
        },
    )
]
