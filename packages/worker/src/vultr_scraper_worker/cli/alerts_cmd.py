"""``vultr-scraper alerts list | test NAME | deliveries``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import click

from vultr_scraper_worker.cli.common import (
    State,
    fail,
    human_logs,
    json_option,
    print_json,
    print_table,
    with_redis,
)
from vultr_scraper_worker.exit_status import ExitStatus

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from vultr_scraper_core.config import AlertConfig, LoadedConfig
    from vultr_scraper_core.store.deliveries import DeliveryRecord, PendingDelivery

_FILTERS = (
    "plan_type",
    "plan",
    "min_vcpu",
    "min_ram_mb",
    "min_gpu_vram_gb",
    "gpu_type",
    "max_monthly",
    "max_hourly",
    "in_stock",
    "endpoint",
)


def describe_filter(alert: AlertConfig) -> str:
    parts = [
        f"{name}={getattr(alert, name)}" for name in _FILTERS if getattr(alert, name) is not None
    ]
    if alert.regions:
        parts.append(f"regions={','.join(alert.regions)}")
    return " ".join(parts) or "(any)"


def _find_alert(loaded: LoadedConfig, name: str) -> AlertConfig:
    for alert in loaded.config.alerts:
        if alert.name == name:
            return alert
    known = ", ".join(alert.name for alert in loaded.config.alerts) or "(none)"
    fail(f"unknown alert {name!r}; configured alerts: {known}", ExitStatus.USAGE)


@click.group("alerts", short_help="Saved-search alerts: list them, test their sinks.")
def alerts() -> None:
    """Saved-search alerts ([[alerts]]) and their notification sinks ([[sinks]])."""


@alerts.command("list")
@json_option
@click.pass_obj
def list_alerts(state: State, as_json: bool) -> None:
    """The configured alerts: watched kinds, filter and sinks."""
    config = state.loaded().config
    if as_json:
        print_json(
            {
                "alerts": [alert for alert in config.alerts],
                "sinks": [
                    {"name": sink.name, "kind": sink.kind, "has_secret": bool(sink.secret_file)}
                    for sink in config.sinks
                ],
            }
        )
        return
    rows = [
        {
            "alert": alert.name,
            "kinds": alert.kinds,
            "filter": describe_filter(alert),
            "sinks": alert.sinks,
        }
        for alert in config.alerts
    ]
    print_table(rows, ("alert", "kinds", "filter", "sinks"))


@alerts.command("test")
@click.argument("name")
@json_option
@click.pass_obj
def test_alert(state: State, name: str, as_json: bool) -> None:
    """Send a sample notification for alert NAME to each of its sinks now.

    Nothing is queued or recorded. Exit status 1 if any sink failed.
    """
    import asyncio

    from vultr_scraper_core.describe import describe_event
    from vultr_scraper_jobs.notify import sample_event

    loaded = state.loaded()
    alert = _find_alert(loaded, name)
    if not alert.sinks:
        fail(f"alert {name!r} has no sinks", ExitStatus.FAILURE)
    state.setup_logging(human=human_logs())
    kind = alert.kinds[0] if alert.kinds else "back_in_stock"
    region = alert.regions[0] if alert.regions else None
    event = sample_event(kind, plan=alert.plan, region=region)
    results = asyncio.run(_send_samples(loaded, alert, event))
    document = {
        "alert": name,
        "event": event,
        "text": f"[{name}] {describe_event(event)}",
        **results,
    }
    if as_json:
        print_json(document)
    else:
        click.echo(f"sample: {document['text']}")
        for row in results["sinks"]:
            outcome = f"ok (HTTP {row['http_status']})" if row["ok"] else f"FAILED: {row['error']}"
            click.echo(f"{row['sink']}: {outcome}")
    if not all(row["ok"] for row in results["sinks"]):
        raise SystemExit(ExitStatus.FAILURE)


async def _send_samples(loaded: LoadedConfig, alert: AlertConfig, event: Any) -> dict[str, Any]:
    from vultr_scraper_core.http import HttpClient, create_session
    from vultr_scraper_jobs.notify import find_sink, send

    config = loaded.config
    rows: list[dict[str, Any]] = []
    async with create_session(config.client) as session:
        http = HttpClient(session, config.client)
        for sink_name in alert.sinks:
            row: dict[str, Any] = {"sink": sink_name, "ok": False, "http_status": None}
            try:
                sink = find_sink(config, sink_name)
                response = await send(http, sink, loaded.secrets, event, f"{alert.name} (test)")
            except Exception as error:  # every failure is reported per sink, none is fatal
                row["error"] = str(error)
                row["http_status"] = getattr(error, "status", None)
            else:
                row.update(ok=True, http_status=response.status)
            rows.append(row)
    return {"sinks": rows}


@alerts.command("deliveries")
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    default=50,
    show_default=True,
    help="How many outcomes to show.",
)
@json_option
@click.pass_obj
def deliveries(state: State, limit: int, as_json: bool) -> None:
    """Pending deliveries (failed so far, to be tried again), then recent notification
    outcomes (delivered, retrying, failed, skipped), newest first.

    Deliveries that failed for good are also listed by `vultr-scraper jobs` (failed jobs)."""
    from vultr_scraper_core.formats import format_time
    from vultr_scraper_core.store.deliveries import DeliveryLedger

    loaded = state.loaded()
    prefix = loaded.config.redis.key_prefix

    async def read(redis: Redis) -> tuple[list[PendingDelivery], list[DeliveryRecord]]:
        ledger = DeliveryLedger(redis, prefix)
        return await ledger.pending(), await ledger.recent(limit)

    pending, records = with_redis(loaded, read)
    if as_json:
        print_json({"pending": pending, "deliveries": records})
        return
    if pending:
        click.echo("Pending (tried again until [deliveries] horizon after the first failure):")
        waiting = [
            {
                "delivery": item.delivery,
                "alert": item.alert,
                "failing since": format_time(datetime.fromtimestamp(item.since, UTC)),
                "attempts": item.attempts,
                "next attempt": format_time(datetime.fromtimestamp(item.next_at, UTC)),
                "http": item.http_status,
                "error": item.error or None,
            }
            for item in pending
        ]
        columns = ("delivery", "alert", "failing since", "attempts", "next attempt", "http")
        print_table(waiting, (*columns, "error"))
        click.echo("")
    rows = [
        {
            "at": format_time(record.at),
            "sink": record.sink,
            "event": record.event_id,
            "alert": record.alert,
            "outcome": record.outcome,
            "try": record.attempt,
            "http": record.http_status,
            "error": record.error or None,
        }
        for record in records
    ]
    print_table(rows, ("at", "sink", "event", "alert", "outcome", "try", "http", "error"))
