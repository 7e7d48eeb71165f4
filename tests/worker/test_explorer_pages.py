"""The explorer's pages (plan, plans, region, changes) on a real server over a real Redis."""

from __future__ import annotations

import functools
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from redis.asyncio import Redis

from tests.worker.api_harness import (
    PREFIX,
    add_events,
    cloud_plan,
    commit_catalogue,
    event,
    running_api,
)
from vultr_scraper_core.formats import format_time
from vultr_scraper_core.store.changes import ChangeFeed
from vultr_scraper_core.store.stock import (
    Interval,
    RegionCheck,
    StockState,
    StockStore,
    pair_key,
)

NOW = datetime.now(UTC).replace(microsecond=0)
D = timedelta(days=1)
H = timedelta(hours=1)
HOSTILE = "<img src=x onerror=alert(1)>"


async def seed(redis: Redis) -> None:
    """Two plans: vc2 at $5 (fra at a regional $6), repriced from $4 ten days ago; a GPU plan
    in fra only. vc2 was in fra's stock for 6 h a day ago and is in stock again for 2 h."""
    now = datetime.now(UTC)  # the pages measure from the real clock: seed from it too
    old = cloud_plan("vc2-1c-1gb", "4", locations=["fra", "ewr"])
    await commit_catalogue(redis, [old], at=now - 20 * D)
    plans = [
        cloud_plan(
            "vc2-1c-1gb",
            "5",
            locations=["fra", "ewr"],
            location_cost={"fra": {"monthly_cost": Decimal("6"), "hourly_cost": Decimal("0.009")}},
        ),
        cloud_plan(
            "vcg-a100-1c-6g-4vram",
            "90",
            locations=["fra"],
            type="vcg",
            gpu_type="NVIDIA_A100",
            gpu_vram_gb=4,
        ),
    ]
    await commit_catalogue(redis, plans, at=now - 10 * D)
    store = StockStore(redis, PREFIX)
    first = now - 20 * D
    intervals = {
        pair_key("vc2-1c-1gb", "fra"): [
            Interval(start=now - 30 * H, end=now - 24 * H),
            Interval(start=now - 2 * H),
        ],
        pair_key("vcg-a100-1c-6g-4vram", "fra"): [Interval(start=now - 3 * D, end=now - 2 * D)],
    }
    states = {
        pair_key("vc2-1c-1gb", "fra"): StockState(
            in_stock=True, since=now - 2 * H, first_seen=now - 30 * H
        ),
        pair_key("vcg-a100-1c-6g-4vram", "fra"): StockState(
            in_stock=False, since=now - 2 * D, first_seen=now - 3 * D, last_in_stock=now - 2 * D
        ),
    }
    checks = {r: RegionCheck(first_checked=first, last_checked=now) for r in ("fra", "ewr")}
    async with store.transaction() as tx:
        tx.stage(states=states, intervals=intervals, regions=checks, events=[])
        assert await tx.execute()
    await add_events(
        redis,
        [
            event(
                "price_changed",
                "vc2-1c-1gb",
                at=now - 10 * D,
                region="ewr",
                field="monthly_cost",
                old="4",
                new="5",
            ),
            event(
                "stock_changed",
                "vc2-1c-1gb",
                at=now - 2 * H,
                region="fra",
                field="in_stock",
                old=False,
                new=True,
            ),
            event("schema_drift", HOSTILE, at=now - H, region=HOSTILE, old=HOSTILE, new=HOSTILE),
        ],
    )


