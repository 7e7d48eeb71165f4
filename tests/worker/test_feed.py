"""``/feed.atom``: a valid Atom document of the change feed, newest first, filterable by kind."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta

from redis.asyncio import Redis

from tests.worker.api_harness import Api, add_events, event, running_api
from vultr_scraper_worker.api.feed import ATOM

NS = {"a": ATOM}
NOW = datetime.now(UTC).replace(microsecond=0)


async def fetch(api: Api, path: str = "/feed.atom") -> ET.Element:
    async with api.request("GET", path) as response:
        assert response.status == 200
        assert response.content_type == "application/atom+xml"
        body = await response.read()
    assert body.startswith(b"<?xml version='1.0' encoding='utf-8'?>")
    return ET.fromstring(body)


def entries(feed: ET.Element) -> list[ET.Element]:
    return feed.findall("a:entry", NS)


def text(element: ET.Element, path: str) -> str:
    found = element.find(path, NS)
    assert found is not None and found.text is not None, path
    return found.text


async def test_empty_feed_is_valid_atom(redis_url: str) -> None:
    async with running_api(redis_url) as api:
        feed = await fetch(api)
    assert feed.tag == f"{{{ATOM}}}feed"
    assert text(feed, "a:id").startswith("urn:uuid:")
    assert text(feed, "a:title")
    assert datetime.fromisoformat(text(feed, "a:updated"))
    assert entries(feed) == []
    links = {link.get("rel"): link.get("href") for link in feed.findall("a:link", NS)}
    assert links["self"] == f"{api.url}/feed.atom"
    assert links["alternate"] == f"{api.url}/"


async def test_entries_newest_first_with_readable_titles(redis_url: str, redis: Redis) -> None:
    ids = await add_events(
        redis,
        [
            event("plan_added", "vc2-1c-1gb", at=NOW - timedelta(hours=2)),
            event(
                "price_changed",
                "vc2-1c-1gb",
                at=NOW - timedelta(hours=1),
                region="fra",
                field="monthly_cost",
                old="5",
                new="6",
            ),
            event(
                "endpoint_down",
                "status-page",
                at=NOW,
                old="up",
                new="down",
                detail={"error": "HTTP 503"},
            ),
        ],
    )
    async with running_api(redis_url) as api:
        feed = await fetch(api)
        again = await fetch(api)
    titles = [text(entry, "a:title") for entry in entries(feed)]
    assert titles == [
        "endpoint status-page is DOWN: HTTP 503",
        "price of vc2-1c-1gb in fra: 5.00 -> 6.00 USD/month (+20.0%)",
        "new plan vc2-1c-1gb",
    ]
    newest = entries(feed)[0]
    assert datetime.fromisoformat(text(feed, "a:updated")) == NOW
    assert datetime.fromisoformat(text(newest, "a:updated")) == NOW
    category = newest.find("a:category", NS)
    assert category is not None and category.get("term") == "endpoint_down"
    assert f"event id: {ids[2]}" in text(newest, "a:content")
    # Entry ids are stable between requests (feed readers must not show an event twice).
    assert [text(e, "a:id") for e in entries(feed)] == [text(e, "a:id") for e in entries(again)]
    assert len({text(e, "a:id") for e in entries(feed)}) == 3


async def test_entry_links_point_at_the_event_in_the_api(redis_url: str, redis: Redis) -> None:
    ids = await add_events(redis, [event("plan_added", f"p{n}", at=NOW) for n in range(3)])
    async with running_api(redis_url) as api:
        feed = await fetch(api)
        for entry, event_id in zip(entries(feed), reversed(ids), strict=True):
            link = entry.find("a:link", NS)
            assert link is not None
            href = link.get("href") or ""
            assert href.startswith(api.url + "/api/v1/changes?")
            document = await api.json("GET", href.removeprefix(api.url))
            assert [item["id"] for item in document["events"]] == [event_id]


async def test_kind_filter_and_limit(redis_url: str, redis: Redis) -> None:
    await add_events(
        redis,
        [event("plan_added", f"p{n}", at=NOW) for n in range(5)]
        + [event("stock_changed", "p1", at=NOW, region="fra", old=False, new=True)],
    )
    async with running_api(redis_url) as api:
        stock = await fetch(api, "/feed.atom?kind=stock_changed")
        both = await fetch(api, "/feed.atom?kind=stock_changed&kind=plan_added&limit=2")
        reordered = await fetch(api, "/feed.atom?kind=plan_added&kind=stock_changed")
        whole = await fetch(api, "/feed.atom?limit=3")
    assert [text(entry, "a:title") for entry in entries(stock)] == ["p1 back in stock in fra"]
    assert len(entries(both)) == 2
    # Each filtered feed is a feed of its own (its own <id>); the order of kinds and the limit
    # do not change which feed it is.
    ids = {name: text(feed, "a:id") for name, feed in [("stock", stock), ("both", both)]}
    ids["whole"] = text(whole, "a:id")
    assert len(set(ids.values())) == 3
    assert text(reordered, "a:id") == ids["both"]
    assert "stock_changed" in text(stock, "a:title")


async def test_markup_in_data_is_escaped(redis_url: str, redis: Redis) -> None:
    hostile = "<script>alert('x')</script> & ]]>"
    await add_events(redis, [event("schema_drift", hostile, at=NOW, detail={"note": hostile})])
    async with running_api(redis_url) as api:
        async with api.request("GET", "/feed.atom") as response:
            body = await response.text()
    assert "<script>" not in body
    assert "&lt;script&gt;" in body
    feed = ET.fromstring(body)  # still well-formed
    assert hostile in text(entries(feed)[0], "a:title")


async def test_passwords_in_urls_are_masked_in_the_feed(redis_url: str, redis: Redis) -> None:
    """An event stored before URL passwords were masked when stored (an endpoint's error
    quoting a redirect with its credentials) is shown masked."""
    quoted = "redirected to https://alice:hunter2@shop.example/login"
    detail = {"url": "https://alice:hunter2@shop.example/", "error": quoted}
    down = event("endpoint_down", "shop", at=NOW, old="up", new="down", detail=detail)
    await add_events(redis, [down])
    async with running_api(redis_url) as api:
        async with api.request("GET", "/feed.atom") as response:
            body = await response.text()
    assert "hunter2" not in body
    (entry,) = entries(ET.fromstring(body))
    assert "redirected to https://alice:***@shop.example/login" in text(entry, "a:content")
    assert "https://alice:***@shop.example/" in text(entry, "a:content")
