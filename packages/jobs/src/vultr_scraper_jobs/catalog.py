"""The catalogue job: fetch plans, metal plans, regions, OS images and the rest of the public
catalogue (applications, Kubernetes versions, object-storage clusters, public ISOs; managed
database plans when an API key is configured); gate; diff; commit.

``scrape_vultr_pricing(ctx)`` runs one scrape:

1. fetch every list endpoint, following cursors (``vultr_scraper_core.vultr``);
2. archive the raw bodies, parse them off the event loop;
3. under an optimistic transaction on the current snapshot: pass the candidate through the
   quarantine gate (``gate.py``); if it passes, diff it against the committed snapshot and
   commit the new snapshot, its change events, the record versions and the accepted schema
   shapes in one MULTI/EXEC. A rerun over identical data therefore writes no event, and a
   process killed at any point leaves either the old or the new snapshot.

A collection that is switched off (``catalog.include``, ``catalog.include_os``, databases
without a key) is not fetched and stays as committed. A database-plan request that Vultr
refuses (a bad or unauthorised key) is one clear error in the result (``errors.databases``)
and leaves the database plans as committed; the rest of the scrape goes on.

Errors: an HTTP error on the first page of any endpoint (after the HTTP client's bounded
retries) propagates out of the job, because nothing was fetched and the worker's retry with
backoff is the right remedy. A failure after some pages were read makes the snapshot
incomplete instead: the run is quarantined (``status: "quarantined"``), nothing is retired,
and the current catalogue stays. An operator can accept a quarantined snapshot with
``vultr-scraper quarantine accept``; accepting an incomplete one adds and updates records but
still retires nothing from the collections that were incomplete.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Collection, Mapping
from datetime import datetime
from typing import Any

import msgspec
from loguru import logger
from redis.asyncio import Redis

from vultr_scraper_core.config import CatalogConfig, Config
from vultr_scraper_core.formats import format_instant
from vultr_scraper_core.http import HttpError
from vultr_scraper_core.models import (
    COLLECTIONS,
    Catalogue,
    Shape,
    documented_shape,
    field_census,
    observe_fields,
    parse_records,
)
from vultr_scraper_core.store.archive import RawArchive
from vultr_scraper_core.store.catalog import (
    CatalogueStore,
    FetchedSnapshot,
    PendingSnapshot,
    QuarantineInfo,
)
from vultr_scraper_core.store.changes import ChangeEvent, EventKind
from vultr_scraper_core.store.codec import utcnow
from vultr_scraper_core.store.collection_errors import CollectionErrors
from vultr_scraper_core.vultr import (
    APPLICATIONS,
    DATABASES,
    ISOS,
    K8S_VERSIONS,
    METAL,
    OS,
    PLANS,
    REGIONS,
    STORAGE_CLUSTERS,
    Listing,
    VultrClient,
)
from vultr_scraper_jobs.context import deps
from vultr_scraper_jobs.diff import (
    diff_catalogues,
    fold_new_fields,
    keep_missing,
    keep_readable_prices,
    schema_drift,
)
from vultr_scraper_jobs.gate import evaluate

ENDPOINTS = {
    "plans": PLANS,
    "metal": METAL,
    "regions": REGIONS,
    "os": OS,
    "apps": APPLICATIONS,
    "k8s_versions": K8S_VERSIONS,
    "storage_clusters": STORAGE_CLUSTERS,
    "isos": ISOS,
    "databases": DATABASES,
}
COLLECTION_OF = {endpoint: name for name, endpoint in ENDPOINTS.items()}
MAX_TX_ATTEMPTS = 5


async def scrape_vultr_pricing(ctx: Mapping[str, Any]) -> dict[str, Any]:
    """The ``scrape-catalog`` job."""
    job = deps(ctx)
    prefix = job.config.redis.key_prefix
    store = CatalogueStore(job.redis, prefix)
    await store.mark_attempt(utcnow())
    client = VultrClient(job.http, job.config.vultr)
    errors: dict[str, str] = {}
    listings = await fetch_listings(
        client,
        include_os=job.config.catalog.include_os,
        include=job.config.catalog.include,
        api_key=job.secrets.vultr_api_key,
        errors=errors,
    )
    if job.config.catalog.archive_retention_days > 0:
        await RawArchive(job.redis, prefix).put(
            [response for listing in listings.values() for response in listing.responses]
        )
    snapshot = await asyncio.to_thread(build_snapshot, listings, utcnow())
    result = await settle(store, snapshot, job.config.catalog)
    await CollectionErrors(job.redis, prefix).record(errors, read=listings)
    if errors:
        result["errors"] = errors
        for name, message in errors.items():
            logger.bind(collection=name).error("catalogue scrape: {}", message)
    logger.bind(**_log_fields(result)).info("catalogue scrape: {}", result["status"])
    return result


async def fetch_listings(
    client: VultrClient,
    *,
    include_os: bool,
    include: Collection[str] = (),
    api_key: str | None = None,
    errors: dict[str, str] | None = None,
) -> dict[str, Listing]:
    """Every list endpoint switched on, one after the other (the rate limit paces them anyway).

    ``include`` names the optional collections to read; ``databases`` also needs ``api_key``,
    the only request that carries it. A refused database request is recorded in ``errors``
    (the collection is then left out, so it stays as committed) instead of failing the rest."""
    listings = {
        "regions": await client.regions(),
        "plans": await client.plans(),
        "metal": await client.metal_plans(),
    }
    if include_os:
        listings["os"] = await client.operating_systems()
    public = {
        "apps": client.applications,
        "k8s_versions": client.kubernetes_versions,
        "storage_clusters": client.storage_clusters,
        "isos": client.public_isos,
    }
    for name, fetch in public.items():
        if name in include:
            listings[name] = await fetch()
    if "databases" in include and api_key:
        try:
            listings["databases"] = await client.database_plans(api_key)
        except HttpError as error:
            if errors is None:
                raise
            errors["databases"] = database_error(error)
    return listings


def database_error(error: HttpError) -> str:
    """One clear sentence for a failed database-plan request (never the key itself)."""
    if error.status in (401, 403):
        return (
            f"Vultr refused the API key from vultr.api_key_file on {DATABASES} "
            f"(HTTP {error.status}: {error.reason}); database plans were not updated"
        )
    return f"{DATABASES} failed ({error}); database plans were not updated"


def build_snapshot(listings: Mapping[str, Listing], fetched_at: datetime) -> FetchedSnapshot:
    """Parse the listings (CPU work: call it in a thread)."""
    collections: dict[str, Any] = {}
    incomplete: dict[str, str] = {}
    for name, listing in listings.items():
        records, problems = parse_records(COLLECTIONS[name], listing.items)
        collections[name] = records
        if not listing.complete:
            incomplete[name] = listing.problem or f"{listing.endpoint}: incomplete"
        elif problems:
            # An unreadable item is a plan we cannot see; never retire because of it.
            incomplete[name] = f"{listing.endpoint}: {len(problems)} unreadable item(s): " + (
                "; ".join(problems[:3])
            )
    return FetchedSnapshot(
        catalogue=Catalogue(**collections),
        fetched_at=fetched_at,
        checked=list(listings),
        incomplete=incomplete,
        observations={
            listing.endpoint: observe_fields(listing.items) for listing in listings.values()
        },
        census={listing.endpoint: field_census(listing.items) for listing in listings.values()},
        totals={name: listing.total for name, listing in listings.items()},
        requests=sum(len(listing.responses) for listing in listings.values()),
    )


async def settle(
    store: CatalogueStore,
    snapshot: FetchedSnapshot,
    config: CatalogConfig,
    *,
    accept: bool = False,
    clock: Callable[[], datetime] = utcnow,
) -> dict[str, Any]:
    """Gate ``snapshot`` and commit or quarantine it; ``accept`` skips the gate."""
    for _ in range(MAX_TX_ATTEMPTS):
        async with store.transaction() as tx:
            current = tx.current
            last = current.meta.fetched_at
            if last is not None and snapshot.fetched_at <= last:
                # A newer snapshot was committed meanwhile; ours must not overwrite it.
                return {**_empty_result("success", snapshot), "superseded": True}
            fetched = fetched_catalogue(current.catalogue, snapshot)
            if not accept:
                verdict = evaluate(
                    current.catalogue,
                    fetched,
                    problems=list(snapshot.incomplete.values()),
                    checked=snapshot.checked,
                    config=config.gate,
                )
                if not verdict.accepted:
                    info = QuarantineInfo(
                        fetched_at=snapshot.fetched_at,
                        quarantined_at=clock(),
                        reasons=verdict.reasons,
                        checks=verdict.checks,
                        complete=not snapshot.incomplete,
                        counts=fetched.counts(),
                        totals=snapshot.totals,
                    )
                    tx.quarantine(PendingSnapshot(info=info, snapshot=snapshot))
                    if await tx.execute():
                        return {
                            **_empty_result("quarantined", snapshot),
                            "reason": info.reason,
                            "reasons": info.reasons,
                            "checks": info.checks,
                            "complete": info.complete,
                        }
                    continue
            new = commit_candidate(current.catalogue, snapshot)
            events = await asyncio.to_thread(
                catalogue_changes, current.catalogue, new, at=snapshot.fetched_at
            )
            drift, shapes = drift_events(current.shapes, snapshot)
            all_events = [*drift, *events]
            version = tx.commit(
                new,
                all_events,
                fetched_at=snapshot.fetched_at,
                committed_at=clock(),
                shapes=shapes,
            )
            if await tx.execute():
                result = _success_result(snapshot, new, all_events, version)
                if accept:
                    result["accepted"] = True
                return result
    raise RuntimeError(f"the catalogue changed concurrently {MAX_TX_ATTEMPTS} times; giving up")


def fetched_catalogue(current: Catalogue, snapshot: FetchedSnapshot) -> Catalogue:
    """What the run saw; collections it did not fetch carried over from ``current``."""
    skipped = {
        name: dict(getattr(current, name)) for name in COLLECTIONS if name not in snapshot.checked
    }
    return msgspec.structs.replace(snapshot.catalogue, **skipped) if skipped else snapshot.catalogue


def commit_candidate(current: Catalogue, snapshot: FetchedSnapshot) -> Catalogue:
    """The catalogue committing ``snapshot`` makes current: nothing retired from incomplete
    collections, and no unreadable price in place of a readable one."""
    fetched = fetched_catalogue(current, snapshot)
    return keep_readable_prices(current, keep_missing(current, fetched, snapshot.incomplete))


def catalogue_changes(current: Catalogue, new: Catalogue, *, at: datetime) -> list[ChangeEvent]:
    """The change events of committing ``new`` (CPU work: call it in a thread); a field new to
    a whole collection is left to its schema-drift event."""
    return fold_new_fields(diff_catalogues(current, new, at=at), current)


def drift_events(
    accepted: Mapping[str, Shape], snapshot: FetchedSnapshot
) -> tuple[list[ChangeEvent], dict[str, Shape]]:
    """Drift per endpoint against the accepted shape (first time: the documented one)."""
    events: list[ChangeEvent] = []
    shapes: dict[str, Shape] = {}
    for endpoint, observation in sorted(snapshot.observations.items()):
        record_type = COLLECTIONS[COLLECTION_OF[endpoint]]
        known = accepted.get(endpoint) or documented_shape(record_type)
        found, merged = schema_drift(
            endpoint,
            known,
            observation,
            at=snapshot.fetched_at,
            census=snapshot.census.get(endpoint),
        )
        events.extend(found)
        shapes[endpoint] = merged
    return events, shapes


async def accept_quarantine(redis: Redis, config: Config) -> dict[str, Any]:
    """Make the quarantined snapshot current (the operator's decision)."""
    store = CatalogueStore(redis, config.redis.key_prefix)
    pending = await store.pending()
    if pending is None:
        return {"status": "failed", "reason": "nothing is quarantined", "updated": 0}
    result = await settle(store, pending.snapshot, config.catalog, accept=True)
    if result.get("superseded"):
        await store.discard_quarantine()
    return result


def _empty_result(status: str, snapshot: FetchedSnapshot) -> dict[str, Any]:
    return {
        "status": status,
        "updated": 0,
        "added": 0,
        "retired": 0,
        "events": 0,
        "counts": snapshot.catalogue.counts(),
        "fetched_at": format_instant(snapshot.fetched_at),
        "requests": snapshot.requests,
    }


def _success_result(
    snapshot: FetchedSnapshot, new: Catalogue, events: list[ChangeEvent], version: int
) -> dict[str, Any]:
    kinds = Counter(str(event.kind) for event in events)
    changed_plans = {
        (event.detail.get("collection"), event.subject)
        for event in events
        if event.detail.get("collection") in ("plans", "metal")
    }
    result = {
        **_empty_result("success", snapshot),
        "updated": len(changed_plans),
        "added": kinds[EventKind.PLAN_ADDED],
        "retired": kinds[EventKind.PLAN_RETIRED],
        "events": len(events),
        "price_changes": kinds[EventKind.PRICE_CHANGED],
        "spec_changes": kinds[EventKind.SPEC_CHANGED],
        "regions_added": kinds[EventKind.REGION_ADDED],
        "regions_removed": kinds[EventKind.REGION_REMOVED],
        "schema_drift": kinds[EventKind.SCHEMA_DRIFT],
        # Change events per collection (drift, which names an endpoint, is not counted here).
        "changes": dict(
            sorted(
                Counter(
                    str(e.detail["collection"]) for e in events if "collection" in e.detail
                ).items()
            )
        ),
        "counts": new.counts(),
        "version": version,
    }
    if snapshot.incomplete:
        result["incomplete"] = sorted(snapshot.incomplete)
    return result


def _log_fields(result: Mapping[str, Any]) -> dict[str, Any]:
    keys = ("status", "updated", "added", "retired", "events", "reason")
    return {key: result[key] for key in keys if key in result}
