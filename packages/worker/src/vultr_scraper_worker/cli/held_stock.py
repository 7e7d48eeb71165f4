"""Held stock answers in ``vultr-scraper quarantine``: what the stock gate holds back, region by
region (``vultr_scraper_jobs.stock_gate``), shown next to the catalogue's quarantine and
accepted or discarded with it. Loaded only by the ``quarantine`` commands."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING, Any

import click

from vultr_scraper_worker.cli.common import print_table

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from vultr_scraper_core.config import Config
    from vultr_scraper_core.store.stock import HeldStock

HELD_COLUMNS = ["region", "held_since", "checks", "in_stock", "confirm_at"]


async def held_answers(redis: Redis, prefix: str) -> list[HeldStock]:
    from vultr_scraper_core.store.stock import StockStore

    held = await StockStore(redis, prefix).held()
    return [held[region] for region in sorted(held)]


def printable(text: str) -> str:
    """Upstream text for a terminal: control characters shown escaped, never interpreted."""
    return "".join(
        char if char.isprintable() else char.encode("unicode_escape").decode() for char in text
    )


def held_rows(held: Sequence[HeldStock]) -> list[dict[str, Any]]:
    from vultr_scraper_core.formats import format_time

    return [
        {
            "region": printable(answer.region),
            "held_since": format_time(answer.observed_at),
            "checks": answer.checks,
            "in_stock": (
                f"{answer.in_stock_before} -> {len(answer.listed)}"
                if answer.listed is not None
                else "(no usable answer)"
            ),
            "confirm_at": format_time(answer.confirm_at) if answer.confirm_at else None,
        }
        for answer in held
    ]


def echo_held(held: Sequence[HeldStock]) -> None:
    """The held answers as a table, then each reason on its own line."""
    click.echo(f"held stock answers: {len(held)} region{'' if len(held) == 1 else 's'}")
    print_table(held_rows(held), HELD_COLUMNS)
    click.echo("reasons:")
    for answer in held:
        for reason in answer.reasons:
            click.echo(f"  - {printable(reason)}")
    click.echo(
        "a mass change is applied when a later check sees the same (after confirm_at);\n"
        "accept now with: vultr-scraper quarantine accept --stock [--region R]\n"
        "or drop it:      vultr-scraper quarantine discard --stock [--region R]"
    )


async def accept_stock(
    redis: Redis, config: Config, regions: Collection[str] | None
) -> dict[str, Any] | None:
    """Apply the held answers (of ``regions``; all when None); None when none is held."""
    from vultr_scraper_core.store.stock import StockStore
    from vultr_scraper_jobs.availability import accept_held_stock

    if not await StockStore(redis, config.redis.key_prefix).held():
        return None
    result = await accept_held_stock(redis, config, regions)
    return result if result.get("status") == "success" else None


def stock_summary(result: dict[str, Any]) -> str:
    parts = [f"{', '.join(result['accepted']) or 'no region'} applied"]
    if result.get("dropped"):
        parts.append(f"{', '.join(result['dropped'])} dropped (nothing usable)")
    events = result.get("events", 0)
    parts.append(f"{events} change event{'' if events == 1 else 's'}")
    return "; ".join(parts)


async def discard_stock(redis: Redis, prefix: str, regions: Collection[str] | None) -> list[str]:
    from vultr_scraper_core.store.stock import StockStore

    return sorted(await StockStore(redis, prefix).discard_held(regions))
