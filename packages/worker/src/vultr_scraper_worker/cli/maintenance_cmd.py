"""``vultr-scraper mute``, ``unmute`` and ``maintenance``: one-off maintenance windows.

A mute holds back alerts about one endpoint (or ``catalog``, or ``*`` for everything) until it
ends; checks still run and are recorded. Stored in Redis, so the worker sees it at once.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import click

from vultr_scraper_worker.cli.common import (
    State,
    fail,
    json_option,
    option_value,
    print_json,
    print_table,
    with_redis,
)
from vultr_scraper_worker.exit_status import ExitStatus

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from vultr_scraper_core.maintenance import Mute
    from vultr_scraper_jobs.maintenance import MaintenanceNow


def _duration(text: str) -> timedelta:
    from vultr_scraper_jobs.maintenance import parse_duration

    return parse_duration(text)


def _until(text: str) -> datetime:
    from vultr_scraper_core.formats import parse_time

    return parse_time(text)


@click.command("mute", short_help="Hold back alerts about an endpoint for a while.")
@click.argument("target")
@click.option(
    "--for",
    "duration",
    callback=option_value(_duration),
    help="How long: 90s, 30m, 2h, 1h30m, 3d, 1w (at most a year).",
)
@click.option(
    "--until",
    "until",
    callback=option_value(_until),
    help="Until this time instead (RFC 3339, e.g. 2026-01-15T06:00:00Z).",
)
@click.option("--reason", default="", help="Why, shown in listings and the status page.")
@json_option
@click.pass_obj
def mute(
    state: State,
    target: str,
    duration: timedelta | None,
    until: datetime | None,
    reason: str,
    as_json: bool,
) -> None:
    """Put TARGET in maintenance now: an endpoint name, `catalog` (stale and quarantine
    alerts) or `*` (everything). Checks still run and are recorded; alerts are held back
    until the mute ends, then a condition that still lasts is announced once. Muting a target
    again replaces its mute.
    """
    from vultr_scraper_core.formats import format_time
    from vultr_scraper_jobs.maintenance import set_mute
    from vultr_scraper_worker.documents.maintenance import MuteEntry

    if (duration is None) == (until is None):
        raise click.UsageError("give exactly one of --for DURATION or --until TIME")
    loaded = state.loaded()
    now = datetime.now(UTC)
    end = until if until is not None else now + duration  # type: ignore[operator]

    async def work(redis: Redis) -> Mute:
        return await set_mute(redis, loaded.config, target, until=end, now=now, reason=reason)

    try:
        found = with_redis(loaded, work)
    except ValueError as error:
        fail(str(error), ExitStatus.USAGE)
    if as_json:
        print_json(MuteEntry.of(found))
        return
    why = f" ({found.reason})" if found.reason else ""
    click.echo(f"{found.target}: muted until {format_time(found.until)}{why}")


@click.command("unmute", short_help="End an endpoint's mute now.")
@click.argument("target")
@json_option
@click.pass_obj
def unmute(state: State, target: str, as_json: bool) -> None:
    """End TARGET's mute now (exit 1 when it had none). Recurring windows from the
    configuration are not affected."""
    from vultr_scraper_jobs.maintenance import remove_mute
    from vultr_scraper_worker.documents.maintenance import Unmuted

    loaded = state.loaded()

    async def work(redis: Redis) -> bool:
        return await remove_mute(redis, loaded.config, target)

    removed = with_redis(loaded, work)
    if as_json:
        print_json(Unmuted(target=target, removed=removed))
    elif removed:
        click.echo(f"{target}: mute ended")
    if not removed:
        fail(f"{target!r} was not muted", ExitStatus.FAILURE)


@click.command("maintenance", short_help="What is in maintenance now: mutes and windows.")
@json_option
@click.pass_obj
def maintenance(state: State, as_json: bool) -> None:
    """What is in maintenance now and why, the active mutes, and every recurring window from
    the configuration with the end of its current occurrence."""
    import msgspec

    from vultr_scraper_jobs.maintenance import maintenance_now
    from vultr_scraper_worker.documents.maintenance import MaintenanceReport

    loaded = state.loaded()
    now = datetime.now(UTC)

    async def work(redis: Redis) -> MaintenanceNow:
        return await maintenance_now(redis, loaded.config, now)

    document = msgspec.to_builtins(MaintenanceReport.of(with_redis(loaded, work)))
    if as_json:
        print_json(document)
        return
    rows = [
        {"subject": subject, "until": status["until"], "reason": status["reason"]}
        for subject, status in document["in_maintenance"].items()
    ]
    click.echo("In maintenance now:")
    print_table(rows, ("subject", "until", "reason"))
    if document["windows"]:
        click.echo("\nRecurring windows:")
        print_table(document["windows"], ("scope", "window", "active_until"))