async def test_plan_page(redis_url: str, redis: Redis) -> None:
    await seed(redis)
    async with running_api(redis_url) as api:
        response, body = await api.text("/plans/vc2-1c-1gb")
        _, week = await api.text("/plans/vc2-1c-1gb?span=7d")
        await api.text("/plans/no-such-plan", status=404)
        await api.text("/plans/vc2-1c-1gb?span=1y", status=400)
    assert response.content_type == "text/html"
    for section in ("prices", "price-history", "stock", "reliability", "events"):
        assert f'<section id="{section}">' in body
    # The price in each region now: fra's regional price, ewr's base price.
    prices = body[body.index('<section id="prices">') : body.index('<section id="price-history">')]
    assert "$6.00" in prices and "$5.00" in prices and "regional" in prices
    # Price history: fra and ewr differ (regional price), so two lines and a table.
    history = body[body.index('<section id="price-history">') : body.index('<section id="stock">')]
    assert history.count("<svg") == 2  # monthly and hourly
    assert "<title>Monthly price history</title>" in history and "<desc>" in history
    assert "$4" in history  # the price before the change, as a table row
    assert ">ewr<" in history and ">fra<" in history
    # Reliability: in stock 2 of the last 24 h, 8 h of the last 7 and 20 (observed) days.
    reliability = body[
        body.index('<section id="reliability">') : body.index('<section id="events">')
    ]
    fra = reliability[reliability.index('data-label="Region"><div>fra') :]
    shares = re.findall(r'data-label="(?:In stock 24 h|7 d|30 d)"><div>([^<]+)<', fra)
    assert shares[:3] == ["8.3 %", f"{8 / (7 * 24) * 100:.1f} %", f"{8 / (20 * 24) * 100:.1f} %"]
    assert "in stock for 2.0 h" in fra
    assert "1 returns" in fra  # came back once, after 22 h out
    ewr = reliability[reliability.index('data-label="Region"><div>ewr') :]
    assert "never in stock" in ewr
    # Span links select the timeline; the 7-day view is marked current.
    assert '<a href="/plans/vc2-1c-1gb?span=7d" aria-current="page">7d</a>' in week
    assert "last 7d" in week
    assert 'href="/changes?subject=vc2-1c-1gb"' in body
    assert "<script" not in body


async def test_plans_browser(redis_url: str, redis: Redis) -> None:
    await seed(redis)
    async with running_api(redis_url) as api:
        _, everything = await api.text("/plans")
        # A submitted form sends blank fields: they mean "any".
        _, fra = await api.text("/plans?type=&region=fra&min_vcpu=&gpu=&in_stock=&sort=price")
        _, gpu = await api.text("/plans?view=gpu")
        _, stocked = await api.text("/plans?in_stock=true")
        _, paged = await api.text("/plans?size=25&page=9")
        _, desc = await api.text("/plans?sort=price&order=desc")
        await api.text("/plans?min_vcpu=lots", status=400)
    assert "3 rows" in everything
    assert "2 rows" in fra and 'value="fra"' in fra
    assert "1 rows" in gpu and "NVIDIA_A100" in gpu and "GPU memory" in gpu
    assert "vc2-1c-1gb" in stocked and "1 rows" in stocked
    assert "Page 1 of 1" in paged
    assert desc.index("vcg-a100") < desc.index("vc2-1c-1gb")
    assert everything.index("vc2-1c-1gb") < everything.index("vcg-a100")
    # Sortable headers are links that keep the filters.
    assert '<a href="/plans?region=fra&amp;sort=vcpu">vCPU</a>' in fra


async def test_region_page(redis_url: str, redis: Redis) -> None:
    await seed(redis)
    async with running_api(redis_url) as api:
        _, body = await api.text("/regions/fra")
        await api.text("/regions/nowhere", status=404)
    assert "Frankfurt" in body
    cheapest = body[body.index('<section id="cheapest">') : body.index('<section id="heatmap">')]
    assert "vc2-1c-1gb" in cheapest and "vcg-a100" not in cheapest  # out of stock now
    heat = body[body.index('<section id="heatmap">') : body.index('<section id="stock-changes">')]
    assert 'class="chart heat"' in heat and "<desc>" in heat
    assert heat.count("<rect") == 2 * 14  # two plans x fourteen days
    assert "2 plans over the last 14 days" in heat
    assert "stock_changed" not in body or "vc2-1c-1gb" in body


async def test_changes_page_filters_pages_and_escapes(redis_url: str, redis: Redis) -> None:
    await seed(redis)
    async with running_api(redis_url) as api:
        _, body = await api.text("/changes")
        _, one = await api.text("/changes?kind=price_changed&subject=")
        _, first = await api.text("/changes?size=50")
        await api.text("/changes?before=yesterday", status=400)
    assert HOSTILE not in body and "&lt;img src=x" in body
    rows = body[body.index("<tbody>") :]
    assert rows.index("schema_drift") < rows.index("price_changed")  # newest first
    listed = one[one.index("<tbody>") :]
    assert "price_changed" in listed and "stock_changed" not in listed
    assert "Next" not in first  # three events fit on one page


async def test_changes_cursor_paging(redis_url: str, redis: Redis) -> None:
    ids = await add_events(
        redis,
        [event("plan_added", f"p{n}", at=NOW - timedelta(minutes=60 - n)) for n in range(60)],
    )
    async with running_api(redis_url) as api:
        _, first = await api.text("/changes")
        found = re.search(r'href="(/changes\?before=[^"]+)">Next', first)
        assert found is not None
        _, second = await api.text(found.group(1).replace("&amp;", "&"))
    assert f"before={ids[10]}" in found.group(1)
    assert ">p59<" in first and ">p10<" in first and ">p9<" not in first
    assert ">p9<" in second and ">p0<" in second and ">p10<" not in second


