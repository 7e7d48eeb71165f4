"""The status page's HTML: sections, escaping, buttons only for a logged-in user, notices."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser

from hypothesis import given
from hypothesis import strategies as st
from markupsafe import Markup
from redis.asyncio import Redis

from tests.worker.api_harness import (
    PREFIX,
    TOKEN,
    Api,
    add_events,
    add_failed_job,
    cloud_plan,
    commit_catalogue,
    event,
    hold_stock,
    quarantine,
    record_run,
    running_api,
    set_stock,
)
from vultr_scraper_core.store.changes import ChangeFeed
from vultr_scraper_core.store.health import HealthStore, ProbeResult
from vultr_scraper_worker.api import charts, templating
from vultr_scraper_worker.api.templating import environment, table_rows

NOW = datetime.now(UTC)
HOSTILE = "<img src=x onerror=alert(1)>"


class Forms(HTMLParser):
    """Collects every form action and every script tag of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.actions: list[str] = []
        self.scripts = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "form":
            self.actions.append(dict(attrs).get("action") or "")
        if tag == "script":
            self.scripts += 1


def parse(body: str) -> Forms:
    forms = Forms()
    forms.feed(body)
    return forms


async def log_in(api: Api) -> None:
    async with api.request(
        "POST", "/login", data={"token": TOKEN}, headers={"Origin": api.url}
    ) as response:
        assert response.status == 303


async def test_empty_store_page(redis_url: str) -> None:
    async with running_api(redis_url) as api:
        response, body = await api.text("/")
    assert response.content_type == "text/html"
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in body
    for section in ("jobs", "queue", "failed", "cheapest", "health"):
        assert f'<section id="{section}">' in body
    assert "No failed jobs." in body
    assert '<p class="big">0 changes</p>' in body
    assert "stale" in body and "no successful catalogue scrape yet" in body
    assert parse(body).scripts == 0


async def test_page_shows_the_state_of_everything(redis_url: str, redis: Redis) -> None:
    at = NOW - timedelta(minutes=3)
    await commit_catalogue(
        redis,
        [
            cloud_plan("vc2-1c-1gb", "5", locations=["fra", "ewr"]),
            cloud_plan("vc2-2c-4gb", "20", locations=["fra"]),
        ],
        at=at,
    )
    await set_stock(
        redis,
        {("vc2-1c-1gb", "fra"): False, ("vc2-2c-4gb", "fra"): True, ("vc2-1c-1gb", "ewr"): True},
        at=at,
    )
    await add_events(
        redis,
        [
            event(
                "price_changed",
                "vc2-2c-4gb",
                at=at,
                region="fra",
                field="monthly_cost",
                old="18",
                new="20",
            )
        ],
    )
    await record_run(redis, "scrape-catalog", "success", 3.0)
    await add_failed_job(redis, "check-health:99", "check-health", error="HTTP 503 from x")
    await quarantine(redis, at=NOW, reasons=["plan count fell by 30 %"])
    async with running_api(redis_url) as api:
        _, body = await api.text("/")
    assert "fresh" in body
    assert "Catalogue scrape quarantined" in body and "plan count fell by 30 %" in body
    # The overview counts the feed and names its latest event; the events are on /changes.
    assert '<p class="big">1 change</p>' in body and "price_changed vc2-2c-4gb" in body
    # Cheapest in-stock plan per region: vc2-1c-1gb is out of stock in fra.
    cheapest = body[body.index('<section id="cheapest">') :]
    rows = re.findall(
        r"<strong>(\w+)</strong></a> <span class=\"muted\">[^<]*</span></div></td>"
        r"<td class=\"mono\" data-label=\"Plan\"><div><a href=\"/plans/[\w-]+\">([\w-]+)</a>"
        r"</div></td>",
        cheapest,
    )
    assert rows == [("ewr", "vc2-1c-1gb"), ("fra", "vc2-2c-4gb")]
    assert "check-health:99" in body and "HTTP 503 from x" in body
    # Plans are cloud + metal; OS images are listed apart, not as if they were plans.
    assert '<p class="big">2 plans</p><p>2 cloud, 0 bare metal; 2 regions, 0 OS images</p>' in body
    assert '<p class="big">0 jobs</p>' in body
    assert "log in to retry" in body  # no buttons before logging in
    assert parse(body).actions == []


async def test_endpoint_latency_over_a_day_is_a_sparkline(redis_url: str, redis: Redis) -> None:
    store = HealthStore(redis, PREFIX)
    # Three hours with probes (10, 30 and 20 ms on average), one hour of failures without a
    # response, and one probe older than the 24 hours shown.
    probes = [(26, 500.0), (3, 5.0), (3, 15.0), (2, 30.0), (1, None), (0, 20.0)]
    for hours_ago, latency in probes:
        result = ProbeResult(at=NOW - timedelta(hours=hours_ago), ok=latency is not None,
                             latency_ms=latency, error="" if latency else "refused")  # fmt: skip
        await store.record("api", "https://api.example/", result, failure_threshold=3,
                           success_threshold=1, feed=ChangeFeed(redis, PREFIX))  # fmt: skip
    assert (await store.hourly_latency(["api"], 24, NOW))["api"] == [10.0, 30.0, 20.0]
    async with running_api(redis_url) as api:
        _, body = await api.text("/")
    health = body[body.index('<section id="health">') : body.index('<section id="cheapest">')]
    assert "<title>api: latency over 24 hours</title>" in health
    assert "10 to 30 ms, last 20 ms" in health


