"""Contract tests of the HTTP API: every route on a real server and a real (private) Redis.

Each route is exercised on an empty store, with data written through the stores' own write
APIs, with bad parameters (400 naming the parameter) and, where it applies, without or with
the wrong credentials (401 / 403).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from redis.asyncio import Redis

from tests.worker.api_harness import (
    PREFIX,
    TOKEN,
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
from vultr_scraper_core.config import EndpointConfig, HealthConfig
from vultr_scraper_core.models import CloudPlan
from vultr_scraper_worker.api.server import start_http_server
from vultr_scraper_worker.api.state import ApiState
from vultr_scraper_worker.enqueue import close_client, queue_client
from vultr_scraper_worker.records.failed import FailedJobs
from vultr_scraper_worker.serialization import deserialize

NOW = datetime.now(UTC).replace(microsecond=0)
JSON_ROUTES = [
    "/api/v1/plans",
    "/api/v1/availability",
    "/api/v1/changes",
    "/api/v1/catalog",
    "/api/v1/health",
    "/api/v1/jobs",
]


def seed_plans(vc2_price: str) -> list[CloudPlan]:
    """The seeded catalogue; only the price of vc2-1c-1gb differs between its two commits."""
    return [
        cloud_plan("vc2-1c-1gb", vc2_price, locations=["fra", "ewr"]),
        cloud_plan("vc2-2c-4gb", "20", locations=["fra"], vcpu_count=2, ram=4096),
        cloud_plan(
            "vcg-a100-1c",
            "90",
            locations=["ewr"],
            type="vcg",
            gpu_type="NVIDIA_A100",
            gpu_vram_gb=10,
        ),
    ]


async def seed(redis: Redis) -> None:
    """Two plans in two regions, one price change in history, stock for some pairs."""
    earlier = NOW - timedelta(days=10)
    await commit_catalogue(
        redis,
        seed_plans(vc2_price="5"),
        at=earlier,
    )
    await commit_catalogue(
        redis,
        seed_plans(vc2_price="6"),
        at=NOW - timedelta(minutes=5),
    )
    await set_stock(
        redis,
        {
            ("vc2-1c-1gb", "fra"): True,
            ("vc2-1c-1gb", "ewr"): False,
            ("vc2-2c-4gb", "fra"): True,
            ("vcg-a100-1c", "ewr"): False,
        },
        at=NOW - timedelta(minutes=4),
    )


# -- the empty store -------------------------------------------------------------------------


@pytest.mark.parametrize("path", JSON_ROUTES)
async def test_every_read_route_answers_on_an_empty_store(redis_url: str, path: str) -> None:
    async with running_api(redis_url) as api:
        document = await api.json("GET", path)
    assert isinstance(document, dict)


async def test_empty_store_documents(redis_url: str) -> None:
    async with running_api(redis_url) as api:
        assert await api.json("GET", "/api/v1/plans") == {
            "plans": [],
            "count": 0,
            "truncated": False,
            "at": None,
            "cursor": None,
            "has_more": False,
        }
        assert await api.json("GET", "/api/v1/changes") == {
            "events": [],
            "cursor": None,
            "has_more": False,
        }
        assert await api.json("GET", "/api/v1/availability") == {
            "availability": [],
            "count": 0,
            "cursor": None,
            "has_more": False,
        }
        (vultr_api,) = (await api.json("GET", "/api/v1/health"))["endpoints"]
        assert vultr_api["name"] == "vultr-api" and vultr_api["state"] == "unknown"
        assert vultr_api["url"] == "https://api.vultr.com/v2/regions?per_page=1"
        jobs = await api.json("GET", "/api/v1/jobs")
        assert [job["name"] for job in jobs["jobs"]] == [
            "scrape-catalog",
            "check-health",
            "deliver-notification",
        ]
        assert all(job["last_run"] is None for job in jobs["jobs"])
        assert jobs["queue"] == {"total": 0, "running": 0, "jobs": []}
        assert jobs["failed"] == {"count": 0, "jobs": []}
        catalog = await api.json("GET", "/api/v1/catalog")
        assert catalog["fresh"] is False and catalog["quarantine"] is None


async def test_health_lists_every_probed_endpoint_with_credentials_masked(
    redis_url: str,
) -> None:
    private = EndpointConfig(name="private", url="https://probe:s3cret@status.example/check")
    async with running_api(redis_url, health=HealthConfig(endpoints=[private])) as api:
        document = await api.json("GET", "/api/v1/health")
        _, page = await api.text("/")
    urls = {endpoint["name"]: endpoint["url"] for endpoint in document["endpoints"]}
    assert urls == {
        "private": "https://probe:***@status.example/check",
        "vultr-api": "https://api.vultr.com/v2/regions?per_page=1",
    }
    assert "s3cret" not in page
    async with running_api(redis_url, health=HealthConfig(check_vultr_api=False)) as api:
        empty = {"endpoints": [], "count": 0, "cursor": None, "has_more": False}
        assert await api.json("GET", "/api/v1/health") == empty


# -- /healthz --------------------------------------------------------------------------------


async def test_healthz_is_503_until_a_catalogue_scrape_succeeded(redis_url: str) -> None:
    async with running_api(redis_url) as api:
        document = await api.json("GET", "/healthz", status=503)
    assert document["status"] == "unhealthy"
    assert document["reason"] == "no successful catalogue scrape yet"


async def test_healthz_follows_the_age_of_the_last_good_scrape(
    redis_url: str, redis: Redis
) -> None:
    await commit_catalogue(redis, [cloud_plan("vc2-1c-1gb", "5", locations=["fra"])], at=NOW)
    async with running_api(redis_url, catalog_max_age=3600) as api:
        document = await api.json("GET", "/healthz")
        assert document["status"] == "ok"
        assert document["checks"]["catalog"]["ok"] is True
    async with running_api(redis_url, catalog_max_age=1) as api:
        await commit_catalogue(
            redis, [cloud_plan("vc2-1c-1gb", "7", locations=["fra"])], at=NOW - timedelta(hours=2)
        )
        document = await api.json("GET", "/healthz", status=503)
    assert "more than catalog_max_age (1 s)" in document["reason"]


async def test_healthz_reports_a_quarantine(redis_url: str, redis: Redis) -> None:
    await commit_catalogue(redis, [cloud_plan("vc2-1c-1gb", "5", locations=["fra"])], at=NOW)
    await quarantine(redis, at=NOW, reasons=["item count fell by 40 % (3 -> 2)"])
    async with running_api(redis_url, catalog_max_age=3600) as api:
        document = await api.json("GET", "/healthz")  # still 200: the catalogue is fresh
    assert document["status"] == "quarantined"
    assert "item count fell by 40 %" in document["reason"]
    assert "vultr-scraper quarantine" in document["reason"]
    assert document["checks"]["catalog"]["quarantined"] is True


async def test_healthz_needs_no_token_even_with_protected_reads(redis_url: str) -> None:
    async with running_api(redis_url, protect_reads=True) as api:
        await api.json("GET", "/healthz", status=503)


async def test_healthz_reports_redis_down_as_503(redis_url: str) -> None:
    from tests.redis_server import free_port

    dead = f"redis://127.0.0.1:{free_port()}/0"
    async with running_api(dead, outage_budget=0.1) as api:
        document = await api.json("GET", "/healthz", status=503)
        assert document["reason"].startswith("Redis is unavailable (Redis unreachable: ")
        assert document["checks"]["redis"]["ok"] is False
        # Every other read route answers 503 with a problem document, never 500.
        error = await api.json("GET", "/api/v1/jobs", status=503)
        assert error["type"] == "about:blank"
        assert error["title"] == "Service Unavailable"
        assert error["status"] == 503
        assert error["detail"].startswith("Redis unreachable: ")
        assert error["detail"].endswith("; try again shortly")
        assert error["error"] == error["detail"]


# -- plans, availability, catalog -------------------------------------------------------------


async def test_plans_filters_and_prices(redis_url: str, redis: Redis) -> None:
    await seed(redis)
    async with running_api(redis_url) as api:
        every = await api.json("GET", "/api/v1/plans")
        assert every["count"] == 4
        assert [(row["plan"], row["region"]) for row in every["plans"]] == [
            ("vc2-1c-1gb", "ewr"),
            ("vc2-1c-1gb", "fra"),
            ("vc2-2c-4gb", "fra"),
            ("vcg-a100-1c", "ewr"),
        ]
        assert every["plans"][0]["monthly_cost"] == "6"  # exact decimal text, never a float
        in_fra = await api.json("GET", "/api/v1/plans?region=fra&in_stock=true&min_vcpu=2")
        assert [row["plan"] for row in in_fra["plans"]] == ["vc2-2c-4gb"]
        assert in_fra["plans"][0]["in_stock"] is True
        cheap = await api.json("GET", "/api/v1/plans?max_monthly=6&type=vc2")
        assert {row["plan"] for row in cheap["plans"]} == {"vc2-1c-1gb"}
        gpu = await api.json("GET", "/api/v1/plans?gpu=a100&min_gpu_vram=8&min_ram=1024")
        assert [row["plan"] for row in gpu["plans"]] == ["vcg-a100-1c"]
        limited = await api.json("GET", "/api/v1/plans?limit=1")
        assert limited["count"] == 4 and limited["truncated"] is True
        assert len(limited["plans"]) == 1


async def test_plans_at_a_past_time_answers_from_history(redis_url: str, redis: Redis) -> None:
    await seed(redis)
    when = (NOW - timedelta(days=5)).isoformat().replace("+00:00", "Z")
    async with running_api(redis_url) as api:
        then = await api.json("GET", f"/api/v1/plans?plan=vc2-1c-1gb&region=fra&at={when}")
        now = await api.json("GET", "/api/v1/plans?plan=vc2-1c-1gb&region=fra")
        before_history = await api.json("GET", "/api/v1/plans?at=2001-01-01")
    assert [row["monthly_cost"] for row in then["plans"]] == ["5"]
    assert then["at"] == when
    assert [row["monthly_cost"] for row in now["plans"]] == ["6"]
    assert before_history["plans"] == []


async def test_availability_lists_stock_per_pair(redis_url: str, redis: Redis) -> None:
    await seed(redis)
    async with running_api(redis_url) as api:
        every = await api.json("GET", "/api/v1/availability")
        only = await api.json("GET", "/api/v1/availability?plan=vc2-1c-1gb&in_stock=false")
    assert every["count"] == 4
    assert [(row["plan"], row["region"], row["in_stock"]) for row in only["availability"]] == [
        ("vc2-1c-1gb", "ewr", False)
    ]


async def test_availability_lists_pairs_never_in_stock(redis_url: str, redis: Redis) -> None:
    await seed(redis)
    await redis.hdel("vs:stock:state", "vcg-a100-1c@ewr")  # type: ignore[misc]
    async with running_api(redis_url) as api:
        out = await api.json("GET", "/api/v1/availability?in_stock=false")
    rows = {(row["plan"], row["region"]): row for row in out["availability"]}
    assert rows[("vcg-a100-1c", "ewr")]["last_in_stock"] is None
    assert rows[("vcg-a100-1c", "ewr")]["first_seen"] is None
    assert set(rows) == {("vc2-1c-1gb", "ewr"), ("vcg-a100-1c", "ewr")}


async def test_catalog_summary_shows_quarantine(redis_url: str, redis: Redis) -> None:
    await seed(redis)
    await quarantine(redis, at=NOW, reasons=["item count fell by 40 % (3 -> 2)"])
    async with running_api(redis_url) as api:
        document = await api.json("GET", "/api/v1/catalog")
    assert document["counts"]["plans"] == 3
    assert document["fresh"] is True
    assert document["quarantine"]["reasons"] == ["item count fell by 40 % (3 -> 2)"]
    assert document["stock"] == {"in_stock": 2, "out_of_stock": 2}
    assert document["held_stock"] == []
    await hold_stock(redis, "ewr", at=NOW, reasons=["ewr: reports no plan in stock, down from 4"])
    async with running_api(redis_url) as api:
        document = await api.json("GET", "/api/v1/catalog")
    [held] = document["held_stock"]
    assert held["region"] == "ewr" and held["checks"] == ["emptied"]
    assert held["reasons"] == ["ewr: reports no plan in stock, down from 4"]


# -- changes ---------------------------------------------------------------------------------


async def test_changes_pages_with_a_cursor(redis_url: str, redis: Redis) -> None:
    ids = await add_events(
        redis,
        [
            event("plan_added", "vc2-1c-1gb", at=NOW, new={"monthly_cost": "5"}),
            event(
                "price_changed",
                "vc2-1c-1gb",
                at=NOW,
                region="fra",
                field="monthly_cost",
                old="5",
                new="6",
            ),
            event(
                "stock_changed",
                "vc2-1c-1gb",
                at=NOW,
                region="fra",
                field="in_stock",
                old=False,
                new=True,
            ),
        ],
    )
    async with running_api(redis_url) as api:
        async with api.request("GET", "/api/v1/changes?limit=2") as response:
            first = await response.json()
            assert response.headers["Link"].endswith('>; rel="next"')
            assert f"after={ids[1]}" in response.headers["Link"]
        assert [item["id"] for item in first["events"]] == ids[:2]
        assert first["cursor"] == ids[1] and first["has_more"] is True
        second = await api.json("GET", f"/api/v1/changes?limit=2&after={first['cursor']}")
        assert [item["id"] for item in second["events"]] == ids[2:]
        assert second["has_more"] is False
        # Polling past the end keeps the cursor, so a client can simply ask again later.
        third = await api.json("GET", f"/api/v1/changes?after={second['cursor']}")
        assert third == {"events": [], "cursor": ids[2], "has_more": False}
        prices = await api.json("GET", "/api/v1/changes?kind=price_changed&kind=stock_changed")
        assert [item["kind"] for item in prices["events"]] == ["price_changed", "stock_changed"]
        assert prices["events"][0]["old"] == "5" and prices["events"][0]["new"] == "6"
        none = await api.json("GET", "/api/v1/changes?subject=vc2-2c-4gb")
        assert none["events"] == []
        future = await api.json("GET", "/api/v1/changes?since=2100-01-01")
        assert future["events"] == []
        # Ages as the CLI takes them: 30d holds everything, 0s (now) nothing recorded before.
        month = await api.json("GET", "/api/v1/changes?since=30d")
        assert [item["id"] for item in month["events"]] == ids
        assert (await api.json("GET", "/api/v1/changes?since=0s"))["events"] == []
        ancient = await api.json("GET", "/api/v1/changes?until=1900-01-01T00:00:00Z")
        assert ancient["events"] == []


# -- jobs, retry, enqueue --------------------------------------------------------------------


async def test_jobs_show_runs_queue_and_failures(redis_url: str, redis: Redis) -> None:
    await record_run(redis, "scrape-catalog", "success", 2.5)
    await record_run(redis, "check-health", "failed", 0.2)
    await add_failed_job(redis, "check-health:1764300000000", "check-health")
    async with running_api(redis_url) as api:
        queued = await api.json(
            "POST", "/api/v1/jobs/scrape-catalog/enqueue", status=202, token=TOKEN
        )
        document = await api.json("GET", "/api/v1/jobs?limit=5")
    by_name = {job["name"]: job for job in document["jobs"]}
    assert by_name["scrape-catalog"]["last_run"]["outcome"] == "success"
    assert by_name["scrape-catalog"]["last_success"] is not None
    assert by_name["scrape-catalog"]["next_run"] is not None
    assert by_name["check-health"]["last_run"]["outcome"] == "failed"
    assert by_name["deliver-notification"]["next_run"] is None  # runs only when enqueued
    assert by_name["deliver-notification"]["schedule"] == "off"
    assert document["queue"]["total"] == 1
    assert document["queue"]["jobs"][0]["id"] == queued["job_id"]
    assert document["queue"]["jobs"][0]["function"] == "scrape-catalog"
    assert document["failed"]["count"] == 1
    assert document["failed"]["jobs"][0]["id"] == "check-health:1764300000000"
    assert len(document["recent"]) == 2


async def test_retry_enqueues_the_failed_job_again(redis_url: str, redis: Redis) -> None:
    await add_failed_job(redis, "scrape-catalog:1", args=["x"])
    async with running_api(redis_url) as api:
        document = await api.json(
            "POST", "/api/v1/jobs/scrape-catalog:1/retry", status=202, token=TOKEN
        )
    new_id = document["retried_as"]
    assert document["job_id"] == "scrape-catalog:1"
    payload = await redis.get(f"arq:job:{new_id}")
    assert payload is not None
    job = deserialize(payload)  # msgpack, never pickle
    assert job["f"] == "scrape-catalog" and job["a"] == ["x"]
    assert await redis.zscore("arq:queue", new_id) is not None
    record = await FailedJobs(redis, PREFIX).get("scrape-catalog:1")
    assert record is not None and record.retried_as == new_id


async def test_a_second_retry_of_the_same_record_is_refused(redis_url: str, redis: Redis) -> None:
    await add_failed_job(redis, "scrape-catalog:2")
    async with running_api(redis_url) as api:
        first = await api.json(
            "POST", "/api/v1/jobs/scrape-catalog:2/retry", status=202, token=TOKEN
        )
        second = await api.json(
            "POST", "/api/v1/jobs/scrape-catalog:2/retry", status=409, token=TOKEN
        )
        document = await api.json("GET", "/api/v1/openapi.json")
    assert first["retried_as"] in second["error"]
    assert "already retried" in second["error"]
    assert await redis.zcard("arq:queue") == 1
    refusal = document["paths"]["/api/v1/jobs/{job_id}/retry"]["post"]["responses"]["409"]
    assert "already retried" in refusal["description"]
    assert refusal["content"]["application/problem+json"]["schema"] == {
        "$ref": "#/components/schemas/Error"
    }


async def test_retry_of_an_unknown_or_unretryable_job(redis_url: str, redis: Redis) -> None:
    await add_failed_job(redis, "refused-1", "<unknown>", retryable=False)
    async with running_api(redis_url) as api:
        missing = await api.json("POST", "/api/v1/jobs/nope/retry", status=404, token=TOKEN)
        refused = await api.json("POST", "/api/v1/jobs/refused-1/retry", status=409, token=TOKEN)
    assert missing["detail"] == "no failed job with id 'nope'"
    assert "cannot be retried" in refused["error"]


async def test_enqueue_by_name(redis_url: str, redis: Redis) -> None:
    async with running_api(redis_url) as api:
        document = await api.json(
            "POST", "/api/v1/jobs/check-health/enqueue", status=202, token=TOKEN
        )
        unknown = await api.json(
            "POST", "/api/v1/jobs/no-such-job/enqueue", status=404, token=TOKEN
        )
    assert document["job"] == "check-health"
    payload = await redis.get(f"arq:job:{document['job_id']}")
    assert payload is not None and deserialize(payload)["f"] == "check-health"
    assert unknown["error"].startswith("unknown job 'no-such-job'; known jobs: scrape-catalog")


async def test_a_job_that_needs_arguments_is_not_enqueued_without(
    redis_url: str, redis: Redis
) -> None:
    async with running_api(redis_url) as api:
        document = await api.json(
            "POST", "/api/v1/jobs/deliver-notification/enqueue", status=400, token=TOKEN
        )
    assert "needs arguments" in document["error"]
    assert await redis.zcard("arq:queue") == 0


# -- authentication --------------------------------------------------------------------------

WRITES = ["/api/v1/jobs/x:1/retry", "/api/v1/jobs/scrape-catalog/enqueue"]


@pytest.mark.parametrize("path", WRITES)
async def test_writes_need_the_token(redis_url: str, redis: Redis, path: str) -> None:
    async with running_api(redis_url) as api:
        missing = await api.json("POST", path, status=401)
        assert "authentication required" in missing["error"]
        async with api.request("POST", path, token="wrong-token") as response:
            assert response.status == 401
            assert response.headers["WWW-Authenticate"] == (
                'Bearer realm="vultr-scraper", error="invalid_token"'
            )
            assert response.content_type == "application/problem+json"
            assert (await response.json())["detail"] == "invalid token"
        basic = await api.json("POST", path, status=401, headers={"Authorization": "Basic eA=="})
        assert "Bearer" in basic["error"]
    assert await redis.zcard("arq:queue") == 0


@pytest.mark.parametrize("path", WRITES)
async def test_writes_are_refused_without_a_configured_token(redis_url: str, path: str) -> None:
    async with running_api(redis_url, token=None) as api:
        document = await api.json("POST", path, status=403, token="anything")
    assert "no API token is configured" in document["error"]
    assert "[http] token_file" in document["error"]


async def test_protect_reads_requires_the_token_for_reads(redis_url: str) -> None:
    async with running_api(redis_url, protect_reads=True) as api:
        for path in [*JSON_ROUTES, "/metrics", "/feed.atom"]:
            await api.json("GET", path, status=401)
            async with api.request("GET", path, token=TOKEN) as response:
                assert response.status == 200, path
        # The page shows the login form instead of data.
        response, body = await api.text("/", status=401)
        assert '<form method="post" action="/login">' in body
        # The document describes the protection.
        document = await api.json("GET", "/api/v1/openapi.json")
        assert document["paths"]["/api/v1/plans"]["get"]["security"] == [
            {"bearerToken": []},
            {"sessionCookie": []},
        ]


async def test_protect_reads_without_a_token_refuses_reads(redis_url: str) -> None:
    async with running_api(redis_url, protect_reads=True, token=None) as api:
        document = await api.json("GET", "/api/v1/plans", status=403)
    assert "no API token is configured" in document["error"]


async def test_login_cookie_authorises_same_origin_form_posts(redis_url: str, redis: Redis) -> None:
    await add_failed_job(redis, "scrape-catalog:7")
    async with running_api(redis_url) as api:
        origin = {"Origin": api.url}
        async with api.request("POST", "/login", data={"token": "wrong"}, headers=origin) as bad:
            assert bad.status == 401
            assert "That token is not the configured one." in await bad.text()
        async with api.request("POST", "/login", data={"token": TOKEN}) as no_origin:
            assert no_origin.status == 403  # cross-site check: no Origin or Referer
        async with api.request("POST", "/login", data={"token": TOKEN}, headers=origin) as good:
            assert good.status == 303 and good.headers["Location"] == "/"
            cookie = good.headers["Set-Cookie"]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie
        assert TOKEN not in cookie  # the cookie holds an HMAC of the token, not the token
        # A form post from the page: cookie + same Origin -> redirect back to the page.
        form = {**origin, "Accept": "text/html"}
        async with api.request(
            "POST", "/api/v1/jobs/scrape-catalog:7/retry", data={}, headers=form
        ) as response:
            assert response.status == 303
            assert response.headers["Location"].startswith("/?retried=retry-")
        # The same cookie from another site, or with no Origin at all, is refused.
        foreign = {"Origin": "https://evil.example", "Accept": "text/html"}
        async with api.request("POST", "/api/v1/jobs/scrape-catalog/enqueue", headers=foreign) as r:
            assert r.status == 403
        cross = {"Sec-Fetch-Site": "cross-site", "Origin": api.url}
        async with api.request("POST", "/api/v1/jobs/scrape-catalog/enqueue", headers=cross) as r:
            assert r.status == 403
        async with api.request("POST", "/api/v1/jobs/scrape-catalog/enqueue") as r:
            assert r.status == 403
            assert "no Origin or Referer" in (await r.json())["error"]
        async with api.request("POST", "/logout", headers=origin) as out:
            assert out.status == 303
        async with api.request("POST", "/api/v1/jobs/scrape-catalog/enqueue", headers=origin) as r:
            assert r.status == 401
    assert await redis.zcard("arq:queue") == 1  # only the one retry got through


async def test_login_page_without_a_token_says_how_to_configure_one(redis_url: str) -> None:
    async with running_api(redis_url, token=None) as api:
        _, body = await api.text("/login", status=403)
    assert "[http] token_file" in body


# -- parameters ------------------------------------------------------------------------------

BAD_PARAMETERS = [
    ("/api/v1/plans?min_vcpu=two", "min_vcpu", "must be an integer"),
    ("/api/v1/plans?min_vcpu=-1", "min_vcpu", "must be an integer from 0"),
    ("/api/v1/plans?max_monthly=NaN", "max_monthly", "must be a number"),
    ("/api/v1/plans?max_monthly=1e999", "max_monthly", "must be a number"),
    ("/api/v1/plans?in_stock=yes", "in_stock", "must be true or false"),
    ("/api/v1/plans?at=yesterday", "at", "RFC 3339"),
    ("/api/v1/plans?at=2026-02-30", "at", "RFC 3339"),
    ("/api/v1/plans?region=fr%20a", "region", "must be 1 to 50 characters"),
    ("/api/v1/plans?limit=0", "limit", "from 1 to 100000"),
    ("/api/v1/plans?colour=red", "colour", "unknown query parameter"),
    ("/api/v1/plans?region=fra&region=ewr", "region", "given more than once"),
    ("/api/v1/changes?after=abc", "after", "event id"),
    ("/api/v1/changes?after=99999999999999999999-0", "after", "event id"),
    ("/api/v1/changes?after=1-2-3", "after", "event id"),
    ("/api/v1/changes?kind=price", "kind", "must be one of plan_added"),
    ("/api/v1/changes?limit=1001", "limit", "from 1 to 1000"),
    ("/api/v1/changes?since=2026-01-01T10:00:00+25:00", "since", "RFC 3339"),
    ("/api/v1/availability?plan=a/b", "plan", "must be 1 to 100"),
    ("/api/v1/jobs?limit=201", "limit", "from 1 to 200"),
    ("/feed.atom?kind=nope", "kind", "must be one of"),
    ("/metrics?x=1", "x", "unknown query parameter"),
]


@pytest.mark.parametrize(("path", "name", "message"), BAD_PARAMETERS)
async def test_bad_parameters_are_400_with_a_message(
    redis_url: str, path: str, name: str, message: str
) -> None:
    async with running_api(redis_url) as api:
        document = await api.json("GET", path, status=400)
    assert f"'{name}'" in document["error"]
    assert message in document["error"]


async def test_unknown_paths_and_methods_are_json_errors(redis_url: str) -> None:
    async with running_api(redis_url) as api:
        assert await api.json("GET", "/api/v2/plans", status=404) == {
            "type": "about:blank",
            "title": "Not Found",
            "status": 404,
            "detail": "no such page: /api/v2/plans",
            "error": "no such page: /api/v2/plans",
        }
        async with api.request("DELETE", "/api/v1/plans") as response:
            assert response.status == 405
            assert response.headers["Allow"] == "GET,HEAD,OPTIONS"
            assert (await response.json())["error"] == "Method Not Allowed"


# -- responses carry security headers --------------------------------------------------------


async def test_security_headers(redis_url: str) -> None:
    async with running_api(redis_url) as api:
        response, _ = await api.text("/")
    headers = response.headers
    assert "script-src" not in headers["Content-Security-Policy"]
    assert "default-src 'none'" in headers["Content-Security-Policy"]
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["X-Frame-Options"] == "DENY"
    # A page may be stored but is revalidated on every use (its ETag makes that cheap).
    assert headers["Cache-Control"] == "no-cache"


# -- the server itself ------------------------------------------------------------------------


async def test_empty_listen_disables_the_server(redis_url: str) -> None:
    from vultr_scraper_core.config import Config, HttpConfig, LoadedConfig, Secrets

    loaded = LoadedConfig(config=Config(http=HttpConfig(listen="")), secrets=Secrets(), source="")
    queue = queue_client(redis_url, queue_name="arq:queue")
    assert await start_http_server(ApiState.create(loaded, queue, [])) is None
    await close_client(queue)


async def test_unix_socket_listen(redis_url: str, tmp_path: Any) -> None:
    import aiohttp

    socket_path = tmp_path / "http.sock"
    async with running_api(redis_url, listen=f"unix:{socket_path}") as api:
        assert api.url == f"unix:{socket_path}"
        connector = aiohttp.UnixConnector(path=str(socket_path))
        async with (
            aiohttp.ClientSession(connector=connector) as session,
            session.get("http://localhost/api/v1/catalog") as response,
        ):
            assert response.status == 200


def test_decimal_prices_are_strings() -> None:
    from vultr_scraper_worker.api.routing import json_response

    response = json_response({"price": Decimal("0.007")})
    assert response.body == b'{"price":"0.007"}'
