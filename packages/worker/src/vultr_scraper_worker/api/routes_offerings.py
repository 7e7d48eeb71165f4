"""``/api/v1/apps``, ``/api/v1/k8s-versions``, ``/api/v1/storage-clusters``, ``/api/v1/isos``
and ``/api/v1/databases``: the rest of the catalogue, now or ``at`` a time.

The same query as the CLI commands of the same names (``store.offerings``); records are plain
JSON with ``id`` first and money as exact decimal strings.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from vultr_scraper_core.store import offerings
from vultr_scraper_worker.api.params import Param, choice, text, timestamp
from vultr_scraper_worker.api.routing import Response, Route, json_response
from vultr_scraper_worker.api.state import state_of
from vultr_scraper_worker.documents.offerings import LISTINGS

_ID = r"^[A-Za-z0-9._-]+$"


def _handler(collection: str) -> Any:
    async def handle(request: web.Request, args: dict[str, Any]) -> web.StreamResponse:
        state = state_of(request)
        flt = offerings.OfferingFilter(
            region=args.get("region"), type=args.get("type"), engine=args.get("engine")
        )
        found = await offerings.records(state.redis, state.prefix, collection, args["at"])
        chosen = offerings.matching(collection, found, flt)
        fields: dict[str, Any] = {collection: offerings.documents(chosen)}
        if collection == "databases":
            fields["prices"] = offerings.database_prices(chosen, flt.region)
        return json_response(LISTINGS[collection](count=len(chosen), at=args["at"], **fields))

    handle.__name__ = f"list_{collection}"
    return handle


_AT = timestamp("at", "Answer as of this time (RFC 3339, or a date = 00:00 UTC)")
_REGION = text("region", "Region id, e.g. fra", pattern=_ID, max_length=50, example="fra")


def _route(
    path: str, collection: str, operation: str, summary: str, params: tuple[Param, ...] = ()
) -> Route:
    return Route(
        "GET",
        f"/api/v1/{path}",
        _handler(collection),
        operation_id=operation,
        summary=summary,
        tag="catalog",
        params=(*params, _AT),
        responses={200: Response("The records", struct=LISTINGS[collection])},
    )


ROUTES = [
    _route(
        "apps",
        "apps",
        "listApps",
        "One-click and Marketplace applications; `at` for history",
        (choice("type", "Only this application type", ["one-click", "marketplace"]),),
    ),
    _route(
        "k8s-versions",
        "k8s_versions",
        "listKubernetesVersions",
        "Kubernetes versions offered, newest first; `at` for history",
    ),
    _route(
        "storage-clusters",
        "storage_clusters",
        "listStorageClusters",
        "Object-storage clusters and whether they take new subscriptions; `at` for history",
        (_REGION,),
    ),
    _route("isos", "isos", "listPublicIsos", "Public ISOs; `at` for history"),
    _route(
        "databases",
        "databases",
        "listDatabasePlans",
        "Managed database plans and their price per region (needs an API key to be scraped)",
        (
            _REGION,
            text("engine", "Supported engine, e.g. pg", pattern=_ID, max_length=20, example="pg"),
            text("type", "Plan type, e.g. startup", pattern=_ID, max_length=40, example="startup"),
        ),
    ),
]
