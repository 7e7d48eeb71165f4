"""``/metrics``: parsed with prometheus_client's text parser, values checked against the store."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

from msgspec.structs import replace
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample
from redis.asyncio import Redis

from tests.redis_server import free_port
from tests.worker.api_harness import (
    TOKEN,
    Api,
    add_events,
    add_failed_job,
    cloud_plan,
    commit_catalogue,
    event,
    hold_stock,
    quarantine,
    record_run,
    running_api,
    set_stock,
)
from vultr_scraper_core.config import SinkConfig
from vultr_scraper_core.store.changes import ChangeFeed
from vultr_scraper_core.store.deliveries import DeliveryLedger, DeliveryRecord, PendingDelivery
from vultr_scraper_core.store.health import HealthStore, ProbeResult
from vultr_scraper_worker.records.stats import BUCKETS, bucket_of, parse_stats

NOW = datetime.now(UTC)


async def scrape(api: Api) -> dict[str, list[Sample]]:
    """Metric family name -> its samples, via prometheus_client's parser."""
    async with api.request("GET", "/metrics") as response:
        assert response.status == 200
        assert response.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
        text = await response.text()
    families = {
        family.name: list(family.samples) for family in text_string_to_metric_families(text)
    }
    return families


def value(samples: list[Sample], name: str | None = None, **labels: str) -> float:
    found = [
        sample.value
        for sample in samples
        if (name is None or sample.name == name)
        and all(sample.labels.get(key) == wanted for key, wanted in labels.items())
    ]
    assert len(found) == 1, (name, labels, samples)
    return found[0]


async def test_an_empty_store_scrapes_cleanly(redis_url: str) -> None:
    async with running_api(redis_url) as api:
        families = await scrape(api)
    assert value(families["vultr_scraper_redis_up"]) == 1
    assert value(families["vultr_scraper_failed_jobs"]) == 0
    assert value(families["vultr_scraper_catalog_quarantined"]) == 0
    assert value(families["vultr_scraper_catalog_fresh"]) == 0
    assert value(families["vultr_scraper_queue_length"]) == 0
    assert value(families["vultr_scraper_changes"], "vultr_scraper_changes_total") == 0
    assert families["vultr_scraper_catalog_last_success_timestamp_seconds"] == []
    runs = families["vultr_scraper_job_runs"]
    # Every job and outcome is present from the start, at zero (no missing series to alert on).
    assert len(runs) == 3 * 6 and all(sample.value == 0 for sample in runs)
    assert "vultr_scraper_plan_monthly_cost_dollars" not in families


async def test_job_counters_and_duration_histogram(redis_url: str, redis: Redis) -> None:
    for duration in (0.05, 0.3, 0.3, 7.0):
        await record_run(redis, "scrape-catalog", "success", duration)
    await record_run(redis, "scrape-catalog", "failed", 700.0)
    await record_run(redis, "check-health", "retry", 1.0)
    async with running_api(redis_url) as api:
        families = await scrape(api)
    runs = families["vultr_scraper_job_runs"]
    assert (
        value(runs, "vultr_scraper_job_runs_total", job_name="scrape-catalog", outcome="success")
        == 4
    )
    assert (
        value(runs, "vultr_scraper_job_runs_total", job_name="scrape-catalog", outcome="failed")
        == 1
    )
    assert (
        value(runs, "vultr_scraper_job_runs_total", job_name="check-health", outcome="retry") == 1
    )
    histogram = families["vultr_scraper_job_duration_seconds"]
    bucket = "vultr_scraper_job_duration_seconds_bucket"
    assert value(histogram, bucket, job_name="scrape-catalog", le="0.1") == 1
    assert value(histogram, bucket, job_name="scrape-catalog", le="0.5") == 3
    assert value(histogram, bucket, job_name="scrape-catalog", le="10.0") == 4
    assert value(histogram, bucket, job_name="scrape-catalog", le="600.0") == 4
    assert value(histogram, bucket, job_name="scrape-catalog", le="+Inf") == 5
    assert (
        value(histogram, "vultr_scraper_job_duration_seconds_count", job_name="scrape-catalog") == 5
    )
    total = value(histogram, "vultr_scraper_job_duration_seconds_sum", job_name="scrape-catalog")
    assert math.isclose(total, 0.05 + 0.3 + 0.3 + 7.0 + 700.0)
    outcome = families["vultr_scraper_job_last_outcome"]
    assert value(outcome, job_name="scrape-catalog", outcome="failed") == 1
    assert value(outcome, job_name="scrape-catalog", outcome="success") == 0
    assert len(families["vultr_scraper_job_last_success_timestamp_seconds"]) == 1
    next_runs = families["vultr_scraper_job_next_run_timestamp_seconds"]
    assert {sample.labels["job_name"] for sample in next_runs} == {"scrape-catalog", "check-health"}
    assert all(sample.value > NOW.timestamp() for sample in next_runs)


