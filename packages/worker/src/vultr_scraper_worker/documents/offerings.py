"""``/api/v1/apps``, ``/k8s-versions``, ``/storage-clusters``, ``/isos`` and ``/databases``:
``count``, ``at``, a page of records under the collection's own name (plus ``prices`` for the
database plans), ``cursor`` and ``has_more``. One Struct per collection, since the member's name
differs."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import msgspec
from msgspec import Meta

from vultr_scraper_core.store.offerings import DatabasePrice
from vultr_scraper_worker.documents.common import Count, HasMore, NextCursor

# Records are served as Vultr published them, unknown fields kept: an open object with an id.
Record = Annotated[
    dict[str, Any],
    Meta(
        description="The record as Vultr published it (unknown fields kept)",
        extra_json_schema={
            "required": ["id"],
            "properties": {"id": {"type": ["string", "integer"]}},
        },
    ),
]


def _listing(name: str, collection: str, *, prices: bool = False) -> type[msgspec.Struct]:
    fields: list[tuple[str, Any]] = [
        ("count", Annotated[Count, Meta(description="matching records in total")]),
        ("at", datetime | None),
        (collection, list[Record]),
    ]
    if prices:
        fields.append(("prices", list[DatabasePrice]))  # of the plans on this page
    fields += [("cursor", NextCursor), ("has_more", HasMore)]
    return msgspec.defstruct(name, fields, kw_only=True, module=__name__)


# collection -> the Struct of its listing
LISTINGS: dict[str, type[msgspec.Struct]] = {
    "apps": _listing("AppList", "apps"),
    "k8s_versions": _listing("KubernetesVersionList", "k8s_versions"),
    "storage_clusters": _listing("StorageClusterList", "storage_clusters"),
    "isos": _listing("IsoList", "isos"),
    "databases": _listing("DatabasePlanList", "databases", prices=True),
}
