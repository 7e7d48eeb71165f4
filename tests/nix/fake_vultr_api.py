"""A tiny stand-in for Vultr's public catalogue API v2, for the NixOS VM test (stdlib only).

Serves ``/v2/plans``, ``/v2/plans-metal``, ``/v2/regions``, ``/v2/os``, ``/v2/applications``,
``/v2/object-storage/clusters``, ``/v2/iso-public`` (one page each, with
``meta: {total, links: {next: "", prev: ""}}``), ``/v2/kubernetes/versions`` and
``/v2/regions/<id>/availability``. Data is
written from the documented schema. Listens on loopback only::

    python3 fake_vultr_api.py --port 8001
"""

from __future__ import annotations

import argparse
import json
import re
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

PLANS: list[dict[str, Any]] = [
    {
        "id": "vc2-1c-1gb",
        "vcpu_count": 1,
        "ram": 1024,
        "disk": 25,
        "disk_count": 1,
        "bandwidth": 1024,
        "monthly_cost": 5,
        "hourly_cost": 0.007,
        "type": "vc2",
        "locations": ["ewr", "fra"],
    },
    {
        "id": "vc2-2c-4gb",
        "vcpu_count": 2,
        "ram": 4096,
        "disk": 80,
        "disk_count": 1,
        "bandwidth": 3072,
        "monthly_cost": 20,
        "hourly_cost": 0.03,
        "type": "vc2",
        "locations": ["ewr", "fra"],
    },
    {
        "id": "vhf-1c-2gb",
        "vcpu_count": 1,
        "ram": 2048,
        "disk": 64,
        "disk_count": 1,
        "bandwidth": 2048,
        "monthly_cost": 12,
        "hourly_cost": 0.018,
        "type": "vhf",
        "locations": ["ewr"],
    },
]
PLANS_METAL: list[dict[str, Any]] = [
    {
        "id": "vbm-4c-32gb",
        "cpu_count": 4,
        "cpu_model": "E3-1270v6",
        "ram": 32768,
        "disk": 240,
        "disk_count": 2,
        "bandwidth": 5120,
        "monthly_cost": 185,
        "hourly_cost": 0.275,
        "type": "SSD",
        "locations": ["ewr"],
    }
]
REGIONS: list[dict[str, Any]] = [
    {
        "id": "ewr",
        "city": "New Jersey",
        "country": "US",
        "continent": "North America",
        "options": ["ddos_protection"],
    },
    {"id": "fra", "city": "Frankfurt", "country": "DE", "continent": "Europe", "options": []},
]
OS: list[dict[str, Any]] = [
    {"id": 2284, "name": "Ubuntu 24.04 LTS x64", "arch": "x64", "family": "ubuntu"},
    {"id": 2136, "name": "Debian 12 x64 (bookworm)", "arch": "x64", "family": "debian"},
]
AVAILABILITY: dict[str, list[str]] = {
    "ewr": ["vc2-1c-1gb", "vc2-2c-4gb", "vhf-1c-2gb", "vbm-4c-32gb"],
    "fra": ["vc2-1c-1gb"],
}
APPLICATIONS: list[dict[str, Any]] = [
    {
        "id": 2,
        "name": "Docker",
        "short_name": "docker",
        "deploy_name": "Docker on Ubuntu 24.04",
        "type": "one-click",
        "vendor": "vultr",
        "image_id": "",
    }
]
STORAGE_CLUSTERS: list[dict[str, Any]] = [
    {"id": 2, "region": "ewr", "hostname": "ewr1.vultrobjects.com", "deploy": "yes"}
]
ISOS: list[dict[str, Any]] = [
    {"id": "iso-1", "name": "Alpine Linux x86_64", "description": "Alpine standard", "md5sum": ""}
]
LISTS: dict[str, tuple[str, list[dict[str, Any]]]] = {
    "/v2/plans": ("plans", PLANS),
    "/v2/plans-metal": ("plans_metal", PLANS_METAL),
    "/v2/regions": ("regions", REGIONS),
    "/v2/os": ("os", OS),
    "/v2/applications": ("applications", APPLICATIONS),
    "/v2/object-storage/clusters": ("clusters", STORAGE_CLUSTERS),
    "/v2/iso-public": ("public_isos", ISOS),
}
AVAILABILITY_PATH = re.compile(r"^/v2/regions/(?P<region>[a-z0-9]+)/availability$")


def response_for(path: str) -> tuple[int, dict[str, Any]]:
    """The status and JSON body for a request path (query string already removed)."""
    if path in LISTS:
        key, items = LISTS[path]
        meta = {"total": len(items), "links": {"next": "", "prev": ""}}
        return 200, {key: items, "meta": meta}
    if path == "/v2/kubernetes/versions":
        return 200, {"versions": ["v1.33.0+1", "v1.32.4+1"]}
    match = AVAILABILITY_PATH.match(path)
    if match:
        region = match.group("region")
        if region not in AVAILABILITY:
            return 400, {"error": "Invalid region.", "status": 400}
        return 200, {"available_plans": AVAILABILITY[region], "available_vpc_only_plans": []}
    return 404, {"error": "Not found.", "status": 404}


class Handler(BaseHTTPRequestHandler):
    server_version = "fake-vultr-api/1"

    def do_GET(self) -> None:
        status, body = response_for(urlsplit(self.path).path)
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    args = parser.parse_args(argv)
    with ThreadingHTTPServer((args.host, args.port), Handler) as server:
        server.serve_forever()


if __name__ == "__main__":
    main()