async def test_counters_only_grow_beyond_the_bounded_history(redis_url: str, redis: Redis) -> None:
    from vultr_scraper_worker.records.runs import RUNS_PER_JOB

    for _ in range(RUNS_PER_JOB + 5):
        await record_run(redis, "check-health", "success", 0.01)
    async with running_api(redis_url) as api:
        families = await scrape(api)
    runs = families["vultr_scraper_job_runs"]
    total = value(runs, "vultr_scraper_job_runs_total", job_name="check-health", outcome="success")
    assert total == RUNS_PER_JOB + 5


async def test_queue_and_failed_jobs(redis_url: str, redis: Redis) -> None:
    await add_failed_job(redis, "a:1")
    await add_failed_job(redis, "b:2")
    async with running_api(redis_url) as api:
        for _ in range(3):
            await api.json("POST", "/api/v1/jobs/check-health/enqueue", status=202, token=TOKEN)
        families = await scrape(api)
    assert value(families["vultr_scraper_failed_jobs"]) == 2
    assert value(families["vultr_scraper_queue_jobs"], state="queued") == 3
    assert value(families["vultr_scraper_queue_jobs"], state="running") == 0
    assert value(families["vultr_scraper_queue_length"]) == 3


def _pending(sink: str, event_id: str) -> tuple[PendingDelivery, DeliveryRecord]:
    now = NOW.timestamp()
    state = PendingDelivery(sink=sink, event_id=event_id, alert="gpu", since=now, attempts=1,
                            next_at=now + 30, next_job=f"deliver:{sink}:{event_id}:attempt-2",
                            error="status 503", http_status=503)  # fmt: skip
    record = DeliveryRecord(at=NOW, sink=sink, event_id=event_id, alert="gpu",
                            outcome="retrying", error="status 503", retry_in=30.0)  # fmt: skip
    return state, record


async def test_pending_deliveries_per_sink(redis_url: str, redis: Redis) -> None:
    """What the ledger holds as pending, by sink: every configured sink is a series (0 when
    nothing waits), a delivered or given-up delivery no longer counts, and a delivery still
    pending for a sink no longer configured is reported under its name."""
    ledger = DeliveryLedger(redis, "vs")
    for sink, event_id in (("hook", "1-0"), ("hook", "2-0"), ("gone", "1-0")):
        await ledger.set_pending(*_pending(sink, event_id))
    sinks = [SinkConfig(name="hook", url="https://hook.example/"),
             SinkConfig(name="chat", url="https://chat.example/")]  # fmt: skip
    async with running_api(redis_url, sinks=sinks) as api:
        pending = (await scrape(api))["vultr_scraper_deliveries_pending"]
        assert {sample.labels["sink"]: sample.value for sample in pending} == {
            "chat": 0,
            "gone": 1,
            "hook": 2,
        }
        _, record = _pending("hook", "1-0")
        await ledger.mark_delivered("hook", "1-0", replace(record, outcome="delivered"))
        await ledger.give_up("gone", "1-0", replace(record, sink="gone", outcome="failed"))
        pending = (await scrape(api))["vultr_scraper_deliveries_pending"]
    assert {sample.labels["sink"]: sample.value for sample in pending} == {"chat": 0, "hook": 1}


async def test_catalogue_stock_changes_and_quarantine(redis_url: str, redis: Redis) -> None:
    at = NOW - timedelta(minutes=1)
    await commit_catalogue(
        redis,
        [
            cloud_plan("vc2-1c-1gb", "5", locations=["fra", "ewr"]),
            cloud_plan("vc2-2c-4gb", "20", locations=["fra"]),
        ],
        at=at,
    )
    await set_stock(redis, {("vc2-1c-1gb", "fra"): True, ("vc2-2c-4gb", "fra"): False}, at=at)
    await add_events(redis, [event("plan_added", "vc2-1c-1gb", at=at)] * 3)
    await quarantine(redis, at=NOW, reasons=["price x2"])
    async with running_api(redis_url) as api:
        families = await scrape(api)
    items = families["vultr_scraper_catalog_items"]
    assert value(items, collection="plans") == 2
    assert value(items, collection="regions") == 2
    assert value(families["vultr_scraper_catalog_fresh"]) == 1
    assert value(families["vultr_scraper_catalog_quarantined"]) == 1
    since = value(families["vultr_scraper_catalog_quarantined_since_timestamp_seconds"])
    assert math.isclose(since, NOW.timestamp(), abs_tol=1)
    last = value(families["vultr_scraper_catalog_last_success_timestamp_seconds"])
    assert math.isclose(last, at.timestamp(), abs_tol=1)
    assert value(families["vultr_scraper_stock_pairs"], state="in_stock") == 1
    assert value(families["vultr_scraper_stock_pairs"], state="out_of_stock") == 1
    assert value(families["vultr_scraper_changes"], "vultr_scraper_changes_total") == 3
    assert value(families["vultr_scraper_stock_held_regions"]) == 0


