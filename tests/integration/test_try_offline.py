"""The README's "try it without network" commands: the bundled fake Vultr API served by
``python -m tests.fakes.serve_vultr_api`` (what scripts/fake-vultr-api runs), and a catalogue
scrape against it through the real CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.redis_server import env_without_project_vars, free_port

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def test_a_scrape_against_the_served_fake_api(redis_url: str, tmp_path: Path) -> None:
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.serve_vultr_api", "--port", str(port)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        banner = server.stdout.readline()
        base_url = f"http://127.0.0.1:{port}/v2"
        assert base_url in banner
        env = {
            **env_without_project_vars(),
            "VULTR_SCRAPER__VULTR__BASE_URL": base_url,
            "VULTR_SCRAPER__REDIS__URL": redis_url,
            "VULTR_SCRAPER__PATHS__STATE_DIR": str(tmp_path / "state"),
            "VULTR_SCRAPER__HTTP__LISTEN": "",
        }
        started = time.monotonic()
        scraped = subprocess.run(
            [sys.executable, "-m", "vultr_scraper_worker", "run", "scrape-catalog", "-q"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert scraped.returncode == 0, scraped.stderr
        assert json.loads(scraped.stdout)["status"] == "success"
        plans = subprocess.run(
            [sys.executable, "-m", "vultr_scraper_worker", "plans", "--json"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert plans.returncode == 0 and json.loads(plans.stdout)["count"] > 0
        assert time.monotonic() - started < 120
    finally:
        server.terminate()
        server.wait(timeout=10)
        if server.stdout is not None:
            server.stdout.close()
    assert os.path.exists(ROOT / "scripts" / "fake-vultr-api")
