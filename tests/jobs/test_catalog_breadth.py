"""The rest of the public catalogue: applications, Kubernetes versions, object-storage clusters,
public ISOs, OS images, region services and (with an API key) managed database plans.

Per collection: parsing of documented and drifted shapes, diff events with old and new values,
the gate on a partial or empty answer, and the scrape end to end against the fake Vultr API
on loopback with a real Redis.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from redis.asyncio import Redis

from tests.fakes.vultr_api import FakeCatalogue, FakeVultrAPI, make_app, on_page
from vultr_scraper_core.config import CatalogConfig, ClientConfig, Config, Secrets, VultrConfig
from vultr_scraper_core.http import HttpClient, HttpError, RateLimiter, create_session
from vultr_scraper_core.models import (
    Application,
    Catalogue,
    DatabasePlan,
    KubernetesVersion,
    PublicIso,
    Region,
    StorageCluster,
    documented_shape,
    parse_record,
    parse_records,
)
from vultr_scraper_core.store.catalog import CatalogueStore
from vultr_scraper_core.store.changes import ChangeEvent, ChangeFeed, EventKind
from vultr_scraper_core.vultr import VultrClient
from vultr_scraper_jobs.catalog import scrape_vultr_pricing
from vultr_scraper_jobs.context import make_context
from vultr_scraper_jobs.diff import apply_events, diff_catalogues
from vultr_scraper_jobs.gate import evaluate

AT = datetime(2026, 12, 1, tzinfo=UTC)
KEY = "test-api-key"


async def _no_sleep(_: float) -> None:
    return None


@dataclass
class Env:
    api: FakeVultrAPI
    ctx: dict[str, Any]
    redis: Redis

    @property
    def catalogue(self) -> FakeCatalogue:
        return self.api.catalogue

    async def scrape(self) -> dict[str, Any]:
        return await scrape_vultr_pricing(self.ctx)

    async def events(self, *kinds: str) -> list[ChangeEvent]:
        found = await ChangeFeed(self.redis, "vs").read(limit=10_000)
        return [event for event in found if not kinds or event.kind in kinds]

    async def committed(self) -> Catalogue:
        return (await CatalogueStore(self.redis, "vs").load()).catalogue


@asynccontextmanager
async def env_for(
    redis: Redis, *, api_key: str | None = None, per_page: int = 500, **catalog: Any
) -> AsyncIterator[Env]:
    async with FakeVultrAPI() as api:
        config = Config(
            vultr=VultrConfig(base_url=api.base_url, per_page=per_page),
            client=ClientConfig(
                rate_limit=0, max_attempts=2, backoff_base=0.001, backoff_cap=0.001
            ),
            catalog=CatalogConfig(**catalog),
        )
        async with create_session(config.client) as session:
            http = HttpClient(session, config.client, sleep=_no_sleep)
            ctx = make_context(
                config=config, secrets=Secrets(vultr_api_key=api_key), redis=redis, http=http
            )
            yield Env(api=api, ctx=ctx, redis=redis)


# -- parsing: documented and drifted shapes ---------------------------------------------------


def test_documented_shapes_parse_exactly() -> None:
    app = parse_record(Application, make_app(1028, "WordPress", type="marketplace"))
    assert (app.id, app.type, app.image_id, app.extra) == (1028, "marketplace", "", {})
    cluster = parse_record(
        StorageCluster,
        {"id": 2, "region": "ewr", "hostname": "ewr1.vultrobjects.com", "deploy": "yes"},
    )
    assert cluster.deployable is True and cluster.region == "ewr" and cluster.extra == {}
    iso = parse_record(PublicIso, {"id": "abc", "name": "Alpine", "description": "d", "md5sum": ""})
    assert iso.id == "abc" and iso.md5sum == ""
    database = parse_record(
        DatabasePlan,
        {
            "id": "vultr-dbaas-startup-cc-1-55-2",
            "number_of_nodes": 1,
            "type": "startup",
            "vcpu_count": 1,
            "ram": 2048,
            "disk": 55,
            "monthly_cost": 30,
            "supported_engines": {"mysql": True, "pg": True, "valkey": False},
            "max_connections": {"mysql": 150, "pg": 47},
            "locations": ["ewr"],
        },
    )
    assert database.monthly_cost == Decimal(30) and database.engines == ["mysql", "pg"]
    assert database.extra == {} and database.prices("ewr")["monthly_cost"] == Decimal(30)
    assert parse_record(KubernetesVersion, {"id": "v1.33.0+1"}).id == "v1.33.0+1"
    # The documented shape is what drift is measured against: no drift on documented fields.
    assert documented_shape(StorageCluster)["deploy"] == ("null", "string")


def test_drifted_shapes_are_kept_not_crashed_on() -> None:
    # A new field, a changed type and a fractional price: all kept, none lost.
    app = parse_record(Application, {"id": 5, "name": 7, "categories": ["cms"]})
    assert app.name is None and app.extra == {"name": 7, "categories": ["cms"]}
    cluster = parse_record(StorageCluster, {"id": "9", "deploy": True, "tier": "premium"})
    assert cluster.id == 9 and cluster.extra == {"deploy": True, "tier": "premium"}
    database = parse_record(DatabasePlan, {"id": "d", "monthly_cost": Decimal("17.5")})
    assert database.monthly_cost == Decimal("17.5")
    records, problems = parse_records(PublicIso, [{"name": "no id"}, {"id": "x"}])
    assert list(records) == ["x"] and problems == ["item 0: object has no id"]


async def test_kubernetes_versions_as_strings_or_objects(redis: Redis) -> None:
    async with env_for(redis) as env:
        client = VultrClient(env.ctx["http"], env.ctx["config"].vultr)
        listing = await client.kubernetes_versions()
        assert listing.complete and listing.pages == 1
        assert [item["id"] for item in listing.items] == env.catalogue.k8s_versions
        # A drifted shape (objects with a version field) stays readable, its fields kept.
        env.catalogue.k8s_versions = [{"version": "v1.34.0+1", "type": "stable"}]
        drifted = await client.kubernetes_versions()
    assert drifted.items == [{"id": "v1.34.0+1", "version": "v1.34.0+1", "type": "stable"}]
    record = parse_record(KubernetesVersion, drifted.items[0])
    assert record.extra == {"version": "v1.34.0+1", "type": "stable"}


# -- diff events with old and new values ------------------------------------------------------


def _catalogue(**collections: dict[str, Any]) -> Catalogue:
    return Catalogue(**collections)


def test_every_collection_has_typed_events_that_rebuild_the_catalogue() -> None:
    old = _catalogue(
        apps={"1": parse_record(Application, make_app(1, "LEMP"))},
        k8s_versions={"v1.31.8+1": KubernetesVersion(id="v1.31.8+1")},
        storage_clusters={
            "2": parse_record(StorageCluster, {"id": 2, "region": "ewr", "deploy": "yes"}),
            "3": parse_record(StorageCluster, {"id": 3, "region": "sjc", "deploy": "yes"}),
        },
        isos={"a": parse_record(PublicIso, {"id": "a", "name": "Alpine 3.19"})},
        regions={
            "sgp": parse_record(
                Region, {"id": "sgp", "city": "Singapore", "options": ["ddos_protection"]}
            )
        },
        databases={
            "db1": parse_record(DatabasePlan, {"id": "db1", "monthly_cost": 15, "locations": []})
        },
    )
    new = _catalogue(
        apps={"2": parse_record(Application, make_app(2, "Docker"))},
        k8s_versions={"v1.33.0+1": KubernetesVersion(id="v1.33.0+1")},
        storage_clusters={
            "2": parse_record(StorageCluster, {"id": 2, "region": "ewr", "deploy": "no"}),
            "4": parse_record(StorageCluster, {"id": 4, "region": "ams", "deploy": "yes"}),
        },
        isos={"a": parse_record(PublicIso, {"id": "a", "name": "Alpine 3.20"})},
        regions={
            "sgp": parse_record(
                Region,
                {"id": "sgp", "city": "Singapore", "options": ["load_balancers", "kubernetes"]},
            )
        },
        databases={
            "db1": parse_record(DatabasePlan, {"id": "db1", "monthly_cost": 20, "locations": []})
        },
    )
    events = diff_catalogues(old, new, at=AT)
    by_kind: dict[str, list[ChangeEvent]] = {}
    for event in events:
        by_kind.setdefault(str(event.kind), []).append(event)
    assert [(e.subject, e.new["name"]) for e in by_kind["app_added"]] == [("2", "Docker")]
    assert [(e.subject, e.old["name"]) for e in by_kind["app_removed"]] == [("1", "LEMP")]
    assert [e.subject for e in by_kind["k8s_version_added"]] == ["v1.33.0+1"]
    assert [e.subject for e in by_kind["k8s_version_removed"]] == ["v1.31.8+1"]
    assert [e.subject for e in by_kind["storage_cluster_added"]] == ["4"]
    assert [e.subject for e in by_kind["storage_cluster_removed"]] == ["3"]
    (deploy,) = by_kind["storage_availability_changed"]
    assert (deploy.subject, deploy.region, deploy.field, deploy.old, deploy.new) == (
        "2",
        "ewr",
        "deploy",
        "yes",
        "no",
    )
    (renamed,) = [e for e in by_kind["spec_changed"] if e.detail["collection"] == "isos"]
    assert (renamed.field, renamed.old, renamed.new) == ("name", "Alpine 3.19", "Alpine 3.20")
    services = sorted(
        (str(e.kind), e.subject, e.field) for e in events if e.kind.startswith("region_service")
    )
    assert services == [
        ("region_service_added", "sgp", "kubernetes"),
        ("region_service_added", "sgp", "load_balancers"),
        ("region_service_removed", "sgp", "ddos_protection"),
    ]
    (price,) = by_kind["price_changed"]
    assert price.detail["collection"] == "databases"
    assert (price.subject, price.field, price.old, price.new) == ("db1", "monthly_cost", "15", "20")
    # The events carry enough to rebuild the new catalogue exactly.
    assert apply_events(old, events) == new


def test_region_options_reordered_only_is_a_spec_change() -> None:
    def region(options: list[str] | None) -> Region:
        raw: dict[str, Any] = {"id": "ams"}
        if options is not None:
            raw["options"] = options
        return parse_record(Region, raw)

    for before, after in (
        (["a", "b"], ["b", "a"]),
        (["a"], None),
        (None, []),
        (None, ["a"]),
        (["a", "b"], ["c", "a"]),
    ):
        old = _catalogue(regions={"ams": region(before)})
        new = _catalogue(regions={"ams": region(after)})
        events = diff_catalogues(old, new, at=AT)
        assert events, (before, after)
        assert apply_events(old, events) == new, (before, after)


def test_os_images_get_change_events() -> None:
    from vultr_scraper_core.models import OperatingSystem

    old = _catalogue(os={"2284": parse_record(OperatingSystem, {"id": 2284, "name": "Ubuntu"})})
    new = _catalogue(os={"2136": parse_record(OperatingSystem, {"id": 2136, "name": "Debian"})})
    kinds = sorted((str(e.kind), e.subject) for e in diff_catalogues(old, new, at=AT))
    assert kinds == [("os_added", "2136"), ("os_removed", "2284")]


# -- the gate on partial and empty answers ----------------------------------------------------


def test_an_emptied_collection_is_held_back() -> None:
    current = _catalogue(k8s_versions={"v1": KubernetesVersion(id="v1")})
    verdict = evaluate(
        current,
        _catalogue(),
        problems=[],
        checked=["k8s_versions"],
        config=CatalogConfig().gate,
    )
    assert verdict.checks == ["empty"]
    assert "no k8s_versions returned, 1 committed" in verdict.reasons


@pytest.mark.parametrize(
    ("collection", "path", "mutate"),
    [
        ("apps", "/v2/applications", lambda fake: fake.apps.clear()),
        ("k8s_versions", "/v2/kubernetes/versions", lambda fake: fake.k8s_versions.clear()),
        ("storage_clusters", "/v2/object-storage/clusters", lambda f: f.storage_clusters.clear()),
        ("isos", "/v2/iso-public", lambda fake: fake.isos.clear()),
    ],
)
async def test_empty_answer_quarantines_and_changes_nothing(
    redis: Redis, collection: str, path: str, mutate: Any
) -> None:
    async with env_for(redis) as env:
        assert (await env.scrape())["status"] == "success"
        before = await env.committed()
        events_before = await env.events()
        mutate(env.catalogue)
        result = await env.scrape()
        assert env.api.count(path) == 2
        after = await env.committed()
        assert await env.events() == events_before
    assert result["status"] == "quarantined" and "empty" in result["checks"]
    assert any(collection in reason for reason in result["reasons"])
    assert getattr(after, collection) == getattr(before, collection) != {}


async def test_a_partial_listing_quarantines_and_the_next_good_one_is_clean(redis: Redis) -> None:
    async with env_for(redis, per_page=2) as env:
        assert (await env.scrape())["status"] == "success"
        before = await env.committed()
        env.catalogue.apps.pop(0)  # a retirement that must not land from a partial answer
        env.catalogue.apps.append(make_app(4, "Gitea"))  # still two pages
        env.api.fail(on_page("/v2/applications", 2), 500, times=None)
        result = await env.scrape()
        assert result["status"] == "quarantined" and "incomplete" in result["checks"]
        assert (await env.committed()).apps == before.apps
        assert await env.events(EventKind.APP_REMOVED) == []
        env.api.clear_faults()
        good = await env.scrape()
        removed = await env.events(EventKind.APP_REMOVED)
    assert good["status"] == "success"
    assert [event.subject for event in removed] == ["1"]
    assert removed[0].old["name"] == "LEMP" and removed[0].detail["collection"] == "apps"


# -- end to end --------------------------------------------------------------------------------


async def test_scrape_commits_every_collection_with_events_and_history(redis: Redis) -> None:
    async with env_for(redis) as env:
        first = await env.scrape()
        t1 = datetime.now(UTC)
        env.catalogue.storage_clusters[2]["deploy"] = "yes"
        env.catalogue.k8s_versions.insert(0, "v1.34.0+1")
        env.catalogue.regions[0]["options"].append("load_balancers")
        env.catalogue.apps.append(make_app(3, "Jenkins"))
        second = await env.scrape()
        store = CatalogueStore(redis, "vs")
        then = await store.catalogue_at(t1)
        now = await store.catalogue_at(datetime.now(UTC) + timedelta(seconds=1))
        events = await env.events()
    assert first["status"] == second["status"] == "success"
    assert first["counts"]["apps"] == 3 and first["counts"]["k8s_versions"] == 3
    assert second["changes"] == {
        "apps": 1,
        "k8s_versions": 1,
        "regions": 1,
        "storage_clusters": 1,
    }
    latest = events[-4:]
    kinds = {str(event.kind): event for event in latest}
    assert kinds["app_added"].subject == "3"
    assert kinds["k8s_version_added"].subject == "v1.34.0+1"
    service = kinds["region_service_added"]
    assert (service.subject, service.field) == ("ewr", "load_balancers")
    deploy = kinds["storage_availability_changed"]
    assert (deploy.subject, deploy.region, deploy.old, deploy.new) == ("9", "fra", "no", "yes")
    # "As of" queries: the catalogue before the second scrape and after it.
    assert "3" not in then.apps and "3" in now.apps
    assert then.storage_clusters["9"].deploy == "no" and now.storage_clusters["9"].deploy == "yes"
    assert "v1.34.0+1" in now.k8s_versions and "v1.34.0+1" not in then.k8s_versions
    # A rerun over the same data adds nothing.
    async with env_for(redis) as again:
        again.api.catalogue = env.catalogue
        assert (await again.scrape())["events"] == 0


async def test_one_request_per_endpoint_page(redis: Redis) -> None:
    async with env_for(redis, api_key=KEY, per_page=2) as env:
        await env.scrape()
        counts = {path: env.api.count(path) for path in sorted({r.path for r in env.api.requests})}
    # Each list endpoint: ceil(items / 2) pages; k8s versions: one unpaged request.
    assert counts["/v2/applications"] == 2  # 3 apps
    assert counts["/v2/kubernetes/versions"] == 1
    assert counts["/v2/object-storage/clusters"] == 2  # 3 clusters
    assert counts["/v2/iso-public"] == 1  # 2 ISOs
    assert counts["/v2/databases/plans"] == 2  # 3 plans


async def test_switched_off_collections_are_not_read_and_stay_as_committed(redis: Redis) -> None:
    async with env_for(redis) as env:
        await env.scrape()
        env.ctx["config"].catalog.include = []
        env.catalogue.apps.clear()
        result = await env.scrape()
        assert env.api.count("/v2/applications") == 1
        assert len((await env.committed()).apps) == 3
    assert result["status"] == "success"


# -- managed database plans (opt-in, with an API key) ------------------------------------------


async def test_databases_need_a_key_and_only_they_get_it(redis: Redis) -> None:
    async with env_for(redis) as env:
        await env.scrape()
        assert env.api.count("/v2/databases/plans") == 0  # no key: never asked
    await redis.flushdb()
    async with env_for(redis, api_key=KEY, per_page=2) as env:
        result = await env.scrape()
        requests = list(env.api.requests)
        committed = await env.committed()
        added = await env.events(EventKind.PLAN_ADDED)
    assert result["status"] == "success" and "errors" not in result
    with_key = [r.path for r in requests if "Authorization" in r.headers]
    assert with_key and set(with_key) == {"/v2/databases/plans"}
    sent = {r.headers["Authorization"] for r in requests if "Authorization" in r.headers}
    assert sent == {f"Bearer {KEY}"}
    assert len(committed.databases) == 3
    plan = committed.databases["vultr-dbaas-business-cc-1-55-2-3"]
    assert plan.number_of_nodes == 3 and plan.monthly_cost == Decimal(90)
    assert plan.locations == ["ewr", "fra"]
    assert {e.subject for e in added if e.detail["collection"] == "databases"} == set(
        committed.databases
    )


async def test_database_prices_have_events_and_history(redis: Redis) -> None:
    async with env_for(redis, api_key=KEY) as env:
        await env.scrape()
        t1 = datetime.now(UTC)
        env.catalogue.databases[0]["monthly_cost"] = 17.5
        result = await env.scrape()
        changed = await env.events(EventKind.PRICE_CHANGED)
        store = CatalogueStore(redis, "vs")
        then = await store.catalogue_at(t1)
    assert result["status"] == "success"
    (event,) = changed
    assert event.detail["collection"] == "databases"
    assert (event.subject, event.field, event.old, event.new) == (
        "vultr-dbaas-hobbyist-cc-1-25-1",
        "monthly_cost",
        "15",
        "17.5",
    )
    assert then.databases["vultr-dbaas-hobbyist-cc-1-25-1"].monthly_cost == Decimal(15)


async def test_a_refused_key_is_one_clear_error_and_the_rest_is_scraped(redis: Redis) -> None:
    async with env_for(redis, api_key="wrong-key") as env:
        result = await env.scrape()
        committed = await env.committed()
        db_requests = env.api.count("/v2/databases/plans")
    assert result["status"] == "success"
    message = result["errors"]["databases"]
    assert "refused the API key" in message and "vultr.api_key_file" in message
    assert "401" in message and "wrong-key" not in message
    assert db_requests == 1  # a 401 is permanent: not retried
    assert committed.databases == {} and len(committed.plans) == 6 and len(committed.apps) == 3


async def test_a_refused_key_keeps_the_committed_database_plans(redis: Redis) -> None:
    async with env_for(redis, api_key=KEY) as env:
        await env.scrape()
        env.api.api_key = "rotated"
        result = await env.scrape()
        committed = await env.committed()
        retired = await env.events(EventKind.PLAN_RETIRED)
    assert "databases" in result["errors"]
    assert len(committed.databases) == 3 and retired == []


async def test_a_new_field_on_every_app_is_one_drift_event(redis: Redis) -> None:
    async with env_for(redis) as env:
        await env.scrape()
        for app in env.catalogue.apps:
            app["categories"] = ["web"]
        env.catalogue.storage_clusters[0]["deploy"] = True  # a changed JSON type
        result = await env.scrape()
        drift = await env.events(EventKind.SCHEMA_DRIFT)
        specs = await env.events(EventKind.SPEC_CHANGED)
    assert result["status"] == "success"
    found = {(event.subject, event.field, event.detail["change"]) for event in drift}
    assert found == {
        ("/v2/applications", "categories", "new_field"),
        ("/v2/object-storage/clusters", "deploy", "type_changed"),
    }
    apps = next(event for event in drift if event.field == "categories")
    assert (apps.detail["records"], apps.detail["of"]) == (3, 3)
    assert not [event for event in specs if event.detail["collection"] == "apps"]


async def test_transient_faults_on_the_new_endpoints_are_retried(redis: Redis) -> None:
    async with env_for(redis, per_page=2) as env:
        env.api.fail("/v2/kubernetes/versions", 503, html=True)
        env.api.fail(on_page("/v2/object-storage/clusters", 2), 429, retry_after="0")
        env.api.truncate("/v2/iso-public")
        result = await env.scrape()
        counts = (
            env.api.count("/v2/kubernetes/versions"),
            env.api.count("/v2/object-storage/clusters"),
            env.api.count("/v2/iso-public"),
        )
    assert result["status"] == "success"
    assert counts == (2, 3, 2)  # one retry each, nothing else
    assert result["counts"]["storage_clusters"] == 3 and result["counts"]["isos"] == 2


async def test_a_first_page_that_keeps_failing_fails_the_scrape_and_commits_nothing(
    redis: Redis,
) -> None:
    async with env_for(redis) as env:
        env.api.fail("/v2/applications", 500, times=None)
        with pytest.raises(HttpError):
            await env.scrape()
        assert await env.committed() == Catalogue()


async def test_the_whole_scrape_keeps_the_rate_limit(redis: Redis) -> None:
    async with env_for(redis, api_key=KEY) as env:
        env.ctx["http"].limiter = RateLimiter(40.0)
        started = time.monotonic()
        result = await env.scrape()
        elapsed = time.monotonic() - started
        starts = len(env.api.requests)
    assert result["status"] == "success" and starts == result["requests"] == 9
    # Request starts are at least 1/40 s apart: 9 requests take at least 8/40 s.
    assert elapsed >= 8 / 40
