"""The harness itself: the private Redis is real and empty, the fake API paginates like Vultr."""

from __future__ import annotations

from redis.asyncio import Redis

from tests.fakes.vultr_api import FakeVultrAPI
from vultr_scraper_core.config import ClientConfig
from vultr_scraper_core.http import HttpClient, create_session


async def test_private_redis_is_real_and_flushed(redis: Redis) -> None:
    assert await redis.dbsize() == 0
    await redis.set("probe", "1")
    info = await redis.info("server")
    assert info["tcp_port"] != 6379  # never the machine's shared instance


async def test_fake_api_walks_cursors_to_meta_total() -> None:
    async with FakeVultrAPI(default_per_page=2) as api:
        config = ClientConfig(rate_limit=0)
        async with create_session(config) as session:
            client = HttpClient(session, config)
            seen: list[str] = []
            cursor = ""
            total = -1
            while True:
                params: dict[str, str | int] = {"type": "all", "per_page": 2}
                if cursor:
                    params["cursor"] = cursor
                document, _ = await client.get_json(f"{api.base_url}/plans", params=params)
                seen.extend(plan["id"] for plan in document["plans"])
                total = document["meta"]["total"]
                cursor = document["meta"]["links"]["next"]
                if not cursor:
                    break
    assert len(seen) == total == len(api.catalogue.plans)
    assert api.count("/v2/plans") == 3
