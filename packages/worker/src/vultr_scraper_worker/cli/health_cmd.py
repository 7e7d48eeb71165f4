"""``vultr-scraper health``: state, last result and uptime of every configured endpoint."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from vultr_scraper_worker.cli.common import (
    State,
    json_option,
    print_json,
    print_table,
    with_redis,
)

if TYPE_CHECKING:
    from datetime import datetime

    from redis.asyncio import Redis

    from vultr_scraper_core.config import LoadedConfig

WINDOWS = {"24h": 24, "7d": 24 * 7, "30d": 24 * 30}
COLUMNS = ("endpoint", "state", "since", "last_check", "status", "latency_ms", "up_24h", "up_7d")


def _percent(ratio: float | None) -> str | None:
    return None if ratio is None else f"{ratio * 100:.2f}%"


async def health_report(
    loaded: LoadedConfig, redis: Redis, now: datetime | None = None
) -> dict[str, Any]:
    """The document ``health --json`` prints (also used by the table)."""
    from datetime import UTC, datetime

    from vultr_scraper_core.config import mask_url
    from vultr_scraper_core.formats import format_time
    from vultr_scraper_core.store.health import HealthStore
    from vultr_scraper_jobs.health import configured_endpoints
    from vultr_scraper_jobs.maintenance import maintenance_now

    config = loaded.config
    moment = now or datetime.now(UTC)
    endpoints = configured_endpoints(config)
    names = [endpoint.name for endpoint in endpoints]
    store = HealthStore(redis, config.redis.key_prefix, keep_results=config.health.keep_results)
    states = await store.states(names)
    uptimes = {key: await store.uptime(names, hours, moment) for key, hours in WINDOWS.items()}
    in_maintenance = (await maintenance_now(redis, config, moment)).subjects
    rows = []
    for endpoint in endpoints:
        state = states[endpoint.name]
        last = state.last
        held = in_maintenance.get(endpoint.name)
        rows.append(
            {
                "name": endpoint.name,
                "url": mask_url(endpoint.url),
                "interval": endpoint.interval,
                "state": state.state,
                "since": format_time(state.since),
                "failures_in_a_row": state.failures,
                "successes_in_a_row": state.successes,
                "checks": state.checks,
                "last_check": format_time(last.at) if last else None,
                "last_ok": last.ok if last else None,
                "last_status": last.status if last else None,
                "last_latency_ms": last.latency_ms if last else None,
                "last_error": (last.error or None) if last else None,
                "cert_days": last.cert_days if last else None,
                "uptime": {key: uptimes[key][endpoint.name].ratio for key in WINDOWS},
                "probes": {key: uptimes[key][endpoint.name].probes for key in WINDOWS},
                "avg_latency_ms_24h": uptimes["24h"][endpoint.name].avg_latency_ms,
                "in_maintenance": held is not None,
                "maintenance": {"until": format_time(held.until), "reason": held.reason}
                if held
                else None,
            }
        )
    return {"generated_at": format_time(moment), "endpoints": rows}


@click.command("health", short_help="Endpoint health: state, last check, uptime.")
@json_option
@click.pass_obj
def health(state: State, as_json: bool) -> None:
    """Endpoint health: state (up, down, unknown), last check and uptime over 24 h and 7 d.

    An endpoint turns DOWN after [health] failure_threshold failed checks in a row and UP
    after success_threshold good ones; --json adds 30-day uptime, streaks and the last error.
    """
    loaded = state.loaded()
    report = with_redis(loaded, lambda redis: health_report(loaded, redis))
    if as_json:
        print_json(report)
        return
    rows = [
        {
            "endpoint": row["name"],
            "state": row["state"].upper() + (" (maintenance)" if row["in_maintenance"] else ""),
            "since": row["since"],
            "last_check": row["last_check"],
            "status": row["last_status"]
            if row["last_ok"] is not False
            else f"{row['last_status'] or '-'} FAIL",
            "latency_ms": None
            if row["last_latency_ms"] is None
            else f"{row['last_latency_ms']:.0f}",
            "up_24h": _percent(row["uptime"]["24h"]),
            "up_7d": _percent(row["uptime"]["7d"]),
        }
        for row in report["endpoints"]
    ]
    print_table(rows, COLUMNS)
    failing = [row for row in report["endpoints"] if row["last_error"]]
    for row in failing:
        click.echo(f"{row['name']}: {row['last_error']}")
