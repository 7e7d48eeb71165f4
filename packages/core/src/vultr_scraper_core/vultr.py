"""The Vultr API v2 catalogue client.

Every endpoint but one is public and gets no ``Authorization`` header. The exception is
``/v2/databases/plans``: only ``database_plans(api_key)`` sends the key, and only on that
endpoint's own requests (its cursor pages included).

Every request goes through the shared ``HttpClient`` (pacing, retries, ``Retry-After``). Bodies
are decoded so that non-integer numbers become exact Decimals; a body that is not JSON counts as
a transient failure (a truncated response) and is retried like one.

List endpoints follow ``meta.links.next`` until it is empty and compare the collected count
with ``meta.total``. Failures while walking:

* the first page fails (after the client's retries): the HTTP error propagates, since nothing
  was fetched there is nothing to review and the job as a whole can be retried;
* a later page fails, the cursor loops, or fewer items than ``meta.total`` arrive: the listing
  comes back with ``complete=False`` and a ``problem``, so the caller can quarantine the run
  instead of retiring what it did not see.

Reads are byte-capped and streamed: one endpoint's answer (all its pages together) may be at
most ``vultr.max_response_bytes``, one region's availability at most
``vultr.max_availability_bytes``. Past the cap the request fails with ``ResponseTooLarge``
(permanent, not retried) and no more of the body is held, so a flood from upstream costs at most
the cap in memory. The same id twice in one listing with different content makes the listing
incomplete: which copy is right cannot be told.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote

import msgspec

from vultr_scraper_core.config import VultrConfig
from vultr_scraper_core.http import (
    ByteCap,
    HttpClient,
    HttpError,
    PermanentHttpError,
)
from vultr_scraper_core.models import decode_json
from vultr_scraper_core.store.archive import RawResponse
from vultr_scraper_core.store.codec import utcnow

# Endpoint labels (for drift reports and results), independent of the configured base URL.
PLANS = "/v2/plans"
METAL = "/v2/plans-metal"
REGIONS = "/v2/regions"
OS = "/v2/os"
AVAILABILITY = "/v2/regions/{id}/availability"
APPLICATIONS = "/v2/applications"
K8S_VERSIONS = "/v2/kubernetes/versions"
STORAGE_CLUSTERS = "/v2/object-storage/clusters"
ISOS = "/v2/iso-public"
DATABASES = "/v2/databases/plans"

MAX_PAGES = 200  # 500 items per page: far beyond any real catalogue; stops a cursor loop


class Listing(msgspec.Struct, kw_only=True):
    endpoint: str
    items: list[Any]  # decoded JSON objects, in API order, de-duplicated by id
    total: int | None  # meta.total of the last page read
    pages: int
    responses: list[RawResponse]
    complete: bool
    problem: str | None = None
    container: str = ""  # the key the items were found under


@dataclass(frozen=True)
class AvailabilityResult:
    region: str
    document: Any = None
    response: RawResponse | None = None
    error: HttpError | None = None


class VultrClient:
    def __init__(
        self,
        http: HttpClient,
        config: VultrConfig,
        *,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.http = http
        self.base_url = config.base_url.rstrip("/")
        self.per_page = max(1, min(config.per_page, 500))
        self.concurrency = max(1, config.availability_concurrency)
        self.listing_bytes = config.max_response_bytes
        self.availability_cap = ByteCap(
            limit=config.max_availability_bytes, setting="vultr.max_availability_bytes"
        )
        self.clock = clock

    async def plans(self) -> Listing:
        # type=all explicitly: every family, and robust if the default ever changes.
        return await self.listing("/plans", PLANS, "plans", {"type": "all"})

    async def metal_plans(self) -> Listing:
        # The real container is plans_metal; the spec says plans, so accept that too.
        return await self.listing("/plans-metal", METAL, "plans_metal", {}, fallback="plans")

    async def regions(self) -> Listing:
        return await self.listing("/regions", REGIONS, "regions", {})

    async def operating_systems(self) -> Listing:
        return await self.listing("/os", OS, "os", {})

    async def applications(self) -> Listing:
        # type=all: one-click and Marketplace apps together.
        return await self.listing("/applications", APPLICATIONS, "applications", {"type": "all"})

    async def kubernetes_versions(self) -> Listing:
        return await self.plain_list("/kubernetes/versions", K8S_VERSIONS, "versions")

    async def storage_clusters(self) -> Listing:
        return await self.listing("/object-storage/clusters", STORAGE_CLUSTERS, "clusters", {})

    async def public_isos(self) -> Listing:
        return await self.listing("/iso-public", ISOS, "public_isos", {})

    async def database_plans(self, api_key: str) -> Listing:
        """Managed database plans: the one endpoint that needs (and gets) the API key."""
        headers = {"Authorization": f"Bearer {api_key}"}
        return await self.listing("/databases/plans", DATABASES, "plans", {}, headers=headers)

    async def plain_list(self, path: str, endpoint: str, container: str) -> Listing:
        """An endpoint that answers one unpaged list (no ``meta``): complete when the list is
        there. Plain strings become ``{"id": value}``; objects keep their fields, with
        ``version`` standing in for a missing ``id`` (a drifted shape stays readable)."""
        cap = ByteCap(limit=self.listing_bytes, setting="vultr.max_response_bytes")
        document, response = await self.get(path, cap=cap)
        batch, found_under = _container(document, container, None)
        if batch is None:
            message = f"{endpoint} response has no {container!r} list"
            raise PermanentHttpError(message, url=response.url, status=response.status)
        items: dict[str, Any] = {}
        for item in batch:
            if isinstance(item, str):
                item = {"id": item}
            elif isinstance(item, Mapping) and "id" not in item and "version" in item:
                item = {"id": item["version"], **item}
            key = str(item.get("id")) if isinstance(item, Mapping) else repr(item)
            items.setdefault(key, item)
        return Listing(
            endpoint=endpoint,
            items=list(items.values()),
            total=len(batch),
            pages=1,
            responses=[response],
            complete=True,
            container=found_under,
        )

    async def get(
        self,
        path: str,
        params: Mapping[str, str | int] | None = None,
        *,
        cap: ByteCap,
        headers: Mapping[str, str] | None = None,
    ) -> tuple[Any, RawResponse]:
        """GET ``path`` with the shared retry policy, reading at most ``cap``; decode exactly."""
        url = self.base_url + path

        async def attempt() -> tuple[Any, RawResponse]:
            response = await self.http.request_once(
                "GET", url, params=params, cap=cap, headers=headers
            )
            document = response.json(decode_json)
            raw = RawResponse(
                url=response.url,
                status=response.status,
                headers=response.headers,
                body=response.body,
                fetched_at=self.clock(),
            )
            return document, raw

        return await self.http.retrying(url, attempt)

    async def listing(
        self,
        path: str,
        endpoint: str,
        container: str,
        params: Mapping[str, str | int],
        *,
        fallback: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Listing:
        items: dict[str, Any] = {}
        conflicting: list[str] = []  # ids seen twice with different content
        responses: list[RawResponse] = []
        budget = self.listing_bytes  # what the pages still to come may use together
        total: int | None = None
        cursor = ""
        seen_cursors: set[str] = set()
        found_under = container
        page = 0

        def partial(problem: str) -> Listing:
            return Listing(
                endpoint=endpoint,
                items=list(items.values()),
                total=total,
                pages=page,
                responses=responses,
                complete=False,
                problem=problem,
                container=found_under,
            )

        while True:
            page += 1
            query: dict[str, str | int] = {**params, "per_page": self.per_page}
            if cursor:
                query["cursor"] = cursor
            setting = "vultr.max_response_bytes"
            if page > 1:
                setting = f"what {page - 1} page(s) left of {setting} = {self.listing_bytes}"
            cap = ByteCap(limit=max(0, budget), setting=setting)
            try:
                document, response = await self.get(path, query, cap=cap, headers=headers)
            except HttpError as error:
                if page == 1:
                    raise
                return partial(f"page {page} of {endpoint} failed after retries: {error}")
            responses.append(response)
            budget -= len(response.body)
            batch, found_under = _container(document, container, fallback)
            if batch is None:
                message = f"{endpoint} response has no {container!r} list"
                if page == 1:
                    raise PermanentHttpError(message, url=response.url, status=response.status)
                return partial(f"page {page}: {message}")
            for item in batch:
                key = str(item.get("id")) if isinstance(item, Mapping) else repr(item)
                known = items.setdefault(key, item)
                # An exact repeat is harmless (cursor pages can overlap); a different record
                # under the same id is a malformed answer.
                if known is not item and known != item:
                    conflicting.append(key)
            meta = document.get("meta") if isinstance(document, Mapping) else None
            total = _total(meta)
            cursor = _next_cursor(meta)
            if not cursor:
                break
            if cursor in seen_cursors or page >= MAX_PAGES:
                return partial(f"{endpoint}: pagination does not end (page {page})")
            seen_cursors.add(cursor)

        listing = Listing(
            endpoint=endpoint,
            items=list(items.values()),
            total=total,
            pages=page,
            responses=responses,
            complete=True,
            container=found_under,
        )
        if conflicting:
            listing.complete = False
            shown = ", ".join(sorted(set(conflicting))[:3])
            listing.problem = (
                f"{endpoint}: {len(set(conflicting))} id(s) listed twice with different "
                f"content ({shown})"
            )
        elif total is None:
            listing.complete = False
            listing.problem = f"{endpoint}: meta.total missing, completeness unknown"
        elif len(listing.items) < total:
            listing.complete = False
            listing.problem = f"{endpoint}: got {len(listing.items)} of meta.total {total} items"
        return listing

    async def availability(self, region: str) -> tuple[Any, RawResponse]:
        # No type filter: the id prefix does not tell the type, a wrong guess hides stock.
        path = f"/regions/{quote(region, safe='')}/availability"
        return await self.get(path, cap=self.availability_cap)

    async def availability_all(self, regions: Sequence[str]) -> list[AvailabilityResult]:
        """Every region's availability with bounded concurrency; failures are per region."""
        limit = asyncio.Semaphore(self.concurrency)

        async def one(region: str) -> AvailabilityResult:
            async with limit:
                try:
                    document, response = await self.availability(region)
                except HttpError as error:
                    return AvailabilityResult(region=region, error=error)
            return AvailabilityResult(region=region, document=document, response=response)

        return list(await asyncio.gather(*(one(region) for region in regions)))


def _container(document: Any, key: str, fallback: str | None) -> tuple[list[Any] | None, str]:
    if not isinstance(document, Mapping):
        return None, key
    for name in (key, fallback):
        if name is not None and isinstance(document.get(name), list):
            return list(document[name]), name
    return None, key


def _total(meta: Any) -> int | None:
    value = meta.get("total") if isinstance(meta, Mapping) else None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _next_cursor(meta: Any) -> str:
    links = meta.get("links") if isinstance(meta, Mapping) else None
    value = links.get("next") if isinstance(links, Mapping) else None
    return value if isinstance(value, str) else ""
