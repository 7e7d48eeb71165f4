"""Serve the bundled fake Vultr API on loopback until interrupted, to try the tool offline.

    python -m tests.fakes.serve_vultr_api [--port 8099]     (or scripts/fake-vultr-api)

It answers the catalogue endpoints the scraper reads (plans, bare metal, regions, OS images,
availability, ...) with a small fixed catalogue, the one the tests use.
"""

from __future__ import annotations

import argparse
import asyncio

from tests.fakes.vultr_api import FakeVultrAPI


async def serve(port: int) -> None:
    api = FakeVultrAPI()
    base_url = await api.start(port)
    print(f"fake Vultr API on {base_url} (Ctrl-C stops it)", flush=True)
    print(f"try: VULTR_SCRAPER__VULTR__BASE_URL={base_url} vultr-scraper run scrape-catalog")
    try:
        await asyncio.Event().wait()
    finally:
        await api.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8099, help="loopback port (default 8099)")
    port = parser.parse_args().port
    try:
        asyncio.run(serve(port))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
