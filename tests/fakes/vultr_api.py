"""A fake Vultr API v2 on a real loopback HTTP server, with injectable faults.

It serves ``/v2/plans``, ``/v2/plans-metal``, ``/v2/regions``, ``/v2/os``,
``/v2/applications``, ``/v2/object-storage/clusters``, ``/v2/iso-public`` and
``/v2/databases/plans`` with Vultr's cursor pagination (base64 ``next__<last id>`` cursors,
empty string at the end, ``meta.total``), ``/v2/kubernetes/versions`` (one unpaged list of
strings) and ``/v2/regions/{id}/availability``. ``/v2/databases/plans`` wants
``Authorization: Bearer <api_key>`` and answers 401 otherwise, like Vultr.

Faults are queued per request matcher: a status with a JSON or HTML body and optional
``Retry-After``, latency, truncated JSON, a short body, a dropped connection, or a flood (a
huge, valid JSON body streamed in chunks). Test data here is written from the documented
schema, not copied from captures.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import copy
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

Matcher = Callable[[web.Request], bool]
JSON = dict[str, Any]

# aiohttp >= 3.14 warns (an error under -W error, so a 500 from the fake) on the first plain
# string key stored in a request; typed keys exist from then on.
_PAGE_NUMBER: Any = (
    web.RequestKey("page_number", int) if hasattr(web, "RequestKey") else "page_number"
)

HTML_504 = (
    b"<html><body><h1>We are currently conducting some software upgrades. "
    b"Check back in a few minutes!</h1></body></html>"
)


def make_plan(plan_id: str, **fields: Any) -> JSON:
    """A cloud plan in the current (2025-2026) shape; ``fields`` override or add keys."""
    plan: JSON = {
        "id": plan_id,
        "vcpu_count": 1,
        "ram": 1024,
        "disk": 25,
        "disk_type": "SSD",
        "disk_count": 1,
        "bandwidth": 1024,
        "monthly_cost": 5,
        "hourly_cost": 0.007,
        "invoice_type": "monthly",
        "type": "vc2",
        "locations": ["ewr", "fra", "ams"],
        "cpu_vendor": "Intel",
        "storage_type": "local_storage",
        "vcpu_type": "thread",
        "clusterable": "no",
        "deploy_ondemand": True,
        "deploy_preemptible": False,
    }
    plan.update(fields)
    return plan


def make_metal_plan(plan_id: str, **fields: Any) -> JSON:
    plan: JSON = {
        "id": plan_id,
        "physical_cpus": 1,
        "cpu_count": 4,
        "cpu_cores": 4,
        "cpu_threads": 8,
        "cpu_model": "E3-1270v6",
        "cpu_mhz": 3800,
        "ram": 32768,
        "disk": 240,
        "disk_count": 2,
        "bandwidth": 5120,
        "monthly_cost": 185,
        "hourly_cost": 0.275,
        "invoice_type": "monthly",
        "type": "SSD",
        "locations": ["ewr", "fra"],
        "deploy_ondemand": True,
        "deploy_preemptible": False,
    }
    plan.update(fields)
    return plan


def make_region(region_id: str, city: str, country: str, continent: str, **fields: Any) -> JSON:
    region: JSON = {
        "id": region_id,
        "city": city,
        "country": country,
        "continent": continent,
        "options": ["ddos_protection", "block_storage_high_perf", "kubernetes"],
    }
    region.update(fields)
    return region


def make_app(app_id: int, name: str, **fields: Any) -> JSON:
    """An application as ``/v2/applications`` documents it (one-click unless overridden)."""
    app: JSON = {
        "id": app_id,
        "name": name,
        "short_name": name.lower().replace(" ", ""),
        "deploy_name": f"{name} on Ubuntu 24.04",
        "type": "one-click",
        "vendor": "vultr",
        "image_id": "",
    }
    app.update(fields)
    return app


def make_database_plan(plan_id: str, **fields: Any) -> JSON:
    """A managed database plan as ``/v2/databases/plans`` documents it."""
    plan: JSON = {
        "id": plan_id,
        "number_of_nodes": 1,
        "type": "business",
        "vcpu_count": 1,
        "ram": 1024,
        "disk": 25,
        "monthly_cost": 15,
        "supported_engines": {"mysql": True, "pg": True, "valkey": False, "kafka": False},
        "max_connections": {"mysql": 75, "pg": 22},
        "locations": ["ewr", "fra", "ams"],
    }
    plan.update(fields)
    return plan


def default_catalogue() -> FakeCatalogue:
    """A small, realistic catalogue: cloud, GPU, São Paulo twin and regional-price plans."""
    plans = [
        make_plan("vc2-1c-1gb"),
        make_plan("vc2-1c-1gb-sc1", monthly_cost=7.5, hourly_cost=0.011, locations=["sao"]),
        make_plan("vc2-2c-4gb", vcpu_count=2, ram=4096, disk=80, monthly_cost=20, hourly_cost=0.03),
        make_plan(
            "vhp-2c-4gb-amd",
            vcpu_count=2,
            ram=4096,
            disk=100,
            type="vhp",
            cpu_vendor="AMD",
            monthly_cost=24,
            hourly_cost=0.036,
            location_cost={"fra": {"monthly_cost": 26.4, "hourly_cost": 0.04}},
        ),
        make_plan(
            "vcg-a100-1c-6g-4vram",
            vcpu_count=1,
            ram=6144,
            disk=70,
            type="vcg",
            monthly_cost=90,
            hourly_cost=0.123,
            gpu_vram_gb=4,
            gpu_type="NVIDIA_A100",
            locations=["ewr", "fra", "ams"],
        ),
        make_plan(
            "vcg-l40s-16c-180g-48vram",
            vcpu_count=16,
            ram=184320,
            disk=1200,
            type="vcg",
            monthly_cost=1241.6,
            hourly_cost=1.671,
            gpu_vram_gb=48,
            gpu_type="NVIDIA_L40S",
            gpu_count=1,
            locations=["fra", "ams"],
        ),
    ]
    metal = [make_metal_plan("vbm-4c-32gb")]
    regions = [
        make_region("ewr", "New Jersey", "US", "North America"),
        make_region("fra", "Frankfurt", "DE", "Europe"),
        make_region("ams", "Amsterdam", "NL", "Europe"),
        make_region("sao", "São Paulo", "BR", "South America"),
    ]
    images = [
        {"id": 2284, "name": "Ubuntu 24.04 LTS x64", "arch": "x64", "family": "ubuntu"},
        {"id": 2136, "name": "Debian 12 x64 (bookworm)", "arch": "x64", "family": "debian"},
        {"id": 159, "name": "Custom", "arch": "x64", "family": "iso"},
    ]
    availability = {
        "ewr": ["vc2-1c-1gb", "vc2-2c-4gb", "vhp-2c-4gb-amd", "vbm-4c-32gb"],
        "fra": ["vc2-1c-1gb", "vhp-2c-4gb-amd", "vcg-a100-1c-6g-4vram"],
        "ams": ["vc2-1c-1gb", "vc2-2c-4gb"],
        "sao": ["vc2-1c-1gb-sc1"],
    }
    apps = [
        make_app(1, "LEMP"),
        make_app(2, "Docker"),
        make_app(
            1028,
            "OpenLiteSpeed WordPress",
            short_name="openlitespeedwordpress",
            type="marketplace",
            vendor="LiteSpeed_Technologies",
            image_id="openlitespeed-wordpress",
        ),
    ]
    k8s_versions = ["v1.33.0+1", "v1.32.4+1", "v1.31.8+1"]
    storage_clusters = [
        {"id": 2, "region": "ewr", "hostname": "ewr1.vultrobjects.com", "deploy": "yes"},
        {"id": 4, "region": "ams", "hostname": "ams1.vultrobjects.com", "deploy": "yes"},
        {"id": 9, "region": "fra", "hostname": "fra1.vultrobjects.com", "deploy": "no"},
    ]
    isos = [
        {
            "id": "0532a75b-14e8-48b8-b27e-1ebcf382a804",
            "name": "Alpine Linux 3.20 x86_64",
            "description": "Alpine Linux standard ISO",
            "md5sum": "1f0e1b9c8c4e0b3f6d9b6f2a0c7e5d41",
        },
        {
            "id": "b3e2b5f4-7a54-4c0e-9d5f-2f1c3b4a5d6e",
            "name": "SystemRescue 11.01 x64",
            "description": "A Linux system rescue toolkit",
            "md5sum": "9d1c0b2f4e3a5b6c7d8e9f0a1b2c3d4e",
        },
    ]
    databases = [
        make_database_plan("vultr-dbaas-hobbyist-cc-1-25-1", type="hobbyist", monthly_cost=15),
        make_database_plan(
            "vultr-dbaas-startup-cc-1-55-2",
            type="startup",
            ram=2048,
            disk=55,
            monthly_cost=30,
            max_connections={"mysql": 150, "pg": 47},
        ),
        make_database_plan(
            "vultr-dbaas-business-cc-1-55-2-3",
            number_of_nodes=3,
            ram=2048,
            disk=55,
            monthly_cost=90,
            locations=["ewr", "fra"],
        ),
    ]
    return FakeCatalogue(
        plans=plans,
        metal=metal,
        regions=regions,
        images=images,
        availability=availability,
        apps=apps,
        k8s_versions=k8s_versions,
        storage_clusters=storage_clusters,
        isos=isos,
        databases=databases,
    )


@dataclass
class FakeCatalogue:
    plans: list[JSON] = field(default_factory=list)
    metal: list[JSON] = field(default_factory=list)
    regions: list[JSON] = field(default_factory=list)
    images: list[JSON] = field(default_factory=list)
    availability: dict[str, list[str]] = field(default_factory=dict)
    apps: list[JSON] = field(default_factory=list)
    k8s_versions: list[Any] = field(default_factory=list)  # strings, as Vultr sends them
    storage_clusters: list[JSON] = field(default_factory=list)
    isos: list[JSON] = field(default_factory=list)
    databases: list[JSON] = field(default_factory=list)

    def plan(self, plan_id: str) -> JSON:
        return next(plan for plan in self.plans if plan["id"] == plan_id)


@dataclass
class Fault:
    kind: str  # "status", "delay", "truncate", "short", "drop", "flood"
    matcher: Matcher
    times: int | None  # None: forever
    status: int = 500
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    size: int = 0  # flood: bytes to send
    announce: bool = True  # flood: send Content-Length (else chunked transfer encoding)


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]


def on_path(path: str) -> Matcher:
    return lambda request: request.path == path


def on_page(path: str, page: int) -> Matcher:
    """Matches the ``page``-th page (1-based) of a list endpoint."""
    return lambda request: request.path == path and _page_of(request) == page


def _page_of(request: web.Request) -> int:
    return int(request.get(_PAGE_NUMBER, 0))


class FakeVultrAPI:
    """``async with FakeVultrAPI() as api: api.base_url`` -> ``http://127.0.0.1:PORT/v2``."""

    def __init__(self, catalogue: FakeCatalogue | None = None, *, default_per_page: int = 100):
        self.catalogue = catalogue if catalogue is not None else default_catalogue()
        self.default_per_page = default_per_page
        self.max_per_page = 500
        self.latency = 0.0
        self.faults: list[Fault] = []
        self.requests: list[RecordedRequest] = []
        self._runner: web.AppRunner | None = None
        self._closing = asyncio.Event()
        self.port = 0
        # The key /v2/databases/plans accepts (any other endpoint ignores Authorization).
        self.api_key = "test-api-key"

    # -- fault injection ------------------------------------------------------------------
    def fail(
        self,
        matcher: Matcher | str,
        status: int = 500,
        *,
        times: int | None = 1,
        body: bytes | None = None,
        html: bool = False,
        retry_after: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        """Answer matching requests with ``status``: a JSON error body (Vultr's 4xx shape), or
        with ``html`` the HTML maintenance page; ``headers`` are sent as given (any case)."""
        headers = dict(headers or {})
        if retry_after is not None:
            headers["Retry-After"] = retry_after
        if body is None:
            body = HTML_504 if html else b'{"error":"Internal error.","status":%d}' % status
        self.faults.append(
            Fault(
                kind="status",
                matcher=_matcher(matcher),
                times=times,
                status=status,
                body=body,
                content_type="text/html" if html else "application/json",
                headers=headers,
            )
        )

    def slow(self, matcher: Matcher | str, seconds: float, *, times: int | None = 1) -> None:
        self.faults.append(
            Fault(kind="delay", matcher=_matcher(matcher), times=times, delay=seconds)
        )

    def truncate(self, matcher: Matcher | str, *, times: int | None = 1) -> None:
        """A 200 whose JSON body is cut in half (well-formed HTTP, invalid JSON)."""
        self.faults.append(Fault(kind="truncate", matcher=_matcher(matcher), times=times))

    def short_body(self, matcher: Matcher | str, *, times: int | None = 1) -> None:
        """A 200 announcing more bytes than it sends, then closing the connection."""
        self.faults.append(Fault(kind="short", matcher=_matcher(matcher), times=times))

    def drop(self, matcher: Matcher | str, *, times: int | None = 1) -> None:
        """Close the connection without any response."""
        self.faults.append(Fault(kind="drop", matcher=_matcher(matcher), times=times))

    def flood(
        self,
        matcher: Matcher | str,
        size: int,
        *,
        container: str = "plans",
        announce: bool = True,
        times: int | None = 1,
    ) -> None:
        """A 200 with a valid JSON document of about ``size`` bytes: ``container`` holds junk
        plans (a single page, ``meta.total`` matching). Streamed, never built in memory whole;
        with ``announce=False`` no Content-Length is sent (chunked transfer encoding)."""
        self.faults.append(
            Fault(
                kind="flood",
                matcher=_matcher(matcher),
                times=times,
                size=size,
                announce=announce,
                body=container.encode(),
            )
        )

    def clear_faults(self) -> None:
        self.faults.clear()

    def count(self, path: str) -> int:
        return sum(1 for request in self.requests if request.path == path)

    # -- server ---------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v2"

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/v2/plans", self._plans)
        app.router.add_get("/v2/plans-metal", self._metal)
        app.router.add_get("/v2/regions", self._regions)
        app.router.add_get("/v2/os", self._os)
        app.router.add_get("/v2/regions/{region}/availability", self._availability)
        app.router.add_get("/v2/applications", self._applications)
        app.router.add_get("/v2/kubernetes/versions", self._k8s_versions)
        app.router.add_get("/v2/object-storage/clusters", self._storage_clusters)
        app.router.add_get("/v2/iso-public", self._isos)
        app.router.add_get("/v2/databases/plans", self._databases)
        return app

    async def start(self, port: int = 0) -> str:
        self._closing = asyncio.Event()
        self._runner = web.AppRunner(self.app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port)
        await site.start()
        server = site._server
        assert server is not None
        sockets = getattr(server, "sockets", None)
        assert sockets
        self.port = int(sockets[0].getsockname()[1])
        return self.base_url

    async def stop(self) -> None:
        # Cut injected delays short: shutdown would otherwise wait for every slow handler.
        self._closing.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeVultrAPI:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- handlers -------------------------------------------------------------------------
    async def _plans(self, request: web.Request) -> web.StreamResponse:
        items = self.catalogue.plans
        plan_type = request.query.get("type", "all")
        if plan_type != "all":
            items = [plan for plan in items if plan.get("type") == plan_type]
        return await self._paginated(request, "plans", items)

    async def _metal(self, request: web.Request) -> web.StreamResponse:
        return await self._paginated(request, "plans_metal", self.catalogue.metal)

    async def _regions(self, request: web.Request) -> web.StreamResponse:
        return await self._paginated(request, "regions", self.catalogue.regions)

    async def _os(self, request: web.Request) -> web.StreamResponse:
        return await self._paginated(request, "os", self.catalogue.images)

    async def _applications(self, request: web.Request) -> web.StreamResponse:
        items = self.catalogue.apps
        app_type = request.query.get("type", "all")
        if app_type != "all":
            items = [app for app in items if app.get("type") == app_type]
        return await self._paginated(request, "applications", items)

    async def _k8s_versions(self, request: web.Request) -> web.StreamResponse:
        fault_response = await self._before(request)
        if fault_response is not None:
            return fault_response
        return await self._send(request, {"versions": list(self.catalogue.k8s_versions)})

    async def _storage_clusters(self, request: web.Request) -> web.StreamResponse:
        return await self._paginated(request, "clusters", self.catalogue.storage_clusters)

    async def _isos(self, request: web.Request) -> web.StreamResponse:
        return await self._paginated(request, "public_isos", self.catalogue.isos)

    async def _databases(self, request: web.Request) -> web.StreamResponse:
        if request.headers.get("Authorization") != f"Bearer {self.api_key}":
            self._record(request)
            return web.json_response({"error": "Invalid API token.", "status": 401}, status=401)
        return await self._paginated(request, "plans", self.catalogue.databases)

    async def _availability(self, request: web.Request) -> web.StreamResponse:
        region = request.match_info["region"]
        fault_response = await self._before(request)
        if fault_response is not None:
            return fault_response
        if region not in self.catalogue.availability and region not in {
            r["id"] for r in self.catalogue.regions
        }:
            return web.json_response({"error": "Invalid region.", "status": 400}, status=400)
        return await self._send(
            request,
            {
                "available_plans": list(self.catalogue.availability.get(region, [])),
                "available_vpc_only_plans": [],
            },
        )

    async def _paginated(
        self, request: web.Request, key: str, items: list[JSON]
    ) -> web.StreamResponse:
        try:
            per_page = min(
                int(request.query.get("per_page", self.default_per_page)), self.max_per_page
            )
        except ValueError:
            return web.json_response({"error": "Invalid per_page.", "status": 400}, status=400)
        cursor = request.query.get("cursor", "")
        start = 0
        if cursor:
            try:
                marker = base64.b64decode(cursor).decode()
            except ValueError:
                return web.json_response({"error": "Invalid cursor.", "status": 400}, status=400)
            last_id = marker.removeprefix("next__")
            ids = [str(item["id"]) for item in items]
            start = ids.index(last_id) + 1 if last_id in ids else len(items)
        request[_PAGE_NUMBER] = start // max(per_page, 1) + 1
        fault_response = await self._before(request)
        if fault_response is not None:
            return fault_response
        page = items[start : start + per_page]
        more = start + per_page < len(items)
        next_cursor = (
            base64.b64encode(f"next__{page[-1]['id']}".encode()).decode() if more and page else ""
        )
        prev_cursor = (
            base64.b64encode(f"prev__{page[0]['id']}".encode()).decode() if start and page else ""
        )
        document = {
            key: copy.deepcopy(page),
            "meta": {"total": len(items), "links": {"next": next_cursor, "prev": prev_cursor}},
        }
        return await self._send(request, document)

    def _record(self, request: web.Request) -> None:
        self.requests.append(
            RecordedRequest(
                method=request.method,
                path=request.path,
                query=dict(request.query),
                headers=dict(request.headers),
            )
        )

    async def _before(self, request: web.Request) -> web.StreamResponse | None:
        self._record(request)
        if self.latency:
            await self._pause(self.latency)
        for fault in list(self.faults):
            if fault.kind in {"truncate", "short"} or not fault.matcher(request):
                continue
            self._consume(fault)
            if fault.kind == "delay":
                await self._pause(fault.delay)
                continue
            if fault.kind == "drop":
                transport = request.transport
                if transport is not None:
                    transport.abort()
                return web.Response(status=500)
            if fault.kind == "flood":
                return await _flood(request, fault)
            return web.Response(
                status=fault.status,
                body=fault.body,
                content_type=fault.content_type,
                headers=fault.headers,
            )
        return None

    async def _send(self, request: web.Request, document: JSON) -> web.StreamResponse:
        body = json.dumps(document, ensure_ascii=False).encode()
        for fault in list(self.faults):
            if fault.kind not in {"truncate", "short"} or not fault.matcher(request):
                continue
            self._consume(fault)
            if fault.kind == "truncate":
                return web.Response(body=body[: len(body) // 2], content_type="application/json")
            response = web.StreamResponse(headers={"Content-Type": "application/json"})
            response.content_length = len(body)
            await response.prepare(request)
            await response.write(body[: len(body) // 2])
            transport = request.transport
            if transport is not None:
                transport.abort()
            return response
        return web.Response(body=body, content_type="application/json")

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._closing.wait(), seconds)

    def _consume(self, fault: Fault) -> None:
        if fault.times is None:
            return
        fault.times -= 1
        if fault.times <= 0:
            self.faults.remove(fault)


def flood_body(size: int, container: str = "plans") -> tuple[bytes, bytes, bytes, int]:
    """Head, an item template (``%07d`` for a distinct id) and tail of a junk listing of about
    ``size`` bytes, and how many items it holds."""
    plan = make_plan("junk-%07d", monthly_cost=1, hourly_cost=0.001)
    template = json.dumps(plan).encode()
    item_size = len(template % 0)
    count = max(1, (size - 80) // (item_size + 1))
    head = b'{"%s": [' % container.encode()
    tail = b'], "meta": {"total": %d, "links": {"next": "", "prev": ""}}}' % count
    return head, template, tail, count


async def _flood(request: web.Request, fault: Fault) -> web.StreamResponse:
    head, template, tail, count = flood_body(fault.size, fault.body.decode())
    item_size = len(template % 0)
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    if fault.announce:
        response.content_length = len(head) + count * (item_size + 1) - 1 + len(tail)
    else:
        response.enable_chunked_encoding()
    await response.prepare(request)
    await response.write(head)
    batch = 256
    try:
        for start in range(0, count, batch):
            chunk = b",".join(template % n for n in range(start, min(count, start + batch)))
            await response.write(chunk if start == 0 else b"," + chunk)
        await response.write(tail)
        await response.write_eof()
    except (ConnectionResetError, RuntimeError):
        pass  # the client stopped reading at its cap and closed the connection
    return response


def _matcher(matcher: Matcher | str) -> Matcher:
    return on_path(matcher) if isinstance(matcher, str) else matcher