async def test_buttons_appear_after_login(redis_url: str, redis: Redis) -> None:
    await add_failed_job(redis, "scrape-catalog:5")
    async with running_api(redis_url) as api:
        await log_in(api)
        _, body = await api.text("/")
    actions = parse(body).actions
    assert "/api/v1/jobs/scrape-catalog:5/retry" in actions
    assert "/api/v1/jobs/scrape-catalog/enqueue" in actions
    assert "/api/v1/jobs/deliver-notification/enqueue" not in actions  # it needs arguments
    assert "/logout" in actions


async def test_a_retried_record_shows_its_new_job_instead_of_a_button(
    redis_url: str, redis: Redis
) -> None:
    await add_failed_job(redis, "scrape-catalog:6", retried_as="retry-0123abcd", retried_at=1.0)
    await add_failed_job(redis, "retry-0123abcd")  # the retry failed too: its own record
    async with running_api(redis_url) as api:
        await log_in(api)
        _, body = await api.text("/")
    actions = parse(body).actions
    assert "/api/v1/jobs/scrape-catalog:6/retry" not in actions
    assert "/api/v1/jobs/retry-0123abcd/retry" in actions
    assert "retried as retry-0123abcd" in body


async def test_no_token_configured_says_so(redis_url: str, redis: Redis) -> None:
    await add_failed_job(redis, "scrape-catalog:5")
    async with running_api(redis_url, token=None) as api:
        _, body = await api.text("/")
    assert "[http] token_file" in body
    assert parse(body).actions == []


async def test_every_value_is_escaped(redis_url: str, redis: Redis) -> None:
    await add_events(
        redis, [event("schema_drift", HOSTILE, at=NOW, region=HOSTILE, old=HOSTILE, new=HOSTILE)]
    )
    await add_failed_job(redis, "x:1", HOSTILE, error=HOSTILE, error_type=HOSTILE)
    await quarantine(redis, at=NOW, reasons=[HOSTILE])
    await hold_stock(redis, HOSTILE, at=NOW, reasons=[HOSTILE])
    async with running_api(redis_url) as api:
        _, body = await api.text("/")
    assert HOSTILE not in body
    assert body.count("&lt;img src=x onerror=alert(1)&gt;") >= 7


async def test_held_stock_answers_are_shown(redis_url: str, redis: Redis) -> None:
    async with running_api(redis_url) as api:
        _, body = await api.text("/")
    assert "Stock answers held back" not in body
    await hold_stock(redis, "ewr", at=NOW, reasons=["ewr: reports no plan in stock, down from 4"])
    async with running_api(redis_url) as api:
        _, body = await api.text("/")
    notice = body[body.index("Stock answers held back") :]
    assert "held back the availability answer of 1 region" in notice
    assert "<strong>ewr</strong>" in notice
    assert "ewr: reports no plan in stock, down from 4" in notice
    assert "vultr-scraper quarantine" in notice


async def test_notices_from_the_form_redirects(redis_url: str) -> None:
    async with running_api(redis_url) as api:
        _, body = await api.text("/?retried=retry-abc123")
        assert "re-enqueued as <code>retry-abc123</code>" in body
        _, body = await api.text("/?enqueued=0123abcd")
        assert "enqueued as <code>0123abcd</code>" in body
        # Only ids: anything else is a 400 page, never reflected markup.
        response, body = await api.text("/?retried=%3Cb%3E", status=400)
    assert response.content_type == "text/html"
    assert "<b>" not in body


async def test_form_post_errors_are_pages_with_a_way_back(redis_url: str) -> None:
    async with running_api(redis_url) as api:
        await log_in(api)
        headers = {"Origin": api.url, "Accept": "text/html"}
        async with api.request(
            "POST", "/api/v1/jobs/gone:1/retry", data={}, headers=headers
        ) as response:
            assert response.status == 404
            assert response.content_type == "text/html"
            body = await response.text()
    assert "no failed job with id &#39;gone:1&#39;" in body
    assert '<a href="/">Back to the status page</a>' in body


async def test_stylesheet(redis_url: str) -> None:
    async with running_api(redis_url) as api:
        response, css = await api.text("/style.css")
    assert response.content_type == "text/css"
    assert "@media (max-width: 600px)" in css


def test_templates_escape_everything_but_markup() -> None:
    env = templating.environment()
    template = env.from_string("<p>{{ a }}</p>")
    assert template.render(a="<b>&\"'") == "<p>&lt;b&gt;&amp;&#34;&#39;</p>"
    assert template.render(a=Markup("<b>ok</b>")) == "<p><b>ok</b></p>"
    # Every page template escapes: a hostile title inside a chart stays text.
    svg = charts.sparkline([1.0, 2.0], title=HOSTILE)
    assert HOSTILE not in svg and "&lt;img" in svg


@given(
    rows=st.lists(
        st.lists(st.text(max_size=6) | st.integers() | st.none(), min_size=3, max_size=3),
        max_size=4,
    ),
    classes=st.lists(st.sampled_from(["", "num", "mono", 'x"<']), max_size=3),
)
def test_table_rows_render_as_the_td_macro_does(
    rows: list[list[object]], classes: list[str]
) -> None:
    headers = ["Plan", "<b>$</b>", "Stock & co"]
    template = environment().from_string(
        '{% import "macros.html" as m %}{% for row in rows %}<tr>{% for cell in row %}'
        "{{ m.td(headers[loop.index0], cell, classes[loop.index0] if loop.index0 < "
        'classes | length else ("num" if loop.index0 else "")) }}{% endfor %}</tr>{% endfor %}'
    )
    rows = [[Markup("<a>x</a>"), *row[1:]] if n % 2 else row for n, row in enumerate(rows)]
    expected = template.render(rows=rows, headers=headers, classes=classes)
    assert str(table_rows(headers, rows, classes)) == expected
