"""``apps``, ``k8s-versions``, ``storage-clusters``, ``isos`` and ``databases``: the rest of
the catalogue, now or ``--at`` a time, as a table or one JSON document (``--json``).

They read through ``vultr_scraper_core.store.offerings`` (the same query as the API); the store
and redis are imported inside the commands, so ``--help`` stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from vultr_scraper_worker.cli.common import (
    State,
    json_option,
    option_value,
    print_json,
    print_table,
    with_redis,
)

if TYPE_CHECKING:
    from datetime import datetime


def _time(text: str) -> datetime:
    from vultr_scraper_core.formats import parse_time

    return parse_time(text)


WHEN = option_value(_time)

at_option = click.option(
    "--at",
    "at",
    metavar="WHEN",
    callback=WHEN,
    help="Answer from history: 2026-01-31T00:00Z, or 7d ago.",
)

# Table columns per collection (JSON output has every field).
COLUMNS = {
    "apps": ("id", "name", "type", "vendor", "short_name", "image_id"),
    "k8s_versions": ("id",),
    "storage_clusters": ("id", "region", "hostname", "deploy"),
    "isos": ("id", "name", "description"),
}
PRICE_COLUMNS = ("plan", "region", "monthly_cost", "nodes", "vcpu", "ram_mb", "disk_gb", "engines")


def _listing(
    state: State,
    collection: str,
    at: datetime | None,
    as_json: bool,
    **filters: Any,
) -> None:
    import msgspec

    from vultr_scraper_core.formats import format_time
    from vultr_scraper_core.store import offerings

    loaded = state.loaded()
    prefix = loaded.config.redis.key_prefix
    flt = offerings.OfferingFilter(**filters)
    found = with_redis(loaded, lambda redis: offerings.records(redis, prefix, collection, at))
    chosen = offerings.matching(collection, found, flt)
    documents = offerings.documents(chosen)
    if collection == "databases":
        prices = offerings.database_prices(chosen, flt.region)
        if as_json:
            print_json(
                {
                    "at": format_time(at),
                    "count": len(documents),
                    "databases": documents,
                    "prices": msgspec.to_builtins(prices),
                }
            )
            return
        if at is not None:
            click.echo(f"# as of {format_time(at)}")
        print_table([msgspec.to_builtins(row) for row in prices], PRICE_COLUMNS)
        return
    if as_json:
        print_json({"at": format_time(at), "count": len(documents), collection: documents})
        return
    if at is not None:
        click.echo(f"# as of {format_time(at)}")
    print_table(documents, COLUMNS[collection])


@click.command("apps", short_help="One-click and Marketplace applications.")
@click.option("--type", "app_type", type=click.Choice(["one-click", "marketplace"]))
@at_option
@json_option
@click.pass_obj
def apps(state: State, app_type: str | None, at: datetime | None, as_json: bool) -> None:
    """Applications Vultr offers (GET /v2/applications), by id."""
    _listing(state, "apps", at, as_json, type=app_type)


@click.command("k8s-versions", short_help="Kubernetes versions offered, newest first.")
@at_option
@json_option
@click.pass_obj
def k8s_versions(state: State, at: datetime | None, as_json: bool) -> None:
    """Kubernetes versions Vultr Kubernetes Engine offers (GET /v2/kubernetes/versions)."""
    _listing(state, "k8s_versions", at, as_json)


@click.command("storage-clusters", short_help="Object-storage clusters and where they deploy.")
@click.option("--region", help="Region id, e.g. ewr.")
@at_option
@json_option
@click.pass_obj
def storage_clusters(state: State, region: str | None, at: datetime | None, as_json: bool) -> None:
    """Object-storage clusters (GET /v2/object-storage/clusters); DEPLOY is whether new
    subscriptions are accepted there."""
    _listing(state, "storage_clusters", at, as_json, region=region)


@click.command("isos", short_help="Public ISOs in Vultr's library.")
@at_option
@json_option
@click.pass_obj
def isos(state: State, at: datetime | None, as_json: bool) -> None:
    """Public ISOs (GET /v2/iso-public), by name."""
    _listing(state, "isos", at, as_json)


@click.command("databases", short_help="Managed database plans and prices per region.")
@click.option("--region", help="Only plans sold in this region, e.g. fra.")
@click.option("--engine", help="Only plans supporting this engine: mysql, pg, valkey, kafka.")
@click.option("--type", "plan_type", help="Plan type, e.g. hobbyist, startup, business.")
@at_option
@json_option
@click.pass_obj
def databases(
    state: State,
    region: str | None,
    engine: str | None,
    plan_type: str | None,
    at: datetime | None,
    as_json: bool,
) -> None:
    """Managed database plans, one row per plan and region with its price, cheapest first.

    Read only when vultr.api_key_file is configured (GET /v2/databases/plans needs a key);
    without one this lists nothing.
    """
    _listing(state, "databases", at, as_json, region=region, engine=engine, type=plan_type)


def register(cli: click.Group) -> None:
    for command in (apps, k8s_versions, storage_clusters, isos, databases):
        cli.add_command(command)
