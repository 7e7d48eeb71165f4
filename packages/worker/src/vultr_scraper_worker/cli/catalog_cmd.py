"""``plans``, ``changes``, ``availability`` and ``quarantine``: what the catalogue jobs stored.

Every command reads through ``vultr_scraper_core.store.queries`` / ``store.changes`` (the same
code as the HTTP API), prints a table for people or one JSON document with ``--json`` (money as
exact decimal strings), and exits 69 when Redis is unavailable, including when no Redis is
configured and ``redis-server`` is missing for the embedded one.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import click

from vultr_scraper_core.store.kinds import EventKind
from vultr_scraper_worker.cli.common import (
    State,
    fail,
    json_option,
    one_line,
    option_value,
    print_json,
    print_table,
    with_redis,
)
from vultr_scraper_worker.exit_status import ExitStatus

if TYPE_CHECKING:
    from datetime import datetime
    from decimal import Decimal

    from redis.asyncio import Redis

    from vultr_scraper_core.config import LoadedConfig
    from vultr_scraper_core.history.query import History
    from vultr_scraper_core.store.changes import ChangeEvent
    from vultr_scraper_core.store.queries import PlanRow

T = TypeVar("T")

__all__ = ["one_line", "with_redis"]  # kept importable from here

_SIZE = re.compile(r"^(\d+(?:\.\d+)?)\s*(m|mb|g|gb|t|tb)?$", re.IGNORECASE)


def parse_megabytes(text: str) -> int:
    """``4096`` (MB), ``4g`` / ``4GB``, ``1.5g``, ``2tb`` -> megabytes."""
    from decimal import Decimal

    match = _SIZE.match(text.strip())
    if not match:
        raise ValueError(f"{text!r} is not a size; use MB (4096) or 4GB")
    number = Decimal(match.group(1))
    unit = (match.group(2) or "m").lower()[0]
    return int(number * {"m": 1, "g": 1024, "t": 1024 * 1024}[unit])


# The shared parsers (vultr_scraper_core.formats), loaded when an option is given.
def _time(text: str) -> datetime:
    from vultr_scraper_core.formats import parse_time

    return parse_time(text)


def _money(text: str) -> Decimal:
    from vultr_scraper_core.formats import parse_money

    return parse_money(text)


def _cursor(text: str) -> str:
    from vultr_scraper_core.formats import parse_cursor

    return parse_cursor(text)


WHEN = option_value(_time)
SIZE = option_value(parse_megabytes)
MONEY = option_value(_money)
CURSOR = option_value(_cursor)


def read_history(loaded: LoadedConfig, work: Callable[[History], Awaitable[T]]) -> T:
    """Run ``work`` on the history of the store and the archive; an archive file that is
    missing or unreadable ends the command with its name (status 1)."""
    from vultr_scraper_core.history.files import ArchiveError
    from vultr_scraper_core.history.query import History

    async def run(redis: Redis) -> T:
        history = History.from_config(redis, loaded.config, loaded.secrets)
        return await work(history)

    try:
        return with_redis(loaded, run)
    except ArchiveError as error:
        fail(f"history archive: {one_line(str(error))}", ExitStatus.FAILURE)


def gigabytes(megabytes: int | None) -> str | None:
    from decimal import Decimal

    if megabytes is None:
        return None
    value = Decimal(megabytes) / 1024
    return f"{value.quantize(Decimal('0.1')).normalize():f} GB"


# -- plans --------------------------------------------------------------------------------

PLAN_COLUMNS = (
    "plan",
    "type",
    "region",
    "vcpu",
    "ram",
    "disk",
    "gpu",
    "monthly",
    "hourly",
    "stock",
)


def _plan_table_row(row: PlanRow) -> dict[str, Any]:
    from vultr_scraper_core.formats import format_money

    gpu = None
    if row.gpu_vram_gb or row.gpu_type or row.gpu_brand:
        name = (row.gpu_type or row.gpu_brand or "").replace("NVIDIA_", "").replace("AMD_", "")
        gpu = " ".join(
            part for part in (name, f"{row.gpu_vram_gb}G" if row.gpu_vram_gb else "") if part
        )
    disk = None
    if row.disk_gb is not None:
        disk = (
            f"{row.disk_count}x{row.disk_gb} GB"
            if (row.disk_count or 1) > 1
            else f"{row.disk_gb} GB"
        )
    return {
        "plan": row.plan,
        "type": row.plan_type,
        "region": row.region,
        "vcpu": row.vcpu_count,
        "ram": gigabytes(row.ram_mb),
        "disk": disk,
        "gpu": gpu,
        "monthly": format_money(row.monthly_cost),
        "hourly": format_money(row.hourly_cost),
        "stock": row.in_stock,
    }


@click.command("plans", short_help="Plans and prices per region, cheapest first.")
@click.option(
    "--type", "plan_type", help="Plan type: vc2, vhf, vhp, voc, vcg, vdm, vx1, vbm (metal)."
)
@click.option("--region", help="Region id, e.g. fra.")
@click.option("--plan", "plan_id", help="One plan id.")
@click.option("--min-vcpu", type=click.IntRange(min=0), help="At least this many vCPUs.")
@click.option(
    "--min-ram", metavar="SIZE", callback=SIZE, help="At least this much RAM (MB, or 8GB)."
)
@click.option(
    "--min-gpu-vram", type=click.IntRange(min=0), help="At least this much GPU VRAM (GB)."
)
@click.option("--gpu", "gpu_type", help="GPU type or brand, e.g. a100, l40s, amd.")
@click.option(
    "--max-monthly", metavar="USD", callback=MONEY, help="At most this monthly price (USD)."
)
@click.option(
    "--max-hourly", metavar="USD", callback=MONEY, help="At most this hourly price (USD)."
)
@click.option("--in-stock", is_flag=True, help="Only plans in stock (now, or at --at).")
@click.option(
    "--at",
    "at",
    metavar="WHEN",
    callback=WHEN,
    help="Answer from history: 2026-01-31T00:00Z, or 7d ago.",
)
@click.option("--limit", type=click.IntRange(min=1), help="Print at most this many rows.")
@json_option
@click.pass_obj
def plans(
    state: State,
    plan_type: str | None,
    region: str | None,
    plan_id: str | None,
    min_vcpu: int | None,
    min_ram: int | None,
    min_gpu_vram: int | None,
    gpu_type: str | None,
    max_monthly: Decimal | None,
    max_hourly: Decimal | None,
    in_stock: bool,
    at: datetime | None,
    limit: int | None,
    as_json: bool,
) -> None:
    """Plans by region with the price that applies there, cheapest first.

    One row per plan and region: a region's own price (location_cost) replaces the base
    price, and a São Paulo -sc1 twin is its own row. STOCK is yes / no, or - when that
    region's stock was never checked.
    """
    import msgspec

    from vultr_scraper_core.formats import format_time
    from vultr_scraper_core.store.queries import PlanFilter, find_plans

    loaded = state.loaded()
    flt = PlanFilter(
        plan_type=plan_type,
        region=region,
        plan=plan_id,
        min_vcpu=min_vcpu,
        min_ram_mb=min_ram,
        min_gpu_vram_gb=min_gpu_vram,
        gpu_type=gpu_type,
        max_monthly=max_monthly,
        max_hourly=max_hourly,
        in_stock=True if in_stock else None,
    )
    prefix = loaded.config.redis.key_prefix
    if at is None:
        rows = with_redis(loaded, lambda redis: find_plans(redis, prefix, flt))
    else:
        rows = read_history(loaded, lambda history: history.plans(flt, at))
    if not rows and region:
        refuse_unknown_region(loaded, region)
    total = len(rows)
    shown = rows[:limit] if limit else rows
    if as_json:
        print_json({"at": format_time(at), "count": total, "plans": msgspec.to_builtins(shown)})
        return
    if at is not None:
        click.echo(f"# as of {format_time(at)}")
    print_table([_plan_table_row(row) for row in shown], PLAN_COLUMNS)
    if len(shown) < total:
        click.echo(f"# {total - len(shown)} more; raise --limit or narrow the filters")


# -- changes ------------------------------------------------------------------------------

CHANGE_COLUMNS = ("id", "at", "kind", "subject", "region", "field", "change")
_SUMMARY_FIELDS = ("type", "monthly_cost", "hourly_cost", "vcpu_count", "ram", "city", "gpu_type")


def describe_value(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, dict):
        parts = [f"{key}={value[key]}" for key in _SUMMARY_FIELDS if key in value]
        return " ".join(parts) or "{...}"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        text = ",".join(str(item) for item in value)
        return text if len(text) <= 40 else text[:37] + "..."
    return str(value)


def describe_change(event: ChangeEvent) -> str:
    if event.kind in (EventKind.PLAN_ADDED, EventKind.REGION_ADDED):
        return describe_value(event.new)
    if event.kind in (EventKind.PLAN_RETIRED, EventKind.REGION_REMOVED):
        return describe_value(event.old)
    return f"{describe_value(event.old)} -> {describe_value(event.new)}"


def _change_rows(events: Sequence[ChangeEvent]) -> list[dict[str, Any]]:
    from vultr_scraper_core.formats import format_time

    return [
        {
            "id": event.id,
            "at": format_time(event.at),
            "kind": str(event.kind),
            "subject": event.subject,
            "region": event.region,
            "field": event.field,
            "change": describe_change(event),
        }
        for event in events
    ]


@click.command("changes", short_help="The change feed: prices, plans, regions, stock.")
@click.option(
    "--since", metavar="WHEN", callback=WHEN, help="From this time (ISO 8601, or 24h / 7d ago)."
)
@click.option("--until", metavar="WHEN", callback=WHEN, help="Before this time.")
@click.option(
    "--after",
    "after",
    metavar="ID",
    callback=CURSOR,
    help="After this event id, oldest first (the next page: the last ID shown; 0 = the start).",
)
@click.option("--plan", "subject", help="Only events about this plan (or region, or endpoint).")
@click.option(
    "--kind",
    "kinds",
    multiple=True,
    type=click.Choice([str(kind) for kind in EventKind]),
    help="Only these kinds (repeatable).",
)
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    default=100,
    show_default=True,
    help="At most this many events (without --after/--since/--until: the newest ones).",
)
@json_option
@click.pass_obj
def changes(
    state: State,
    since: datetime | None,
    until: datetime | None,
    after: str | None,
    subject: str | None,
    kinds: tuple[str, ...],
    limit: int,
    as_json: bool,
) -> None:
    """The change feed: prices, plans, regions, stock, schema drift, endpoints.

    Without --after, --since or --until: the newest --limit events, printed oldest to newest.
    With them: events from that id or time onwards, oldest first, and a full page ends with the
    --after ID that reads the next one (`--after 0` pages through the whole feed from the start).
    """
    from vultr_scraper_core.formats import format_time
    from vultr_scraper_core.store.changes import ChangeFeed

    if since is not None and until is not None and since >= until:
        raise click.UsageError(
            f"--since ({format_time(since)}) must be before --until ({format_time(until)})"
        )
    loaded = state.loaded()
    feed_key = loaded.config.redis.key_prefix
    newest = after is None and since is None and until is None

    async def latest(redis: Redis) -> list[ChangeEvent]:
        # One more than shown, to tell whether older events exist.
        feed = ChangeFeed(redis, feed_key)
        return await feed.latest(limit + 1, kinds=set(kinds) or None, subject=subject)

    async def read(history: History) -> list[ChangeEvent]:
        # The window and, for older times, the archive.
        return await history.changes(
            after=after,
            since=since,
            until=until,
            kinds=set(kinds) or None,
            subject=subject,
            limit=limit,
        )

    events = with_redis(loaded, latest) if newest else read_history(loaded, read)
    if newest:
        older = len(events) > limit
        events = events[:limit][::-1]
        next_cursor = None  # nothing follows the newest event (yet)
    else:
        older = False
        next_cursor = events[-1].id if len(events) == limit else None
    if as_json:
        print_json({"count": len(events), "next": next_cursor, "changes": events})
        return
    print_table(_change_rows(events), CHANGE_COLUMNS)
    if next_cursor is not None:
        click.echo(f"# more may follow: vultr-scraper changes --after {next_cursor} ...")
    elif older:
        click.echo(
            f"# the newest {limit} shown; older ones: vultr-scraper changes --after 0 ... "
            f"(from the start) or --since/--until"
        )


# -- availability -------------------------------------------------------------------------

STOCK_COLUMNS = ("plan", "region", "in_stock", "since", "last_in_stock", "checked_at")


@click.command("availability", short_help="Stock per plan and region, since when.")
@click.option("--plan", "plan_id", help="One plan id.")
@click.option("--region", help="One region id.")
@click.option("--in-stock/--out-of-stock", "in_stock", default=None, help="Only one state.")
@click.option(
    "--stats",
    "with_stats",
    is_flag=True,
    help="Add stock statistics: share of time in stock over 24h/7d/30d, median time until back.",
)
@click.option("--limit", type=click.IntRange(min=1), help="Print at most this many rows.")
@json_option
@click.pass_obj
def availability(
    state: State,
    plan_id: str | None,
    region: str | None,
    in_stock: bool | None,
    with_stats: bool,
    limit: int | None,
    as_json: bool,
) -> None:
    """Stock per plan and region: in stock now or not, since when, last seen in stock."""
    import msgspec

    from vultr_scraper_core.formats import format_time
    from vultr_scraper_core.store.queries import stock

    loaded = state.loaded()
    prefix = loaded.config.redis.key_prefix
    rows = with_redis(loaded, lambda redis: stock(redis, prefix, plan=plan_id, region=region))
    if not rows and region:
        refuse_unknown_region(loaded, region)
    if in_stock is not None:
        rows = [row for row in rows if row.in_stock is in_stock]
    total = len(rows)
    rows = rows[:limit] if limit else rows
    found: dict[tuple[str, str], Any] = {}
    if with_stats:
        from datetime import UTC, datetime

        from vultr_scraper_core.history.plan_view import region_stats

        async def read(history: History) -> list[Any]:
            return await region_stats(history, datetime.now(UTC), plan=plan_id, region=region)

        found = {(item.plan, item.region): item.stats for item in read_history(loaded, read)}
    if as_json:
        documents = msgspec.to_builtins(rows)
        if with_stats:
            for document, row in zip(documents, rows, strict=True):
                document["stats"] = msgspec.to_builtins(found.get((row.plan, row.region)))
        print_json({"count": total, "stock": documents})
        return
    table = [
        {
            "plan": row.plan,
            "region": row.region,
            "in_stock": row.in_stock,
            "since": format_time(row.since),
            "last_in_stock": format_time(row.last_in_stock),
            "checked_at": format_time(row.checked_at),
        }
        for row in rows
    ]
    if with_stats:
        for line, row in zip(table, rows, strict=True):
            got = found.get((row.plan, row.region))
            for window in ("24h", "7d", "30d"):
                share = got.share.get(window) if got else 0.0
                line[window] = "-" if share is None else f"{share * 100:.1f}%"
            back = got.median_back_seconds if got else None
            line["median_back"] = "-" if back is None else f"{back / 3600:.1f}h"
    columns = [*STOCK_COLUMNS, *(("24h", "7d", "30d", "median_back") if with_stats else ())]
    print_table(table, columns)
    if len(rows) < total:
        click.echo(f"# {total - len(rows)} more; raise --limit or narrow the filters")


def refuse_unknown_region(loaded: LoadedConfig, region: str) -> None:
    """Exit 2 naming the known regions when ``region`` is not in the catalogue: an empty
    answer for a misspelt region would read as "nothing there". Silent while the catalogue has
    no regions yet (never scraped)."""
    from vultr_scraper_core.store.catalog import CatalogueStore

    async def known(redis: Redis) -> list[str]:
        return sorted(
            (await CatalogueStore(redis, loaded.config.redis.key_prefix).load()).catalogue.regions
        )

    regions = with_redis(loaded, known)
    if regions and region not in regions:
        fail(f"no such region {region!r}; known regions: {', '.join(regions)}", ExitStatus.USAGE)


# -- quarantine ---------------------------------------------------------------------------

_PREVIEW = 20


async def quarantine_report(redis: Redis, prefix: str) -> dict[str, Any]:
    """The pending snapshot, its reasons, what accepting it would change, and the held stock
    answers."""
    from vultr_scraper_worker.cli.held_stock import held_answers

    return {**await _catalogue_report(redis, prefix), "stock": await held_answers(redis, prefix)}


async def _catalogue_report(redis: Redis, prefix: str) -> dict[str, Any]:
    import asyncio

    import msgspec

    from vultr_scraper_core.store.catalog import CatalogueStore
    from vultr_scraper_jobs.diff import diff_catalogues, keep_missing

    store = CatalogueStore(redis, prefix)
    pending = await store.pending()
    current = await store.load()
    if pending is None:
        return {"quarantine": None, "current": current.catalogue.counts()}
    snapshot = pending.snapshot
    candidate = snapshot.catalogue
    if "os" not in snapshot.checked:
        candidate = msgspec.structs.replace(candidate, os=current.catalogue.os)
    merged = keep_missing(current.catalogue, candidate, snapshot.incomplete)
    events = await asyncio.to_thread(
        diff_catalogues, current.catalogue, merged, at=snapshot.fetched_at
    )
    effect: dict[str, int] = {}
    for event in events:
        effect[str(event.kind)] = effect.get(str(event.kind), 0) + 1
    return {
        "quarantine": pending.info,
        "current": current.catalogue.counts(),
        "incomplete": snapshot.incomplete,
        "accepting_would": effect,
        "preview": events[:_PREVIEW],
        "preview_more": max(0, len(events) - _PREVIEW),
    }


@click.group(
    "quarantine",
    invoke_without_command=True,
    short_help="Held-back catalogue snapshot and stock answers: show, accept, discard.",
)
@json_option
@click.pass_context
def quarantine(ctx: click.Context, as_json: bool) -> None:
    """Show the quarantined snapshot (held back by the plausibility gate) and the held stock
    answers (held back by the stock gate), and why.

    `quarantine accept` makes them current; accepting an incomplete snapshot still retires
    nothing. `quarantine discard` drops them. `--catalog` / `--stock` choose one of the two,
    `--region` the regions whose stock answer to accept or drop.
    """
    from vultr_scraper_worker.cli.held_stock import echo_held

    if ctx.invoked_subcommand is not None:
        return
    state: State = ctx.obj
    loaded = state.loaded()
    prefix = loaded.config.redis.key_prefix
    report = with_redis(loaded, lambda redis: quarantine_report(redis, prefix))
    if as_json:
        print_json(report)
        return
    if report["quarantine"] is None and not report["stock"]:
        click.echo("nothing is quarantined")
        return
    if report["quarantine"] is not None:
        _echo_catalogue_quarantine(report)
    if report["stock"]:
        echo_held(report["stock"])


def _echo_catalogue_quarantine(report: dict[str, Any]) -> None:
    from vultr_scraper_core.formats import format_time

    info = report["quarantine"]
    click.echo(f"fetched at:     {format_time(info.fetched_at)}")
    click.echo(f"quarantined at: {format_time(info.quarantined_at)}")
    click.echo(f"complete:       {'yes' if info.complete else 'no (accepting retires nothing)'}")
    click.echo("reasons:")
    for reason in info.reasons:
        click.echo(f"  - {reason}")
    counts = ", ".join(
        f"{name} {report['current'].get(name, 0)} -> {count}" for name, count in info.counts.items()
    )
    click.echo(f"counts:         {counts}")
    effect = ", ".join(
        f"{count} {kind}" for kind, count in sorted(report["accepting_would"].items())
    )
    click.echo(f"accepting would record: {effect or 'no change'}")
    if report["preview"]:
        print_table(_change_rows(report["preview"]), CHANGE_COLUMNS[2:])
        if report["preview_more"]:
            more = report["preview_more"]
            click.echo(f"... and {more} more (all of them: vultr-scraper quarantine --json)")
    click.echo("accept with: vultr-scraper quarantine accept")
    click.echo("or drop it:  vultr-scraper quarantine discard")


def _parts(catalog: bool, stock: bool, regions: tuple[str, ...]) -> tuple[bool, bool]:
    """Which of the two to act on: both unless one is named; ``--region`` means stock."""
    if not catalog and not stock:
        return not regions, True
    return catalog, stock


_CATALOG = click.option("--catalog", is_flag=True, help="Only the quarantined snapshot.")
_STOCK = click.option("--stock", is_flag=True, help="Only the held stock answers.")
_REGION = click.option(
    "--region",
    "regions",
    multiple=True,
    metavar="REGION",
    help="Only this region's held stock answer (repeatable).",
)


# Explicit short helps: click would cut the docstrings' first sentences to fit a line.
@quarantine.command(
    "accept",
    short_help="Make what is held back current (an operator's decision) and print the result.",
)
@_CATALOG
@_STOCK
@_REGION
@json_option
@click.pass_obj
def accept(
    state: State, catalog: bool, stock: bool, regions: tuple[str, ...], as_json: bool
) -> None:
    """Make what is held back current (an operator's decision) and print the result."""
    from vultr_scraper_jobs.catalog import accept_quarantine
    from vultr_scraper_worker.cli.held_stock import accept_stock, stock_summary

    loaded = state.loaded()
    with_catalog, with_stock = _parts(catalog, stock, regions)

    async def work(redis: Redis) -> dict[str, Any]:
        result: dict[str, Any] = {"status": "failed", "reason": "nothing is quarantined"}
        if with_catalog:
            result = await accept_quarantine(redis, loaded.config)
        if with_stock:
            accepted = await accept_stock(redis, loaded.config, regions or None)
            if accepted is not None and result.get("status") != "success":
                result = {"status": "success"}
            result["stock"] = accepted
        return result

    result = with_redis(loaded, work)
    if as_json:
        print_json(result)
    if result.get("status") != "success":
        fail(str(result.get("reason", "accept failed")), ExitStatus.FAILURE)
    if not as_json:
        if any(key in result for key in ("added", "events")):
            click.echo(f"quarantined snapshot accepted: {_accept_summary(result)}")
        if result.get("stock"):
            click.echo(f"held stock answers accepted: {stock_summary(result['stock'])}")


def _accept_summary(result: dict[str, Any]) -> str:
    counts = [
        f"{result[key]} {label}"
        for key, label in (("added", "added"), ("retired", "retired"), ("updated", "updated"))
        if isinstance(result.get(key), int)
    ]
    events = result.get("events")
    if isinstance(events, int):
        counts.append(f"{events} change event{'' if events == 1 else 's'}")
    return ", ".join(counts) or "done"


@quarantine.command(
    "discard",
    short_help="Drop what is held back without applying it (the current catalogue and stock stay).",
)
@_CATALOG
@_STOCK
@_REGION
@json_option
@click.pass_obj
def discard(
    state: State, catalog: bool, stock: bool, regions: tuple[str, ...], as_json: bool
) -> None:
    """Drop what is held back without applying it (the current catalogue and stock stay)."""
    from vultr_scraper_core.store.catalog import CatalogueStore
    from vultr_scraper_worker.cli.held_stock import discard_stock

    loaded = state.loaded()
    prefix = loaded.config.redis.key_prefix
    with_catalog, with_stock = _parts(catalog, stock, regions)

    async def work(redis: Redis) -> tuple[bool, list[str]]:
        dropped = with_catalog and await CatalogueStore(redis, prefix).discard_quarantine()
        held = await discard_stock(redis, prefix, regions or None) if with_stock else []
        return bool(dropped), held

    dropped, held = with_redis(loaded, work)
    if as_json:
        print_json({"discarded": dropped, "stock_discarded": held})
    # Like `accept`: nothing to act on is a failure (exit 1), so a script learns it did nothing.
    if not dropped and not held:
        fail("nothing is quarantined", ExitStatus.FAILURE)
    if as_json:
        return
    if dropped:
        click.echo("quarantined snapshot discarded")
    if held:
        click.echo(f"held stock answers discarded: {', '.join(held)}")


def register(cli: click.Group) -> None:
    for command in (plans, changes, availability, quarantine):
        cli.add_command(command)
