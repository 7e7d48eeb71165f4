"""``/api/v1/apps``, ``/api/v1/k8s-versions``, ``/api/v1/storage-clusters``, ``/api/v1/isos``
and ``/api/v1/databases``: the rest of the catalogue, now or ``at`` a time.

The same query as the CLI commands of the same names (``store.offerings``); records are plain
JSON with ``id`` first and money as exact decimal strings.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any, NamedTuple

from aiohttp import web

from vultr_scraper_core.store import offerings
from vultr_scraper_worker.api.paging import (
    AMOUNT,
    LINK_HEADER,
    PAGE_LIMIT,
    PART,
    amount_text,
    join_cursor,
    key_cursor,
    next_link,
    page_after,
)
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
        count = len(chosen)
        if args["cursor"] is not None:
            chosen = [r for r in chosen if offerings.order_key(collection, r) > args["cursor"]]
        page, has_more = page_after(chosen, args["limit"])
        next_cursor = _CURSORS[collection].of(page[-1]) if has_more else None
        fields: dict[str, Any] = {collection: offerings.documents(page)}
        if collection == "databases":
            fields["prices"] = offerings.database_prices(page, flt.region)
        listing = LISTINGS[collection](
            count=count, at=args["at"], cursor=next_cursor, has_more=has_more, **fields
        )
        return json_response(
            listing, headers=next_link(request, "cursor", next_cursor) if next_cursor else None
        )

    handle.__name__ = f"list_{collection}"
    return handle


class _Cursor(NamedTuple):
    """How a collection's page cursor names its last record, and the parameter that reads it
    back as the collection's sort key (``offerings.order_key``)."""

    of: Callable[[Any], str]
    param: Param


def _id_cursor_key(parts: list[str]) -> Any:
    kind, value = parts
    return offerings.id_order(int(value) if kind == "i" else value)


def _id_cursor(record: Any) -> str:
    return join_cursor("i" if isinstance(record.id, int) else "s", str(record.id))


def _database_cursor_key(parts: list[str]) -> Any:
    monthly, plan = parts
    return offerings.database_order(Decimal(monthly) if monthly else None, plan)


_BY_ID = _Cursor(
    _id_cursor,
    key_cursor(
        "Start after this record: the `cursor` of the previous page (i~numeric id or s~text id)",
        f"^(i~[0-9]{{1,19}}|s~{PART})$",
        "s~fra",
        _id_cursor_key,
    ),
)
_CURSORS = {
    "apps": _BY_ID,
    "storage_clusters": _BY_ID,
    "isos": _BY_ID,
    "k8s_versions": _Cursor(
        lambda record: str(record.id),
        key_cursor(
            "Start after this version: the `cursor` of the previous page (a version id)",
            f"^{PART}$",
            "v1.33.0+1",
            lambda parts: offerings.version_order(parts[0]),
            invalid="two~parts",
        ),
    ),
    "databases": _Cursor(
        lambda record: join_cursor(amount_text(record.monthly_cost), str(record.id)),
        key_cursor(
            "Start after this plan: the `cursor` of the previous page (monthly~plan)",
            f"^({AMOUNT})?~{PART}$",
            "15.00~vultr-dbaas-startup-cc-1-55-2",
            _database_cursor_key,
        ),
    ),
}
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
        params=(*params, _AT, PAGE_LIMIT, _CURSORS[collection].param),
        responses={200: Response("The records", struct=LISTINGS[collection], headers=LINK_HEADER)},
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
