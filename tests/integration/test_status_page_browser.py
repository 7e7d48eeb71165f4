"""A real browser on the status page of a real worker.

A ``vultr-scraper worker`` subprocess runs on the test's private Redis against the fake Vultr
API. The worker scrapes the catalogue (change events), then fails a scrape (a permanent 404),
which leaves a failed-job record. Headless Chromium, driven through chromedriver by Selenium,
loads ``/``, sees the latest change, logs in with the token, clicks "Retry" on the failed job,
and the job runs again, successfully this time. Screenshots (desktop and phone widths) are
saved in the test's temp dir.

Needs Debian's ``chromium`` and ``chromium-driver`` (``.ci/run`` installs them); skipped with
a clear reason when /usr/bin/chromium is absent.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.vultr_api import FakeVultrAPI
from tests.redis_server import env_without_project_vars, free_port

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
TOKEN = "browser-test-token-7c1f0e9a2b"
WAIT = 60.0  # generous: only a broken test waits this long
ROOT = Path(__file__).resolve().parents[2]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="/usr/bin/chromium is absent: apt-get install chromium chromium-driver",
    ),
]
pytest.importorskip("selenium")

from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.remote.webdriver import WebDriver  # noqa: E402

CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--window-size=1280,3200",
)


def until(check: Callable[[], Any], what: str, timeout: float = WAIT) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


class FakeApiThread:
    """The fake Vultr API on its own event loop, for a synchronous (browser) test."""

    def __init__(self) -> None:
        self.api = FakeVultrAPI()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="fake-vultr", daemon=True)

    def __enter__(self) -> FakeApiThread:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self.api.start(), self.loop).result(30)
        return self

    def call(self, function: Callable[[], None]) -> None:
        done = threading.Event()

        def run() -> None:
            function()
            done.set()

        self.loop.call_soon_threadsafe(run)
        assert done.wait(10)

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self.api.stop(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


class Worker:
    """``vultr-scraper worker`` as a subprocess, its JSON log in the temp dir."""

    def __init__(self, env: dict[str, str], directory: Path) -> None:
        script = Path(sys.executable).parent / "vultr-scraper"
        command = (
            [str(script)] if script.exists() else [sys.executable, "-m", "vultr_scraper_worker"]
        )
        self.log = directory / "worker.log"
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                [*command, "worker"], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
            )

    def tail(self) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-40:])

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


class Http:
    def __init__(self, base: str) -> None:
        self.base = base

    def request(self, method: str, path: str, *, token: str | None = None) -> tuple[int, Any]:
        request = urllib.request.Request(self.base + path, method=method)
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, json.load(response)
        except urllib.error.HTTPError as error:
            return error.code, json.load(error)

    def jobs(self) -> dict[str, Any]:
        status, document = self.request("GET", "/api/v1/jobs?limit=50")
        assert status == 200, document
        return dict(document)

    def run(self, job: str) -> str:
        """Enqueue ``job`` and wait for its run to be recorded; returns the outcome."""
        status, document = self.request("POST", f"/api/v1/jobs/{job}/enqueue", token=TOKEN)
        assert status == 202, document
        return str(self.wait_run(document["job_id"])["outcome"])

    def wait_run(self, job_id: str) -> dict[str, Any]:
        def finished() -> dict[str, Any] | None:
            runs = [run for run in self.jobs()["recent"] if run["job_id"] == job_id]
            final = [run for run in runs if run["outcome"] != "retry"]
            return final[0] if final else None

        result: dict[str, Any] = until(finished, f"a recorded run of {job_id}")
        return result


@pytest.fixture
def chromium(tmp_path: Path) -> Iterator[WebDriver]:
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in CHROMIUM_ARGS:
        options.add_argument(argument)
    options.add_argument(f"--user-data-dir={tmp_path / 'chromium-profile'}")
    driver_path = str(CHROMEDRIVER) if CHROMEDRIVER.exists() else shutil.which("chromedriver")
    if driver_path is None:
        pytest.skip("chromedriver is absent: apt-get install chromium-driver")
    service = Service(executable_path=driver_path, log_output=str(tmp_path / "chromedriver.log"))
    driver = webdriver.Chrome(service=service, options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def test_retry_a_failed_job_from_the_status_page(
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
                "VULTR_SCRAPER__WORKER__MAX_TRIES": "1",
                # Only this test starts catalogue work; the health check stays scheduled.
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
    assert worker.process.returncode == 0, worker.tail()


def _up(http: Http, worker: Worker) -> bool:
    assert worker.process.poll() is None, f"the worker exited\n{worker.tail()}"
    try:
        status, _ = http.request("GET", "/healthz")
    except (urllib.error.URLError, ConnectionError):
        return False
    return status in (200, 503)


def _scenario(
    http: Http, fake: FakeApiThread, driver: WebDriver, tmp_path: Path, worker: Worker
) -> None:
    until(lambda: _up(http, worker), "the worker's HTTP server")
    # 1. A good scrape: the catalogue and its plan_added events; then stock per region.
    assert http.run("scrape-catalog") == "success"
    assert http.run("scrape-availability") == "success"
    status, health = http.request("GET", "/healthz")
    assert status == 200, health
    # 2. A scrape that fails for good (Vultr answers 404): a failed-job record.
    fake.call(lambda: fake.api.fail("/v2/plans", 404, times=None))
    assert http.run("scrape-catalog") == "failed"
    failed = http.jobs()["failed"]["jobs"]
    assert len(failed) == 1 and failed[0]["function"] == "scrape-catalog"
    failed_id = failed[0]["id"]
    fake.call(fake.api.clear_faults)
    status, latest = http.request("GET", "/api/v1/changes?limit=1000")
    newest = latest["events"][-1]

    # 3. The page, as a person sees it.
    driver.get(http.base + "/")
    changes = driver.find_element(By.ID, "changes").text
    assert newest["subject"] in changes and newest["kind"] in changes
    failed_section = driver.find_element(By.ID, "failed")
    assert failed_id in failed_section.text
    assert "log in to retry" in failed_section.text
    assert driver.find_elements(By.CSS_SELECTOR, "#failed button") == []

    # 4. Log in with the token (login form -> HttpOnly SameSite=Strict cookie).
    driver.find_element(By.LINK_TEXT, "Log in").click()
    driver.find_element(By.ID, "token").send_keys(TOKEN)
    driver.find_element(By.CSS_SELECTOR, "form[action='/login'] button").click()
    until(lambda: driver.find_elements(By.CSS_SELECTOR, "#failed button"), "the retry button")
    cookies = driver.get_cookies()
    session = [cookie for cookie in cookies if cookie["name"] == "vs_session"]
    assert session and session[0]["httpOnly"] and session[0]["sameSite"] == "Strict"

    # 5. Retry: the form posts with the cookie, the API redirects back to the page.
    retry = driver.find_element(
        By.CSS_SELECTOR, f"#failed form[action='/api/v1/jobs/{failed_id}/retry'] button"
    )
    retry.click()
    notice = until(
        lambda: [
            e for e in driver.find_elements(By.CSS_SELECTOR, ".notice") if "re-enqueued" in e.text
        ],
        "the re-enqueued notice",
    )
    new_id = notice[0].text.split(" as ")[-1].rstrip(".")
    assert new_id.startswith("retry-")
    # 6. The job runs again, and succeeds now that the API answers.
    run = http.wait_run(new_id)
    assert run["function"] == "scrape-catalog" and run["outcome"] == "success", run
    record = next(job for job in http.jobs()["failed"]["jobs"] if job["id"] == failed_id)
    assert record["retried_as"] == new_id

    driver.get(http.base + "/")
    row = driver.find_element(
        By.XPATH, "//section[@id='jobs']//tr[.//strong[text()='scrape-catalog']]"
    )
    assert row.find_element(By.CSS_SELECTOR, ".badge").text == "success"
    assert "retried as " + new_id in driver.find_element(By.ID, "failed").text
    assert driver.find_elements(By.CSS_SELECTOR, "#cheapest tbody tr"), "cheapest per region"

    driver.save_screenshot(str(tmp_path / "status-page.png"))
    driver.set_window_size(390, 2400)  # a phone's width
    driver.get(http.base + "/")
    width = driver.execute_script("return document.documentElement.scrollWidth")
    assert width <= 390, f"the page scrolls sideways on a phone ({width} px)"
    driver.save_screenshot(str(tmp_path / "status-page-phone.png"))
    if os.environ.get("VS_SCREENSHOT_DIR"):  # to look at them after a run
        for name in ("status-page.png", "status-page-phone.png"):
            shutil.copy(tmp_path / name, Path(os.environ["VS_SCREENSHOT_DIR"]) / name)