async def test_changes_page_since_and_until(redis_url: str, redis: Redis) -> None:
    day = timedelta(days=1)
    for n, at in enumerate((NOW - 3 * day, NOW - 2 * day, NOW - day)):
        feed = ChangeFeed(redis, "vs", id_clock=functools.partial(int, at.timestamp() * 1000))
        await feed.append([event("plan_added", f"d{n}", at=at)])
    since = format_time(NOW - 2 * day - timedelta(minutes=1))
    until = format_time(NOW - day - timedelta(minutes=1))
    async with running_api(redis_url) as api:
        _, both = await api.text(f"/changes?since={since}&until={until}")
        _, recent = await api.text("/changes?since=36h")
        _, none = await api.text(f"/changes?until={format_time(NOW - 4 * day)}")
        await api.text("/changes?since=last+tuesday", status=400)
    rows = both[both.index("<tbody>") :]
    assert ">d1<" in rows and ">d0<" not in rows and ">d2<" not in rows
    assert f'name="since" value="{since}"' in both  # the form keeps the filter
    listed = recent[recent.index("<tbody>") :]
    assert ">d2<" in listed and ">d1<" not in listed
    assert "No change matches these filters." in none


def _timeless(html: str) -> str:
    """``html`` without the ages ("31 s ago") and render times, which move between requests."""
    html = re.sub(r'</time> <span class="muted">\([^)]*\)</span>', "</time>", html)
    return re.sub(r"page rendered [0-9: -]+UTC", "", html)


def _section(body: str, start: str, end: str | None = None) -> str:
    rest = body[body.index(start) :]
    return rest[: rest.index(end)] if end else rest


async def test_a_plans_events_are_the_same_read_by_its_index_or_by_a_scan(
    redis_url: str, redis: Redis
) -> None:
    """The plan page, the changes page and the API filtered to a plan read the change feed's
    index by subject; a store written before the index existed is scanned. Both show the
    same events."""
    await seed(redis)
    # Events about other subjects between the plan's, more than one page of them.
    await add_events(
        redis, [event("plan_added", f"p{n}", at=NOW - timedelta(minutes=n)) for n in range(120)]
    )
    await add_events(
        redis,
        [
            event("stock_changed", "vc2-1c-1gb", at=NOW, region="ewr", old=False, new=True),
        ],
    )
    paths = (
        "/plans/vc2-1c-1gb",
        "/changes?subject=vc2-1c-1gb&size=50",
        "/changes?subject=vc2-1c-1gb&kind=price_changed",
    )
    api_path = "/api/v1/changes?subject=vc2-1c-1gb&limit=2"

    async def shown() -> list[object]:
        async with running_api(redis_url) as api:
            plan, changes, prices = [(await api.text(path))[1] for path in paths]
            first = await api.json("GET", api_path)
            rest = await api.json("GET", f"{api_path}&after={first['cursor']}")
        return [
            _timeless(_section(plan, '<section id="events">')),
            _timeless(_section(changes, "<tbody>", "</tbody>")),
            _timeless(_section(prices, "<tbody>", "</tbody>")),
            first["events"],
            rest["events"],
        ]

    feed = ChangeFeed(redis, PREFIX)
    assert await feed.index.built()
    indexed = await shown()
    plan_events, listed, prices, first, rest = indexed
    assert isinstance(plan_events, str) and isinstance(listed, str) and isinstance(prices, str)
    # The seeded price and stock changes and the new stock change, newest first; nothing
    # about another subject.
    assert listed.count("<tr") == 3 and ">p1<" not in listed
    assert listed.index("ewr") < listed.index("price_changed")
    assert prices.count("<tr") == 1 and "stock_changed" not in prices
    assert [e["subject"] for e in [*first, *rest]] == ["vc2-1c-1gb"] * 3  # type: ignore[misc]
    # The same store as if written before the index: no marker, no index keys.
    subjects = [s.decode() for s in await redis.smembers(feed.index.subjects)]  # type: ignore[misc]
    await redis.delete(feed.index.marker, feed.index.subjects, *map(feed.index.key, subjects))
    assert await shown() == indexed
    assert await feed.index.build() is not None
    assert await shown() == indexed