async def test_held_stock_answers(redis_url: str, redis: Redis) -> None:
    await hold_stock(redis, "ewr", at=NOW - timedelta(minutes=2), reasons=["ewr: reports none"])
    await hold_stock(redis, "fra", at=NOW, reasons=["fra: reports none"])
    async with running_api(redis_url) as api:
        families = await scrape(api)
    assert value(families["vultr_scraper_stock_held_regions"]) == 2
    since = families["vultr_scraper_stock_held_since_timestamp_seconds"]
    assert math.isclose(value(since, region="fra"), NOW.timestamp(), abs_tol=1)
    ewr = value(since, region="ewr")
    assert math.isclose(ewr, (NOW - timedelta(minutes=2)).timestamp(), abs_tol=1)


async def test_endpoint_health(redis_url: str, redis: Redis) -> None:
    store = HealthStore(redis, "vs")
    feed = ChangeFeed(redis, "vs")
    for ok in (True, True, False, False, False):
        result = ProbeResult(at=NOW, ok=ok, status=200 if ok else 503, latency_ms=120.0)
        await store.record(
            "status-page",
            "https://status.example/",
            result,
            failure_threshold=3,
            success_threshold=2,
            feed=feed,
        )
    async with running_api(redis_url) as api:
        families = await scrape(api)
    assert value(families["vultr_scraper_endpoint_up"], endpoint="status-page") == 0
    assert (
        value(families["vultr_scraper_endpoint_state"], endpoint="status-page", state="down") == 1
    )
    latency = value(families["vultr_scraper_endpoint_latency_seconds"], endpoint="status-page")
    assert math.isclose(latency, 0.12)
    uptime = families["vultr_scraper_endpoint_uptime_ratio"]
    assert math.isclose(value(uptime, endpoint="status-page", window="24h"), 2 / 5)
    checks = families["vultr_scraper_endpoint_checks"]
    assert value(checks, "vultr_scraper_endpoint_checks_total", endpoint="status-page") == 5


async def test_price_series_only_when_enabled(redis_url: str, redis: Redis) -> None:
    await commit_catalogue(
        redis, [cloud_plan("vc2-1c-1gb", "5", locations=["fra"], hourly_cost=0.007)], at=NOW
    )
    async with running_api(redis_url) as api:
        assert "vultr_scraper_plan_monthly_cost_dollars" not in await scrape(api)
    async with running_api(redis_url, price_metrics=True) as api:
        families = await scrape(api)
    monthly = families["vultr_scraper_plan_monthly_cost_dollars"]
    assert value(monthly, plan="vc2-1c-1gb", type="vc2") == 5
    hourly = families["vultr_scraper_plan_hourly_cost_dollars"]
    assert math.isclose(value(hourly, plan="vc2-1c-1gb"), 0.007)


async def test_redis_down_is_a_metric_not_a_failed_scrape(redis_url: str) -> None:
    dead = f"redis://127.0.0.1:{free_port()}/0"
    async with running_api(dead, outage_budget=0.1) as api:
        families = await scrape(api)
    assert value(families["vultr_scraper_redis_up"]) == 0
    assert "vultr_scraper_job_runs" not in families
    assert value(families["vultr_scraper_build_info"]) == 1


def test_bucket_boundaries() -> None:
    assert bucket_of(0.1) == "0.1"
    assert bucket_of(0.10001) == "0.25"
    assert bucket_of(600) == "600.0"
    assert bucket_of(601) == "+Inf"
    assert bucket_of(float("nan")) == "+Inf"
    assert len(BUCKETS) == 13


def test_unknown_stats_fields_are_ignored() -> None:
    stats = parse_stats(
        {
            b"runs|a|success": b"2",
            b"le|a|0.1": b"1",
            b"le|a|0.3": b"9",
            b"bogus": b"x",
            b"runs|a|failed": b"not a number",
            b"seconds|a": b"1.5",
        }
    )
    assert stats.runs == {("a", "success"): 2}
    assert stats.seconds == {"a": 1.5}
    assert stats.histogram("a")[0] == ("0.1", 1) and stats.histogram("a")[-1] == ("+Inf", 1)
