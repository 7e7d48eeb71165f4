"""The changes page offers the change feed's filters: its form has a field for every filter of
``GET /api/v1/changes`` (but the API's own paging, ``after`` and ``limit``), and the page and
the API agree on which events a combination of them selects."""

from __future__ import annotations

import functools
import re
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

from redis.asyncio import Redis

from tests.worker.api_harness import event, running_api
from vultr_scraper_core.formats import format_time
from vultr_scraper_core.store.changes import ChangeFeed

NOW = datetime.now(UTC).replace(microsecond=0)
# The API pages by `after` and `limit`; the page by `before` and `size`, newest first.
API_PAGING = {"after", "limit"}
PAGE_PAGING = {"before", "size"}


async def test_the_form_offers_every_filter_of_the_api(redis_url: str) -> None:
    async with running_api(redis_url) as api:
        document = await api.json("GET", "/api/v1/openapi.json")
        _, page = await api.text("/changes")
    operation = document["paths"]["/api/v1/changes"]["get"]
    api_filters = {param["name"] for param in operation["parameters"]} - API_PAGING
    page_params = {param["name"] for param in document["paths"]["/changes"]["get"]["parameters"]}
    form = page[page.index("<form") : page.index("</form>")]
    fields = set(re.findall(r'<(?:input|select)[^>]* name="([a-z_]+)"', form))
    assert api_filters == {"since", "until", "kind", "subject"}
    assert fields == api_filters
    assert page_params - PAGE_PAGING == api_filters


async def test_the_page_and_the_api_select_the_same_events(redis_url: str, redis: Redis) -> None:
    day = timedelta(days=1)
    cases = [
        ("plan_added", "vc2-a", NOW - 3 * day),
        ("price_changed", "vc2-a", NOW - 2 * day),
        ("price_changed", "vc2-b", NOW - 2 * day + timedelta(hours=1)),
        ("plan_added", "vc2-a", NOW - 2 * day + timedelta(hours=2)),
        ("price_changed", "vc2-a", NOW - day),
    ]
    for n, (kind, subject, at) in enumerate(cases):
        clock = functools.partial(int, at.timestamp() * 1000 + n)
        await ChangeFeed(redis, "vs", id_clock=clock).append([event(kind, subject, at=at)])
    query = urlencode(
        {
            "kind": "price_changed",
            "subject": "vc2-a",
            "since": format_time(NOW - 2 * day - timedelta(minutes=1)),
            "until": format_time(NOW - day - timedelta(minutes=1)),
        }
    )
    async with running_api(redis_url) as api:
        found = await api.json("GET", f"/api/v1/changes?{query}")
        _, page = await api.text(f"/changes?{query}")
    assert [(e["kind"], e["subject"]) for e in found["events"]] == [("price_changed", "vc2-a")]
    rows = re.findall(r"<tr>.*?</tr>", page[page.index("<tbody>") :], re.S)
    assert len(rows) == 1 and "price_changed" in rows[0] and ">vc2-a<" in rows[0]
    assert 'value="vc2-a"' in page  # the form keeps the filters
    assert re.search(r"<option selected>price_changed</option>", page)
