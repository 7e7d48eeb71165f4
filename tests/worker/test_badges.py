"""``/badge/...``: SVG badges from a running API on real Redis, parsed as XML and read back."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta

import pytest
from redis.asyncio import Redis

from tests.worker.api_harness import (
    REGIONS,
    TOKEN,
    Api,
    cloud_plan,
    commit_catalogue,
    quarantine,
    running_api,
    set_stock,
)
from vultr_scraper_core.config import EndpointConfig, HealthConfig
from vultr_scraper_core.maintenance import Mute
from vultr_scraper_core.models import Region
from vultr_scraper_core.store.changes import ChangeFeed
from vultr_scraper_core.store.health import HealthStore, ProbeResult
from vultr_scraper_core.store.mutes import MuteStore
from vultr_scraper_worker.api.routes_badges import percent
from vultr_scraper_worker.api.svg_badge import LABEL_COLOUR, Colour, clean, render_badge

SVG = "{http://www.w3.org/2000/svg}"
PREFIX = "vs"
STRANGE = 'db <primary> & "eu"'  # a name with every character XML must escape


def read_badge(body: bytes) -> tuple[str, str, str]:
    """(label, value, title) as a viewer shows them; fails unless the SVG is well-formed."""
    root = ET.fromstring(body)
    assert root.tag == f"{SVG}svg" and root.get("role") == "img"
    title = root.findtext(f"{SVG}title") or ""
    assert root.get("aria-label") == title
    label = root.find(f".//{SVG}text[@class='label']")
    value = root.find(f".//{SVG}text[@class='value']")
    assert label is not None and value is not None
    return label.text or "", value.text or "", title


def value_colour(body: bytes) -> str:
    rects = ET.fromstring(body).findall(f".//{SVG}g/{SVG}rect")
    assert rects[0].get("fill") == LABEL_COLOUR
    return rects[1].get("fill") or ""


async def get_badge(api: Api, path: str, *, status: int = 200, **kwargs: object) -> bytes:
    async with api.request("GET", path, **kwargs) as response:  # type: ignore[arg-type]
        body: bytes = await response.read()
        assert response.status == status, (path, response.status, body)
        assert response.content_type == "image/svg+xml"
        return body


async def probe(redis: Redis, name: str, results: list[bool], *, now: datetime) -> None:
    store, feed = HealthStore(redis, PREFIX), ChangeFeed(redis, PREFIX)
    for index, ok in enumerate(results):
        result = ProbeResult(
            at=now - timedelta(minutes=len(results) - index),
            ok=ok,
            status=200 if ok else 503,
            latency_ms=20.0,
        )
        await store.record(
            name, "http://x", result, failure_threshold=1, success_threshold=1, feed=feed
        )


def endpoints(*names: str) -> HealthConfig:
    return HealthConfig(
        check_vultr_api=False,
        endpoints=[EndpointConfig(name=name, url="http://127.0.0.1:9/") for name in names],
    )


# -- the image itself -------------------------------------------------------------------------


def _luminance(colour: str) -> float:
    def channel(value: int) -> float:
        c = value / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    red, green, blue = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
    return 0.2126 * channel(red) + 0.7152 * channel(green) + 0.0722 * channel(blue)


@pytest.mark.parametrize("colour", [LABEL_COLOUR, *Colour])
def test_white_text_is_readable_on_every_colour(colour: str) -> None:
    """WCAG contrast of white text on each background: at least 4.5:1 (small text)."""
    assert (1.05) / (_luminance(colour) + 0.05) >= 4.5


def test_text_is_escaped_cleaned_and_shortened() -> None:
    body = render_badge(STRANGE, "up\x1b]0;owned\x07 · 99%", Colour.GOOD)
    assert b"<primary>" not in body and b"\x1b" not in body
    label, value, title = read_badge(body)
    assert label == STRANGE
    assert value == "up\N{REPLACEMENT CHARACTER}]0;owned\N{REPLACEMENT CHARACTER} · 99%"
    assert title == f"{label}: {value}"
    long = clean("x" * 200)
    assert len(long) == 48 and long.endswith("\N{HORIZONTAL ELLIPSIS}")


def test_width_grows_with_the_text() -> None:
    short = ET.fromstring(render_badge("a", "up", Colour.GOOD))
    wide = ET.fromstring(render_badge("a", "in stock in 12 regions", Colour.GOOD))
    assert int(wide.get("width") or 0) > int(short.get("width") or 0) + 60
    assert short.get("height") == "20"


def test_percent_never_rounds_up_to_a_full_hundred() -> None:
    assert (percent(1.0), percent(0.99996), percent(0.5), percent(0.0)) == (
        "100%", "99.99%", "50.00%", "0.00%",
    )  # fmt: skip


# -- served -----------------------------------------------------------------------------------


async def test_catalog_badge_fresh_stale_quarantined(redis_url: str, redis: Redis) -> None:
    async with running_api(redis_url, public_badges=True) as api:
        label, value, _ = read_badge(await get_badge(api, "/badge/catalog.svg"))
        assert (label, value) == ("catalogue", "stale")  # never scraped

        now = datetime.now(UTC)
        await commit_catalogue(redis, [cloud_plan("vc2-1c-1gb", "5", locations=["fra"])], at=now)
        body = await get_badge(api, "/badge/catalog.svg")
        assert read_badge(body)[1] == "fresh" and value_colour(body) == Colour.GOOD

        await quarantine(redis, at=now, reasons=["count down 50%"])
        body = await get_badge(api, "/badge/catalog.svg")
        assert read_badge(body)[1] == "quarantined" and value_colour(body) == Colour.BAD


async def test_catalog_badge_stale_after_max_age(redis_url: str, redis: Redis) -> None:
    old = datetime.now(UTC) - timedelta(hours=3)
    await commit_catalogue(redis, [cloud_plan("vc2-1c-1gb", "5", locations=["fra"])], at=old)
    async with running_api(redis_url, public_badges=True, catalog_max_age=3600) as api:
        body = await get_badge(api, "/badge/catalog.svg")
    assert read_badge(body)[1] == "stale" and value_colour(body) == Colour.WARN


async def test_endpoint_badge_state_and_uptime_windows(redis_url: str, redis: Redis) -> None:
    now = datetime.now(UTC)
    await probe(redis, "api", [True, True, True, False], now=now)
    await probe(redis, STRANGE, [False, True], now=now)
    health = endpoints("api", STRANGE, "quiet")
    async with running_api(redis_url, public_badges=True, health=health) as api:
        body = await get_badge(api, "/badge/endpoint/api.svg")
        assert read_badge(body)[:2] == ("api", "down · 75.00% 24h")
        assert value_colour(body) == Colour.BAD
        body = await get_badge(api, "/badge/endpoint/api.svg?window=30d")
        assert read_badge(body)[1] == "down · 75.00% 30d"

        quoted = "db%20%3Cprimary%3E%20%26%20%22eu%22"
        body = await get_badge(api, f"/badge/endpoint/{quoted}.svg?window=7d")
        assert read_badge(body)[:2] == (STRANGE, "up · 50.00% 7d")
        assert value_colour(body) == Colour.GOOD

        body = await get_badge(api, "/badge/endpoint/quiet.svg")
        assert read_badge(body)[1] == "unknown · no data"

        body = await get_badge(api, "/badge/endpoint/nope.svg", status=404)
        assert read_badge(body)[:2] == ("nope", "not found")
        async with api.request("GET", "/badge/endpoint/api.svg?window=1y") as response:
            assert response.status == 400


async def test_endpoint_badge_shows_maintenance(redis_url: str, redis: Redis) -> None:
    now = datetime.now(UTC)
    await probe(redis, "api", [False], now=now)
    mute = Mute(target="api", until=now + timedelta(hours=1), created_at=now, reason="upgrade")
    await MuteStore(redis, PREFIX).set(mute)
    async with running_api(redis_url, public_badges=True, health=endpoints("api")) as api:
        body = await get_badge(api, "/badge/endpoint/api.svg")
    assert read_badge(body)[1] == "maintenance · 0.00% 24h"
    assert value_colour(body) == Colour.INFO


async def test_plan_badge_regions_in_stock_and_price_from(redis_url: str, redis: Redis) -> None:
    now = datetime.now(UTC)
    plans = [
        cloud_plan("vc2-1c-1gb", "5", locations=["fra", "ewr"]),
        cloud_plan("vcg-a100-1c", "90", locations=["ewr"], type="vcg"),
        cloud_plan("vhf-1c-1gb", "6", locations=["sgp"]),  # sgp's stock never checked
    ]
    regions = {**REGIONS, "sgp": Region(id="sgp", city="Singapore", country="SG")}
    await commit_catalogue(redis, plans, at=now, regions=regions)
    await set_stock(
        redis,
        {
            ("vc2-1c-1gb", "fra"): True,
            ("vc2-1c-1gb", "ewr"): True,
            ("vcg-a100-1c", "ewr"): False,
        },
        at=now,
    )
    async with running_api(redis_url, public_badges=True) as api:
        body = await get_badge(api, "/badge/plan/vc2-1c-1gb.svg")
        assert read_badge(body)[:2] == ("vc2-1c-1gb", "in stock in 2 regions · from $5.00/mo")
        assert value_colour(body) == Colour.GOOD
        body = await get_badge(api, "/badge/plan/vcg-a100-1c.svg")
        assert read_badge(body)[1] == "out of stock · from $90.00/mo"
        assert value_colour(body) == Colour.BAD
        body = await get_badge(api, "/badge/plan/vhf-1c-1gb.svg")
        assert read_badge(body)[1] == "stock unknown · from $6.00/mo"
        body = await get_badge(api, "/badge/plan/vc2-99c.svg", status=404)
        assert read_badge(body)[1] == "not found"


async def test_badges_are_cacheable_with_etag(redis_url: str, redis: Redis) -> None:
    now = datetime.now(UTC)
    await commit_catalogue(redis, [cloud_plan("vc2-1c-1gb", "5", locations=["fra"])], at=now)
    async with running_api(redis_url, public_badges=True, badge_max_age=120) as api:
        async with api.request("GET", "/badge/catalog.svg") as response:
            assert response.status == 200
            etag = response.headers["ETag"]
            assert response.headers["Cache-Control"] == "public, max-age=120"
        async with api.request("GET", "/badge/catalog.svg", headers={"If-None-Match": etag}) as r:
            assert r.status == 304 and await r.read() == b""
            assert r.headers["ETag"] == etag
        weak = {"If-None-Match": f'"other", W/{etag}'}
        async with api.request("GET", "/badge/catalog.svg", headers=weak) as response:
            assert response.status == 304
        await quarantine(redis, at=now, reasons=["count down"])
        async with api.request("GET", "/badge/catalog.svg", headers={"If-None-Match": etag}) as r:
            assert r.status == 200 and r.headers["ETag"] != etag
            assert read_badge(await r.read())[1] == "quarantined"


async def test_badges_need_the_token_unless_public(redis_url: str) -> None:
    async with running_api(redis_url) as api:
        async with api.request("GET", "/badge/catalog.svg") as response:
            assert response.status == 401
        body = await get_badge(api, "/badge/catalog.svg", token=TOKEN)
        assert read_badge(body)[0] == "catalogue"
        async with api.request("GET", "/badge/catalog.svg", token=TOKEN) as response:
            assert response.headers["Cache-Control"].startswith("private, max-age=")
            assert "Authorization" in response.headers["Vary"]
        document = await api.json("GET", "/api/v1/openapi.json")
        assert document["paths"]["/badge/catalog.svg"]["get"]["security"]
    async with running_api(redis_url, token=None) as api:
        async with api.request("GET", "/badge/catalog.svg") as response:
            assert response.status == 403
            assert "public_badges" in (await response.json())["error"]
    # Public badges stay public even when every other read needs the token.
    async with running_api(redis_url, public_badges=True, protect_reads=True) as api:
        await get_badge(api, "/badge/catalog.svg")
        async with api.request("GET", "/api/v1/health") as response:
            assert response.status == 401
        document = await api.json("GET", "/api/v1/openapi.json", token=TOKEN)
        assert document["paths"]["/badge/catalog.svg"]["get"]["security"] == []
