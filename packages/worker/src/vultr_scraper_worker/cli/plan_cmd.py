"""``vultr-scraper plan ID``: one plan as the plan page shows it (``history.plan_view``): specs,
price per region, a price and a stock sparkline, stock statistics per region; ``--json``
prints the same document as ``GET /api/v1/plans/{id}``."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import click

from vultr_scraper_worker.cli.common import State, fail, json_option, print_json, print_table
from vultr_scraper_worker.exit_status import ExitStatus

if TYPE_CHECKING:
    from datetime import datetime

    from vultr_scraper_core.history.plan_view import PlanHistory
    from vultr_scraper_core.history.query import History

BARS = "▁▂▃▄▅▆▇█"
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
SPANS = ("24h", "7d", "30d", "90d")


def printable(text: object) -> str:
    """External text for a terminal: control characters (escape sequences) shown as ``?``."""
    return _CONTROL.sub("?", str(text))


def sparkline(values: Sequence[float | None]) -> str:
    """``▁▃█`` for values (scaled between their minimum and maximum); a blank for None."""
    known = [v for v in values if v is not None]
    if not known:
        return " " * len(values)
    low, high = min(known), max(known)
    span = (high - low) or 1.0
    return "".join(
        " " if v is None else BARS[min(len(BARS) - 1, int((v - low) / span * len(BARS)))]
        for v in values
    )


def share_bars(values: Sequence[float | None]) -> str:
    """Shares 0..1 on a fixed scale (0 = ▁, 1 = █), so two regions compare."""
    return "".join(
        " " if v is None else BARS[min(len(BARS) - 1, int(v * len(BARS)))] for v in values
    )


def daily_shares(found: PlanHistory, region: str, days: int) -> list[float | None]:
    from datetime import timedelta

    from vultr_scraper_core.history import stats

    listed = [row for row in found.stock if row.region == region]
    start = found.until - timedelta(days=days)
    return [
        stats.in_stock_share(listed, start + timedelta(days=n), start + timedelta(days=n + 1))
        for n in range(days)
    ]


def price_steps(found: PlanHistory, region: str, points: int = 30) -> list[float | None]:
    """The monthly price in ``region`` at ``points`` equally spaced times of the history."""
    from decimal import Decimal

    rows = [p for p in found.prices if p.region == region and p.price_kind == "monthly_cost"]
    step = (found.until - found.since) / points
    values: list[float | None] = []
    for n in range(points):
        moment: datetime = found.since + step * (n + 1)
        held = next(
            (
                p
                for p in rows
                if p.valid_from <= moment and (p.valid_to is None or moment < p.valid_to)
            ),
            None,
        )
        values.append(float(Decimal(held.price)) if held else None)
    return values


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 3600:
        return f"{seconds / 60:.0f}m"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f}h"
    return f"{seconds / 86400:.1f}d"


def render(found: PlanHistory) -> None:
    from vultr_scraper_core.formats import format_time

    specs = _specs(found)
    click.echo(f"{printable(found.plan)}  ({found.kind}, type {printable(found.plan_type or '-')})")
    click.echo("  " + ", ".join(f"{k} {printable(v)}" for k, v in specs.items()))
    if found.twin:
        click.echo(f"  regional twin: {printable(found.twin)}")
    click.echo("")
    rows: list[dict[str, Any]] = []
    for row in found.regions:
        region = row.region or "-"
        rows.append(
            {
                "region": printable(region),
                "monthly": row.monthly_cost,
                "hourly": row.hourly_cost,
                "price": "regional" if row.price_source == "location_cost" else "base",
                "in_stock": row.in_stock,
                "price_90d": sparkline(price_steps(found, region)) if row.region else "",
            }
        )
    print_table(rows, ["region", "monthly", "hourly", "price", "in_stock", "price_90d"])
    click.echo("")
    stat_rows = [
        {
            "region": printable(item.region),
            "24h": _pct(item.stats.share.get("24h")),
            "7d": _pct(item.stats.share.get("7d")),
            "30d": _pct(item.stats.share.get("30d")),
            "streak": ("in " if item.stats.in_stock else "out ")
            + _duration(item.stats.streak_seconds)
            if item.stats.streak_since
            else "never in stock",
            "longest_out": _duration(item.stats.longest_out_seconds),
            "median_back": _duration(item.stats.median_back_seconds),
            "last_in_stock": format_time(item.stats.last_in_stock),
            "stock_30d": share_bars(daily_shares(found, item.region, 30)),
        }
        for item in found.stats
    ]
    print_table(
        stat_rows,
        [
            "region",
            "24h",
            "7d",
            "30d",
            "streak",
            "longest_out",
            "median_back",
            "last_in_stock",
            "stock_30d",
        ],
    )


def _specs(found: PlanHistory) -> dict[str, Any]:
    import msgspec

    return {k: v for k, v in msgspec.structs.asdict(found.specs).items() if v is not None}


@click.command("plan", short_help="One plan: prices per region, history, stock statistics.")
@click.argument("plan_id")
@click.option(
    "--span",
    type=click.Choice(SPANS),
    default="90d",
    show_default=True,
    help="How much history.",
)
@json_option
@click.pass_obj
def plan(state: State, plan_id: str, span: str, as_json: bool) -> None:
    """One plan: specs, the price in every region now, its price history (a sparkline per
    region), and stock statistics per region (share of time in stock over 24 h, 7 d and 30 d,
    the current streak, the longest time out, the median time until back, a sparkline of the
    last 30 days). ``--json`` prints the API's ``/api/v1/plans/{id}`` document."""
    from datetime import UTC, datetime

    from vultr_scraper_core.history import stats
    from vultr_scraper_core.history.plan_view import PlanNotFound, plan_history
    from vultr_scraper_worker.cli.catalog_cmd import read_history

    async def read(history: History) -> PlanHistory | None:
        try:
            return await plan_history(history, plan_id, datetime.now(UTC), stats.WINDOWS[span])
        except PlanNotFound:
            return None

    found = read_history(state.loaded(), read)
    if found is None:
        fail(f"no plan '{printable(plan_id)}' in the current catalogue", ExitStatus.FAILURE)
    if as_json:
        print_json(found)
        return
    render(found)
