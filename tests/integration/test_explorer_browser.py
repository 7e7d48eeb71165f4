"""A real browser on every explorer page of a real worker, at a desktop and a phone width.

A ``vultr-scraper worker`` subprocess scrapes the fake Vultr API (catalogue, then stock twice
with a plan selling out in between). Headless Chromium opens each page at 1280 px and 390 px,
checks what it shows, that nothing sticks out sideways (no element past the viewport's right
edge unless it is inside a box that scrolls), saves a screenshot, and runs axe-core (from the
npm registry; ``.ci/run`` installs it into ``VS_AXE_DIR``) in the page: no serious or critical
accessibility violation is allowed.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.integration.test_status_page_browser import (
    TOKEN,
    FakeApiThread,
    Http,
    Worker,
    _up,
    chromium,
    until,
)
from tests.redis_server import env_without_project_vars, free_port

pytest.importorskip("selenium")

from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

pytestmark = [pytest.mark.slow]
__all__ = ["chromium"]  # the fixture, shared with the status page's test

AXE_DIR = Path(
    os.environ.get("VS_AXE_DIR", str(Path.home() / ".cache" / "vultr-scraper-tests" / "axe"))
)
AXE_JS = AXE_DIR / "node_modules" / "axe-core" / "axe.min.js"
WIDTHS = (1280, 390)

# Elements whose right edge is past the viewport, outside any box that scrolls or clips.
OVERFLOW_JS = """
const width = document.documentElement.clientWidth;
const out = [];
for (const element of document.body.querySelectorAll('*')) {
  const box = element.getBoundingClientRect();
  if (box.width === 0 || box.height === 0) continue;
  let parent = element.parentElement, clipped = false;
  while (parent && parent !== document.body) {
    const overflow = getComputedStyle(parent).overflowX;
    if (overflow !== 'visible') { clipped = true; break; }
    parent = parent.parentElement;
  }
  if (!clipped && (box.right > width + 1 || box.left < -1)) {
    out.push(element.tagName.toLowerCase() + '.' + element.className + ' right=' +
             Math.round(box.right));
  }
}
return [document.documentElement.scrollWidth, width, out.slice(0, 10)];
"""

AXE_RUN_JS = """
const done = arguments[arguments.length - 1];
axe.run(document, {resultTypes: ['violations']}).then(
  (results) => done(results.violations.map((v) => ({
    id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.slice(0, 3).map((n) => n.target.join(' '))}))),
  (error) => done([{id: 'axe-error', impact: 'critical', help: String(error), nodes: []}]));
"""


def test_every_explorer_page_at_two_widths(
    redis_url: str, tmp_path: Path, chromium: WebDriver
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    token_file.chmod(0o600)
    port = free_port()
    with FakeApiThread() as fake:
        env = env_without_project_vars()
        env.update(
            {
                "VULTR_SCRAPER__REDIS__URL": redis_url,
                "VULTR_SCRAPER__PATHS__STATE_DIR": str(tmp_path / "state"),
                "VULTR_SCRAPER__VULTR__BASE_URL": fake.api.base_url,
                "VULTR_SCRAPER__HTTP__LISTEN": f"127.0.0.1:{port}",
                "VULTR_SCRAPER__HTTP__TOKEN_FILE": str(token_file),
                "VULTR_SCRAPER__WORKER__POLL_DELAY": "0.05",
                "VULTR_SCRAPER__SCHEDULES__SCRAPE_CATALOG__ENABLED": "false",
                "VULTR_SCRAPER__SCHEDULES__SCRAPE_AVAILABILITY__ENABLED": "false",
                "VULTR_SCRAPER__SCHEDULES__PRUNE__ENABLED": "false",
                "PYTHONUNBUFFERED": "1",
            }
        )
        worker = Worker(env, tmp_path)
        try:
            _scenario(Http(f"http://127.0.0.1:{port}"), fake, chromium, tmp_path, worker)
        except BaseException:
            print(worker.tail())
            raise
        finally:
            worker.stop()


def _scenario(
    http: Http, fake: FakeApiThread, driver: WebDriver, tmp_path: Path, worker: Worker
) -> None:
    until(lambda: _up(http, worker), "the worker's HTTP server")
    assert http.run("scrape-catalog") == "success"
    assert http.run("scrape-availability") == "success"
    status, rows = http.request("GET", "/api/v1/plans?in_stock=true&limit=1000")
    assert status == 200 and rows["plans"], rows
    sold_out = rows["plans"][0]
    plan, region = sold_out["plan"], sold_out["region"]
    fake.call(lambda: fake.api.catalogue.availability[region].remove(plan))
    assert http.run("scrape-availability") == "success"
    job_id = http.jobs()["recent"][0]["job_id"]

    pages: dict[str, Callable[[WebDriver], object]] = {
        "/": lambda d: _has(d, "#jobs", "scrape-availability"),
        "/plans": lambda d: _has(d, "h1", "Plans"),
        "/plans?view=gpu": lambda d: _has(d, "h1", "GPU plans"),
        f"/plans/{plan}": lambda d: (
            _has(d, "h1", plan),
            _has(d, "#reliability", region),
            _has(d, "#events", "stock_changed"),
        ),
        f"/plans/{plan}?span=24h": lambda d: _has(d, "#stock", region),
        f"/regions/{region}": lambda d: (
            _has(d, "#stock-changes", plan),
            _has(d, "#sold", plan),
        ),
        "/changes": lambda d: _has(d, "tbody", "stock_changed"),
        f"/jobs/{job_id}": lambda d: _has(d, "#tries", "success"),
    }
    axe = AXE_JS.read_text() if AXE_JS.exists() else None
    problems: list[str] = []
    shots: list[Path] = []
    for width in WIDTHS:
        driver.set_window_size(width, 2400)
        for path, check in pages.items():
            driver.get(http.base + path)
            check(driver)
            assert driver.find_elements(By.CSS_SELECTOR, "svg.chart") or path in (
                "/",
                "/plans",
                "/plans?view=gpu",
                "/changes",
                f"/jobs/{job_id}",
            ), f"{path}: no chart"
            scroll, viewport, outside = driver.execute_script(OVERFLOW_JS)
            if scroll > viewport or outside:
                problems.append(
                    f"{path} at {width} px: scrollWidth {scroll} > {viewport}: {outside}"
                )
            name = _shot_name(path, width)
            driver.save_screenshot(str(tmp_path / name))
            shots.append(tmp_path / name)
            if axe is not None:
                driver.execute_script(axe)
                for violation in driver.execute_async_script(AXE_RUN_JS):
                    if violation["impact"] in ("serious", "critical"):
                        problems.append(f"{path} at {width} px: axe {violation}")
    assert not problems, "\n".join(problems)
    if os.environ.get("VS_SCREENSHOT_DIR"):  # to look at them after a run
        for shot in shots:
            shutil.copy(shot, Path(os.environ["VS_SCREENSHOT_DIR"]) / shot.name)
    if axe is None:
        pytest.skip(f"axe-core is absent ({AXE_JS}): npm install --prefix {AXE_DIR} axe-core@4")


def _has(driver: WebDriver, selector: str, text: str) -> Any:
    found = driver.find_elements(By.CSS_SELECTOR, selector)
    assert found, f"{driver.current_url}: no {selector}"
    shown = " ".join(element.text for element in found)
    assert text in shown, f"{driver.current_url}: {text!r} not in {selector}: {shown[:300]!r}"
    return found


def _shot_name(path: str, width: int) -> str:
    slug = path.strip("/").replace("/", "-").replace("?", "-").replace("=", "-") or "overview"
    return f"{slug}-{width}.png"
