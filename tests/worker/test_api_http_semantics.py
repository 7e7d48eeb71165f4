"""HTTP as clients expect it: HEAD wherever GET is, OPTIONS with Allow, ETags and 304s,
gzip when accepted, and CORS for read routes only when configured. Real server, real Redis."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from multidict import CIMultiDict
from redis.asyncio import Redis

from tests.worker.api_harness import (
    TOKEN,
    Api,
    add_events,
    cloud_plan,
    commit_catalogue,
    event,
    running_api,
)
from vultr_scraper_worker.api import reads_catalog

NOW = datetime.now(UTC)
READ_PATHS = ["/", "/healthz", "/feed.atom", "/metrics", "/api/v1/plans", "/api/v1/jobs"]
DASHBOARD = "https://dash.example"


async def raw(
    api: Api, method: str, path: str, **headers: str
) -> tuple[int, CIMultiDict[str], bytes]:
    """Status, headers and the body as sent (no automatic decompression)."""
    async with (
        aiohttp.ClientSession(auto_decompress=False) as session,
        session.request(method, api.url + path, headers=headers, allow_redirects=False) as response,
    ):
        return response.status, response.headers.copy(), await response.read()


async def seed(redis: Redis, plans: int = 40) -> None:
    catalogue = [cloud_plan(f"vc2-{n}c-1gb", f"{n}.00", locations=["fra"]) for n in range(plans)]
    await commit_catalogue(redis, catalogue, at=NOW - timedelta(minutes=5))
    await add_events(redis, [event("plan_added", "vc2-1c-1gb", at=NOW - timedelta(minutes=5))])


async def test_head_answers_like_get_without_a_body(redis_url: str, redis: Redis) -> None:
    await seed(redis)
    async with running_api(redis_url) as api:
        for path in READ_PATHS:
            # A page shows the time it was rendered (to the second), so a GET on either side of
            # the HEAD: the HEAD describes the body a GET at the same moment sends.
            before = await raw(api, "GET", path)
            status, headers, body = await raw(api, "HEAD", path)
            after = await raw(api, "GET", path)
            get_status, get_headers, _ = before
            assert status == get_status, path
            assert body == b"", path
            assert headers["Content-Type"] == get_headers["Content-Type"], path
            described = (int(headers["Content-Length"]), headers.get("ETag"))
            sent = {(len(got[2]), got[1].get("ETag")) for got in (before, after)}
            assert described in sent, path
            if status == 200:
                assert headers.get("ETag"), path


async def test_options_lists_the_methods_of_each_path(redis_url: str) -> None:
    async with running_api(redis_url) as api:
        status, headers, body = await raw(api, "OPTIONS", "/api/v1/plans")
        assert (status, headers["Allow"], body) == (204, "GET, HEAD, OPTIONS", b"")
        status, headers, _ = await raw(api, "OPTIONS", "/api/v1/jobs/scrape-catalog/enqueue")
        assert (status, headers["Allow"]) == (204, "POST, OPTIONS")
        status, headers, _ = await raw(api, "OPTIONS", "/login")
        assert status == 204 and set(headers["Allow"].split(", ")) == {
            "GET",
            "HEAD",
            "POST",
            "OPTIONS",
        }
        # Without CORS configured an OPTIONS is no preflight grant.
        status, headers, _ = await raw(
            api,
            "OPTIONS",
            "/api/v1/plans",
            Origin=DASHBOARD,
            **{"Access-Control-Request-Method": "GET"},
        )
        assert status == 204 and "Access-Control-Allow-Origin" not in headers


async def test_if_none_match_gets_304_until_the_content_changes(
    redis_url: str, redis: Redis
) -> None:
    await seed(redis)
    async with running_api(redis_url) as api:
        for path in ("/feed.atom", "/api/v1/plans", "/api/v1/changes", "/metrics"):
            status, headers, _ = await raw(api, "GET", path, **{"Accept-Encoding": "identity"})
            assert status == 200 and headers["Cache-Control"] == "no-cache", path
            tag = headers["ETag"]
            assert tag.startswith('"') and tag.endswith('"'), tag  # strong
            status, headers, body = await raw(
                api, "GET", path, **{"If-None-Match": tag, "Accept-Encoding": "identity"}
            )
            assert (status, body, headers["ETag"]) == (304, b"", tag), path
            # Weak comparison, lists and the gzip representation's tag all revalidate.
            gzip_tag = tag[:-1] + '-gzip"'
            for sent in (f"W/{tag}", f'"other", {tag}', gzip_tag):
                status, _, _ = await raw(
                    api, "GET", path, **{"If-None-Match": sent, "Accept-Encoding": "identity"}
                )
                assert status == 304, (path, sent)
            status, _, _ = await raw(api, "GET", path, **{"If-None-Match": '"stale"'})
            assert status == 200, path
        _, headers, _ = await raw(api, "GET", "/feed.atom")
        before = headers["ETag"]
        await add_events(redis, [event("plan_removed", "vc2-2c-1gb", at=NOW)])
        status, headers, body = await raw(api, "GET", "/feed.atom", **{"If-None-Match": before})
        assert (
            status == 200 and headers["ETag"] != before and b"vc2-2c-1gb" in gzip.decompress(body)
        )


async def test_large_answers_are_gzipped_when_accepted(redis_url: str, redis: Redis) -> None:
    await seed(redis, plans=200)
    async with running_api(redis_url) as api:
        status, plain_headers, plain = await raw(
            api, "GET", "/api/v1/plans", **{"Accept-Encoding": "identity"}
        )
        assert status == 200 and "Content-Encoding" not in plain_headers
        status, headers, body = await raw(
            api, "GET", "/api/v1/plans", **{"Accept-Encoding": "br;q=1, gzip;q=0.8"}
        )
        assert headers["Content-Encoding"] == "gzip"
        assert "Accept-Encoding" in headers["Vary"]
        assert gzip.decompress(body) == plain
        assert len(body) * 4 < len(plain)
        assert headers["ETag"] != plain_headers["ETag"]  # another representation, another tag
        _, headers, _ = await raw(api, "GET", "/api/v1/plans", **{"Accept-Encoding": "gzip;q=0"})
        assert "Content-Encoding" not in headers
        # Small answers are not worth compressing.
        _, headers, body = await raw(api, "GET", "/healthz", **{"Accept-Encoding": "gzip"})
        assert "Content-Encoding" not in headers and json.loads(body)["status"]
        # The generic client decompresses transparently.
        document = await api.json("GET", "/api/v1/plans")
        assert len(document["plans"]) == 200


async def test_authenticated_reads_are_private(redis_url: str) -> None:
    async with running_api(redis_url, protect_reads=True) as api:
        status, headers, _ = await raw(api, "GET", "/api/v1/jobs", Authorization=f"Bearer {TOKEN}")
        assert (status, headers["Cache-Control"]) == (200, "private, no-cache")
        status, headers, _ = await raw(api, "GET", "/api/v1/jobs")
        assert (status, headers["Cache-Control"]) == (401, "no-store")


async def test_cors_is_off_by_default(redis_url: str) -> None:
    async with running_api(redis_url) as api:
        _, headers, _ = await raw(api, "GET", "/api/v1/plans", Origin=DASHBOARD)
    assert "Access-Control-Allow-Origin" not in headers


async def test_cors_for_configured_origins_on_read_routes_only(redis_url: str) -> None:
    async with running_api(redis_url, cors_origins=[DASHBOARD]) as api:
        _, headers, _ = await raw(api, "GET", "/api/v1/plans", Origin=DASHBOARD)
        assert headers["Access-Control-Allow-Origin"] == DASHBOARD
        assert "ETag" in headers["Access-Control-Expose-Headers"]
        assert "Origin" in headers["Vary"]
        _, headers, _ = await raw(api, "GET", "/api/v1/plans", Origin="https://evil.example")
        assert "Access-Control-Allow-Origin" not in headers
        status, headers, _ = await raw(
            api,
            "OPTIONS",
            "/api/v1/plans",
            Origin=DASHBOARD,
            **{
                "Access-Control-Request-Method": "GET",
                "Access-Control-Request-Headers": "authorization",
            },
        )
        assert status == 204
        assert headers["Access-Control-Allow-Origin"] == DASHBOARD
        assert "Authorization" in headers["Access-Control-Allow-Headers"]
        assert "POST" not in headers["Access-Control-Allow-Methods"]
        # A write route grants nothing, even to a configured origin.
        status, headers, _ = await raw(
            api,
            "OPTIONS",
            "/api/v1/jobs/scrape-catalog/enqueue",
            Origin=DASHBOARD,
            **{"Access-Control-Request-Method": "POST"},
        )
        assert status == 204 and "Access-Control-Allow-Origin" not in headers
    async with running_api(redis_url, cors_origins=["*"]) as api:
        _, headers, _ = await raw(api, "GET", "/feed.atom", Origin="https://any.example")
        assert headers["Access-Control-Allow-Origin"] == "*"


async def test_a_revalidated_feed_is_answered_without_building_it(
    redis_url: str, redis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The feed's tag comes from the change feed's head: a matching If-None-Match is a 304
    without reading the events or rendering the feed; a new event changes the tag."""
    await seed(redis)
    built: list[int] = []
    original = reads_catalog.latest_changes

    async def counted(*args: Any, **kwargs: Any) -> Any:
        built.append(1)
        return await original(*args, **kwargs)

    monkeypatch.setattr(reads_catalog, "latest_changes", counted)
    async with running_api(redis_url, protect_reads=True) as api:
        auth = {"Authorization": f"Bearer {TOKEN}"}
        for query in ("", "?kind=plan_added", "?limit=5"):
            status, headers, _ = await raw(api, "GET", "/feed.atom" + query, **auth)
            assert status == 200 and len(built) == 1, query
            tag = headers["ETag"]
            for encoding in ("identity", "gzip"):
                built.clear()
                status, headers, body = await raw(
                    api,
                    "GET",
                    "/feed.atom" + query,
                    **auth,
                    **{"If-None-Match": tag, "Accept-Encoding": encoding},
                )
                assert (status, body, built) == (304, b"", []), (query, encoding)
            built.clear()
        # Each query has its own tag; without the token, no 304 (nor anything else).
        _, other, _ = await raw(api, "GET", "/feed.atom?limit=5", **auth)
        _, full, _ = await raw(api, "GET", "/feed.atom", **auth)
        assert other["ETag"] != full["ETag"]
        status, _, _ = await raw(api, "GET", "/feed.atom", **{"If-None-Match": full["ETag"]})
        assert status == 401
        built.clear()
        await add_events(redis, [event("plan_removed", "vc2-2c-1gb", at=NOW)])
        status, headers, body = await raw(
            api, "GET", "/feed.atom", **auth, **{"If-None-Match": full["ETag"]}
        )
        assert status == 200 and built == [1] and headers["ETag"] != full["ETag"]
        assert b"vc2-2c-1gb" in gzip.decompress(body)
