"""Saved searches on stock reliability: ``min_in_stock_share_24h`` / ``_7d`` / ``_30d`` match
events by the share of the window a pair was in stock, from intervals written through the
stock store's own transaction."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from vultr_scraper_core.config import AlertConfig, ConfigError, load_config
from vultr_scraper_core.models import Catalogue, CloudPlan, Region
from vultr_scraper_core.store.catalog import CatalogueStore
from vultr_scraper_core.store.changes import ChangeEvent, EventKind
from vultr_scraper_core.store.codec import encode
from vultr_scraper_core.store.stock import Interval, RegionCheck, StockState, StockStore
from vultr_scraper_jobs.alerts import PlanAttributes, matches

NOW = datetime(2026, 12, 1, tzinfo=UTC)
DAY = timedelta(days=1)


async def _world(redis: Redis) -> None:
    """p1 sold in fra, ewr and sgp. fra: in stock for 27 of the last 30 days (out for the last
    3), observed for 40 days; ewr: never in stock, observed for 40 days; sgp: never checked."""
    plan = CloudPlan(
        id="p1",
        vcpu_count=1,
        ram=1024,
        monthly_cost=Decimal(5),
        hourly_cost=Decimal("0.007"),
        type="vc2",
        locations=["fra", "ewr", "sgp"],
    )
    catalogue = Catalogue(
        plans={"p1": plan},
        regions={name: Region(id=name, city=name, country="DE") for name in ("fra", "ewr", "sgp")},
    )
    store = CatalogueStore(redis, "vs")
    async with store.transaction() as tx:
        tx.commit(catalogue, [], fetched_at=NOW - 40 * DAY, committed_at=NOW - 40 * DAY, shapes={})
        assert await tx.execute()
    checked = RegionCheck(first_checked=NOW - 40 * DAY, last_checked=NOW)
    async with StockStore(redis, "vs").transaction() as stock:
        stock.stage(
            states={
                "p1@fra": StockState(in_stock=False, since=NOW - 3 * DAY, first_seen=NOW - 30 * DAY)
            },
            intervals={"p1@fra": [Interval(start=NOW - 30 * DAY, end=NOW - 3 * DAY)]},
            regions={"fra": checked, "ewr": checked},
            events=[],
        )
        assert await stock.execute()


def _event(region: str | None, kind: EventKind = EventKind.STOCK_CHANGED) -> ChangeEvent:
    return ChangeEvent(kind=kind, at=NOW, subject="p1", region=region, old=False, new=True)


def _alert(**fields: Any) -> AlertConfig:
    return AlertConfig(name="a", kinds=["stock_changed", "spec_changed"], **fields)


async def test_alerts_match_on_the_share_in_stock(redis: Redis) -> None:
    await _world(redis)

    async def hit(alert: AlertConfig, event: ChangeEvent) -> bool:
        return await matches(alert, event, PlanAttributes(redis, "vs", now=NOW))

    # fra: 27 of 30 days in stock = 0.9; 0 of the last 24 h and 4 of the last 7 days.
    assert await hit(_alert(min_in_stock_share_30d=0.9), _event("fra"))
    assert not await hit(_alert(min_in_stock_share_30d=0.91), _event("fra"))
    assert await hit(_alert(min_in_stock_share_7d=4 / 7 - 1e-9), _event("fra"))
    assert not await hit(_alert(min_in_stock_share_7d=4 / 7 + 1e-6), _event("fra"))
    assert not await hit(_alert(min_in_stock_share_24h=0.01), _event("fra"))
    assert await hit(_alert(min_in_stock_share_24h=0), _event("fra"))
    # Every condition set must hold.
    both = _alert(min_in_stock_share_30d=0.5, min_in_stock_share_24h=0.5)
    assert not await hit(both, _event("fra"))
    # ewr was observed and never in stock: share 0; sgp was never checked: no share at all.
    assert await hit(_alert(min_in_stock_share_30d=0), _event("ewr"))
    assert not await hit(_alert(min_in_stock_share_30d=0.1), _event("ewr"))
    assert not await hit(_alert(min_in_stock_share_30d=0), _event("sgp"))
    # An event about the whole plan matches when a row in ``regions`` is reliable enough.
    spec = _event(None, EventKind.SPEC_CHANGED)
    assert await hit(_alert(min_in_stock_share_30d=0.8), spec)
    assert not await hit(_alert(min_in_stock_share_30d=0.8, regions=["ewr", "sgp"]), spec)
    # Without a share condition the alert matches as before.
    assert await hit(_alert(), _event("sgp"))


async def test_a_share_counts_only_the_observed_part(redis: Redis) -> None:
    await _world(redis)
    # fra first checked 10 days ago: of those 10 observed days it was in stock for 7.
    checked = RegionCheck(first_checked=NOW - 10 * DAY, last_checked=NOW)
    await redis.hset("vs:stock:regions", "fra", encode(checked).decode())  # type: ignore[misc]
    plans = PlanAttributes(redis, "vs", now=NOW)
    assert await plans.share("p1", "fra", "30d") == pytest.approx(7 / 10)


def test_a_share_outside_0_to_1_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    for bad in ("1.5", "-0.1"):
        path.write_text(
            f'[[alerts]]\nname = "a"\nkinds = ["back_in_stock"]\nmin_in_stock_share_30d = {bad}\n'
        )
        with pytest.raises(ConfigError, match=r"alerts\[0\]\.min_in_stock_share_30d"):
            load_config(path, environ={})
    path.write_text(
        '[[alerts]]\nname = "a"\nkinds = ["back_in_stock"]\nmin_in_stock_share_7d = 0.75\n'
    )
    (alert,) = load_config(path, environ={}).config.alerts
    assert alert.min_in_stock_share_7d == 0.75
