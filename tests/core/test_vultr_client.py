"""The Vultr client against the fake API: cursors, meta.total, containers, faults, no auth."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest
from aiohttp import web

from tests.fakes.vultr_api import FakeVultrAPI, make_metal_plan, make_plan, on_page
from vultr_scraper_core.config import ClientConfig, VultrConfig
from vultr_scraper_core.http import (
    HttpClient,
    PermanentHttpError,
    ResponseTooLarge,
    TransientHttpError,
    create_session,
)
from vultr_scraper_core.models import decode_json
from vultr_scraper_core.vultr import PLANS, VultrClient

CLIENT = ClientConfig(rate_limit=0, max_attempts=3, backoff_base=0.001, backoff_cap=0.001)


async def _no_sleep(_: float) -> None:
    return None


@pytest.fixture
async def api() -> AsyncIterator[FakeVultrAPI]:
    async with FakeVultrAPI() as fake:
        yield fake


@pytest.fixture
async def client(api: FakeVultrAPI) -> AsyncIterator[VultrClient]:
    async with create_session(CLIENT) as session:
        http = HttpClient(session, CLIENT, sleep=_no_sleep)
        yield VultrClient(http, VultrConfig(base_url=api.base_url, availability_concurrency=2))


async def test_plans_follow_every_cursor_asking_500_per_page(
    api: FakeVultrAPI, client: VultrClient
) -> None:
    api.max_per_page = 2  # the server caps the page size, as Vultr does above 500
    listing = await client.plans()
    assert listing.complete and listing.problem is None
    assert listing.pages == 3
    assert [item["id"] for item in listing.items] == [plan["id"] for plan in api.catalogue.plans]
    assert listing.total == 6
    queries = [request.query for request in api.requests if request.path == "/v2/plans"]
    assert all(query["type"] == "all" and query["per_page"] == "500" for query in queries)
    assert "cursor" not in queries[0] and all(query["cursor"] for query in queries[1:])
    assert len(listing.responses) == 3


async def test_no_authorization_header_is_ever_sent(api: FakeVultrAPI, client: VultrClient) -> None:
    await client.plans()
    await client.regions()
    await client.availability_all(["ewr", "fra"])
    assert api.requests
    for request in api.requests:
        assert not any(name.lower() == "authorization" for name in request.headers)


async def test_prices_arrive_as_exact_decimals(client: VultrClient) -> None:
    listing = await client.plans()
    twin = next(item for item in listing.items if item["id"] == "vc2-1c-1gb-sc1")
    assert twin["monthly_cost"] == Decimal("7.5") and isinstance(twin["monthly_cost"], Decimal)
    assert str(twin["hourly_cost"]) == "0.011"


async def test_metal_rows_come_from_plans_metal(api: FakeVultrAPI, client: VultrClient) -> None:
    listing = await client.metal_plans()
    assert listing.container == "plans_metal"
    assert [item["id"] for item in listing.items] == ["vbm-4c-32gb"]
    assert listing.complete


async def test_regions_and_os_listings(client: VultrClient) -> None:
    regions = await client.regions()
    images = await client.operating_systems()
    assert [item["id"] for item in regions.items] == ["ewr", "fra", "ams", "sao"]
    assert {item["id"] for item in images.items} == {2284, 2136, 159}
    assert regions.complete and images.complete


async def test_a_page_that_keeps_failing_makes_the_listing_incomplete(
    api: FakeVultrAPI, client: VultrClient
) -> None:
    api.max_per_page = 2
    api.fail(on_page("/v2/plans", 2), 503, times=None)
    listing = await client.plans()
    assert not listing.complete
    assert listing.problem is not None and "page 2" in listing.problem
    assert "503" in listing.problem
    assert [item["id"] for item in listing.items] == ["vc2-1c-1gb", "vc2-1c-1gb-sc1"]
    assert api.count("/v2/plans") == 1 + CLIENT.max_attempts  # bounded retries, then stop


async def test_a_page_that_fails_once_is_retried_and_the_listing_is_whole(
    api: FakeVultrAPI, client: VultrClient
) -> None:
    api.max_per_page = 2
    api.fail(on_page("/v2/plans", 3), 502, times=1, html=True)
    api.truncate(on_page("/v2/plans", 2), times=1)
    listing = await client.plans()
    assert listing.complete and len(listing.items) == 6


async def test_a_first_page_failure_propagates(api: FakeVultrAPI, client: VultrClient) -> None:
    api.fail("/v2/regions", 504, times=None, html=True)
    with pytest.raises(TransientHttpError) as caught:
        await client.regions()
    assert caught.value.status == 504
    api.clear_faults()
    api.fail("/v2/plans", 400, times=None)
    with pytest.raises(PermanentHttpError):
        await client.plans()
    assert api.count("/v2/plans") == 1  # permanent errors are not retried


async def test_fewer_items_than_meta_total_is_incomplete(
    api: FakeVultrAPI, client: VultrClient
) -> None:
    api.catalogue.plans.append(dict(api.catalogue.plans[0]))  # a duplicate id: 7 listed, 6 ids
    listing = await client.plans()
    assert listing.total == 7
    assert len(listing.items) == 6
    assert not listing.complete
    assert listing.problem == f"{PLANS}: got 6 of meta.total 7 items"


async def test_missing_container_on_first_page_is_a_permanent_error(
    api: FakeVultrAPI, client: VultrClient
) -> None:
    with pytest.raises(PermanentHttpError, match="no 'widgets' list"):
        await client.listing("/plans", PLANS, "widgets", {})


class _CountingAPI(FakeVultrAPI):
    """Counts availability requests being served at the same time."""

    in_flight = 0
    peak = 0

    async def _availability(self, request: web.Request) -> web.StreamResponse:
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            return await super()._availability(request)
        finally:
            self.in_flight -= 1


async def test_availability_for_every_region_without_type_and_bounded() -> None:
    regions = ["ewr", "fra", "ams", "sao", "ewr", "fra"]
    api = _CountingAPI()
    async with api, create_session(CLIENT) as session:
        api.latency = 0.05  # long enough for requests to overlap
        http = HttpClient(session, CLIENT, sleep=_no_sleep)
        config = VultrConfig(base_url=api.base_url, availability_concurrency=2)
        results = await VultrClient(http, config).availability_all(regions)
    assert [result.region for result in results] == regions
    assert all(result.error is None for result in results)
    assert results[1].document["available_plans"] == api.catalogue.availability["fra"]
    assert api.peak == 2
    assert all("type" not in request.query for request in api.requests)


async def test_availability_failures_are_per_region(api: FakeVultrAPI, client: VultrClient) -> None:
    api.fail("/v2/regions/fra/availability", 500, times=None)
    results = {result.region: result for result in await client.availability_all(["ewr", "fra"])}
    assert results["ewr"].error is None and results["ewr"].response is not None
    assert isinstance(results["fra"].error, TransientHttpError)
    unknown = (await client.availability_all(["zzz"]))[0]
    assert isinstance(unknown.error, PermanentHttpError)
    assert "Invalid region" in str(unknown.error)


async def test_raw_responses_keep_the_exact_bytes(client: VultrClient) -> None:
    listing = await client.plans()
    body = listing.responses[0].body
    assert decode_json(body)["plans"][0]["id"] == "vc2-1c-1gb"
    assert listing.responses[0].status == 200
    assert listing.responses[0].fetched_at.tzinfo is not None


async def test_cursor_loop_is_cut_off(api: FakeVultrAPI, client: VultrClient) -> None:
    # Two items with the same id make the fake hand out the same cursor again and again.
    api.max_per_page = 1
    api.catalogue.plans = [make_plan("a"), make_plan("a"), make_plan("b")]
    listing = await client.plans()
    assert not listing.complete
    assert listing.problem is not None and "does not end" in listing.problem


async def test_spec_container_name_is_accepted_for_metal(api: FakeVultrAPI) -> None:
    # If Vultr ever followed its own spec (plans instead of plans_metal), keep working.
    async with create_session(CLIENT) as session:
        http = HttpClient(session, CLIENT, sleep=_no_sleep)
        client = VultrClient(http, VultrConfig(base_url=api.base_url))
        api.catalogue.plans = [make_metal_plan("vbm-x")]
        listing = await client.listing("/plans", "/v2/plans", "plans_metal", {}, fallback="plans")
    assert listing.container == "plans"
    assert [item["id"] for item in listing.items] == ["vbm-x"]


async def test_concurrent_listings_share_one_client(client: VultrClient) -> None:
    plans, regions = await asyncio.gather(client.plans(), client.regions())
    assert plans.complete and regions.complete


# -- byte caps -------------------------------------------------------------------------------


def capped_client(
    http: HttpClient,
    api: FakeVultrAPI,
    *,
    max_response_bytes: int = 4 * 1024 * 1024,
    max_availability_bytes: int = 256 * 1024,
) -> VultrClient:
    config = VultrConfig(
        base_url=api.base_url,
        max_response_bytes=max_response_bytes,
        max_availability_bytes=max_availability_bytes,
    )
    return VultrClient(http, config)


@pytest.mark.parametrize("announce", [True, False], ids=["content-length", "chunked"])
async def test_a_first_page_over_the_cap_fails_at_once_without_retry(
    api: FakeVultrAPI, announce: bool
) -> None:
    api.flood("/v2/plans", 3_000_000, announce=announce, times=None)
    async with create_session(CLIENT) as session:
        http = HttpClient(session, CLIENT, sleep=_no_sleep)
        client = capped_client(http, api, max_response_bytes=1_000_000)
        with pytest.raises(ResponseTooLarge) as caught:
            await client.plans()
    assert api.count("/v2/plans") == 1  # permanent: the same flood would come again
    message = str(caught.value)
    assert "larger than the cap of 1000000 bytes (vultr.max_response_bytes)" in message
    assert ("announced" in message) is announce


async def test_a_page_under_the_cap_is_read_whole(api: FakeVultrAPI) -> None:
    api.flood("/v2/plans", 200_000, announce=False)
    async with create_session(CLIENT) as session:
        http = HttpClient(session, CLIENT, sleep=_no_sleep)
        listing = await capped_client(http, api, max_response_bytes=1_000_000).plans()
    assert listing.complete and len(listing.items) == listing.total
    assert len({item["id"] for item in listing.items}) > 100


async def test_pages_together_are_held_to_the_cap(api: FakeVultrAPI) -> None:
    api.max_per_page = 2  # three pages of the normal catalogue
    async with create_session(CLIENT) as session:
        http = HttpClient(session, CLIENT, sleep=_no_sleep)
        whole = await capped_client(http, api).plans()
        page_sizes = [len(response.body) for response in whole.responses]
        # Room for the first two pages but not the third.
        limit = page_sizes[0] + page_sizes[1] + page_sizes[2] // 2
        listing = await capped_client(http, api, max_response_bytes=limit).plans()
    assert not listing.complete and len(listing.items) == 4
    assert listing.problem is not None
    assert "page 3 of /v2/plans failed" in listing.problem
    assert f"what 2 page(s) left of vultr.max_response_bytes = {limit}" in listing.problem


async def test_an_availability_answer_over_its_cap_fails_that_region_only(
    api: FakeVultrAPI,
) -> None:
    api.flood("/v2/regions/fra/availability", 300_000, container="available_plans")
    async with create_session(CLIENT) as session:
        http = HttpClient(session, CLIENT, sleep=_no_sleep)
        client = capped_client(http, api, max_availability_bytes=100_000)
        results = {r.region: r for r in await client.availability_all(["ewr", "fra"])}
    assert results["ewr"].error is None
    assert isinstance(results["fra"].error, ResponseTooLarge)
    assert "vultr.max_availability_bytes" in str(results["fra"].error)


async def test_an_id_twice_with_different_content_makes_the_listing_incomplete(
    api: FakeVultrAPI, client: VultrClient
) -> None:
    api.catalogue.plans.append(make_plan("vc2-1c-1gb", monthly_cost=6))
    listing = await client.plans()
    assert not listing.complete
    assert listing.problem == (
        "/v2/plans: 1 id(s) listed twice with different content (vc2-1c-1gb)"
    )
    # An exact repeat (overlapping cursor pages) is harmless.
    api.catalogue.plans[-1] = make_plan("vc2-1c-1gb")
    api.catalogue.plans.append(make_plan("vc2-1c-1gb"))
    assert (await client.plans()).problem == "/v2/plans: got 6 of meta.total 8 items"
