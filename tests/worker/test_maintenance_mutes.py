"""One-off maintenance ("mutes") from the CLI and the API, and "in maintenance" wherever endpoint
health is shown: the API, the status page and ``vultr-scraper health``. Real Redis throughout."""

from __future__ import annotations

import html
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec
import pytest
from click.testing import CliRunner, Result
from redis.asyncio import Redis

from tests.worker.api_harness import TOKEN, running_api
from vultr_scraper_core.config import Config, EndpointConfig, HealthConfig, WindowConfig
from vultr_scraper_core.formats import parse_time
from vultr_scraper_core.store.mutes import MuteStore
from vultr_scraper_jobs.maintenance import parse_duration, remove_mute, set_mute
from vultr_scraper_worker.cli import cli

PREFIX = "vs"


def health() -> HealthConfig:
    always = WindowConfig(start="00:00", end="24:00", timezone="Pacific/Auckland")
    return HealthConfig(
        check_vultr_api=False,
        endpoints=[
            EndpointConfig(name="api", url="http://127.0.0.1:9/"),
            EndpointConfig(name="site", url="http://127.0.0.1:9/"),
            EndpointConfig(name="batch", url="http://127.0.0.1:9/", maintenance=[always]),
        ],
    )


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("2h", 7200), ("90s", 90), ("1h30m", 5400), ("3D", 3 * 86400), ("1w", 7 * 86400)],
)
def test_durations(text: str, seconds: int) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize(
    ("text", "message"),
    [("two hours", "not a duration"), ("0m", "not a positive"), ("400d", "longer than 366")],
)
def test_bad_durations_say_why(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_duration(text)


async def test_mute_over_the_api_shows_everywhere(redis_url: str, redis: Redis) -> None:
    async with running_api(redis_url, health=health()) as api:
        path = "/api/v1/maintenance/api?for=2h&reason=moving%20the%20%3Cdb%3E"
        async with api.request("POST", path) as response:
            assert response.status == 401  # a write: the token is required
        before = datetime.now(UTC)
        mute = await api.json("POST", path, status=201, token=TOKEN)
        assert mute["target"] == "api" and mute["reason"] == "moving the <db>"
        until = parse_time(mute["until"])
        assert timedelta(hours=2) - timedelta(seconds=5) < until - before <= timedelta(hours=2)

        stored = await MuteStore(redis, PREFIX).active()
        assert [(item.target, item.reason) for item in stored] == [("api", "moving the <db>")]

        document = await api.json("GET", "/api/v1/maintenance")
        assert set(document["in_maintenance"]) == {"api", "batch"}
        assert document["in_maintenance"]["api"]["reason"] == "muted: moving the <db>"
        assert document["in_maintenance"]["batch"]["reason"].startswith("window mon,")
        assert [item["target"] for item in document["mutes"]] == ["api"]
        [window] = document["windows"]
        assert window["scope"] == "endpoint batch" and window["active"] is True

        endpoints = {e["name"]: e for e in (await api.json("GET", "/api/v1/health"))["endpoints"]}
        assert endpoints["api"]["in_maintenance"] is True
        assert endpoints["api"]["maintenance"]["reason"] == "muted: moving the <db>"
        assert endpoints["site"]["in_maintenance"] is False
        assert endpoints["site"]["maintenance"] is None

        _, page = await api.text("/")
        row = page[page.index("<strong>api</strong>") :].split("</tr>")[0]
        assert "in maintenance" in row and "moving the &lt;db&gt;" in row
        site_row = page[page.index("<strong>site</strong>") :].split("</tr>")[0]
        assert "in maintenance" not in site_row

        removed = await api.json("DELETE", "/api/v1/maintenance/api", token=TOKEN)
        assert removed == {"target": "api", "removed": True}
        await api.json("DELETE", "/api/v1/maintenance/api", status=404, token=TOKEN)
        document = await api.json("GET", "/api/v1/maintenance")
        assert set(document["in_maintenance"]) == {"batch"}


async def test_mute_everything_and_the_catalogue(redis_url: str) -> None:
    async with running_api(redis_url, health=health()) as api:
        await api.json("POST", "/api/v1/maintenance/*?for=30m", status=201, token=TOKEN)
        document = await api.json("GET", "/api/v1/maintenance")
        assert set(document["in_maintenance"]) == {"api", "site", "batch", "catalog"}
        await api.json("DELETE", "/api/v1/maintenance/*", token=TOKEN)
        until = (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
        await api.json("POST", f"/api/v1/maintenance/catalog?until={until}", 201, token=TOKEN)
        document = await api.json("GET", "/api/v1/maintenance")
        assert set(document["in_maintenance"]) == {"batch", "catalog"}


@pytest.mark.parametrize(
    ("path", "status", "message"),
    [
        ("/api/v1/maintenance/nosuch?for=2h", 404, "nothing to mute named 'nosuch'"),
        ("/api/v1/maintenance/api", 400, "exactly one of"),
        ("/api/v1/maintenance/api?for=2h&until=2030-01-01", 400, "exactly one of"),
        ("/api/v1/maintenance/api?for=soon", 400, "'for'"),
        ("/api/v1/maintenance/api?until=2020-01-01", 400, "in the future"),
        ("/api/v1/maintenance/api?for=2h&reason=" + "x" * 501, 400, "'reason'"),
    ],
)
async def test_bad_mutes_are_refused_and_store_nothing(
    redis_url: str, redis: Redis, path: str, status: int, message: str
) -> None:
    async with running_api(redis_url, health=health()) as api:
        document = await api.json("POST", path, status=status, token=TOKEN)
    assert message in document["error"]
    assert await MuteStore(redis, PREFIX).active() == []


# -- the CLI ----------------------------------------------------------------------------------


def write_config(tmp_path: Path, redis_url: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(
        f"""
[redis]
url = "{redis_url}"

[health]
check_vultr_api = false

[[health.endpoints]]
name = "api"
url = "http://127.0.0.1:9/api"

[[health.endpoints]]
name = "site"
url = "http://127.0.0.1:9/"

[[maintenance]]
days = ["sat", "sun"]
start = "02:00"
end = "04:00"
timezone = "Europe/Berlin"
endpoints = ["site"]
"""
    )
    return path


def invoke(config: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--config", str(config), *args], catch_exceptions=False)


def test_mute_unmute_and_list_from_the_cli(tmp_path: Path, redis_url: str) -> None:
    config = write_config(tmp_path, redis_url)
    result = invoke(config, "mute", "api", "--for", "2h", "--reason", "db move")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("api: muted until ") and "(db move)" in result.output

    listing = msgspec.json.decode(invoke(config, "maintenance", "--json").output)
    assert listing["in_maintenance"]["api"]["reason"] == "muted: db move"
    assert [mute["target"] for mute in listing["mutes"]] == ["api"]
    [window] = listing["windows"]
    assert (window["scope"], window["window"]) == (
        "global: site", "sat,sun 02:00-04:00 Europe/Berlin",
    )  # fmt: skip
    table = invoke(config, "maintenance").output
    assert "muted: db move" in table and "sat,sun 02:00-04:00 Europe/Berlin" in table

    report = msgspec.json.decode(invoke(config, "health", "--json").output)
    flags = {row["name"]: row["in_maintenance"] for row in report["endpoints"]}
    assert flags == {"api": True, "site": False}
    assert "UNKNOWN (maintenance)" in invoke(config, "health").output

    assert invoke(config, "unmute", "api").exit_code == 0
    again = invoke(config, "unmute", "api")
    assert again.exit_code == 1 and "'api' was not muted" in again.output
    listing = msgspec.json.decode(invoke(config, "maintenance", "--json").output)
    assert listing["mutes"] == [] and "api" not in listing["in_maintenance"]


def test_mute_until_a_time_as_json(tmp_path: Path, redis_url: str) -> None:
    config = write_config(tmp_path, redis_url)
    until = (datetime.now(UTC) + timedelta(hours=5)).replace(microsecond=0)
    stamp = until.strftime("%Y-%m-%dT%H:%M:%SZ")
    result = invoke(config, "mute", "*", "--until", stamp, "--json")
    assert result.exit_code == 0, result.output
    assert msgspec.json.decode(result.output)["until"] == stamp
    listing = msgspec.json.decode(invoke(config, "maintenance", "--json").output)
    assert set(listing["in_maintenance"]) == {"api", "site", "catalog"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("mute", "nosuch", "--for", "2h"), "nothing to mute named 'nosuch'"),
        (("mute", "api", "--for", "forever"), "not a duration"),
        (("mute", "api"), "exactly one of --for"),
        (("mute", "api", "--for", "1h", "--until", "2030-01-01"), "exactly one of --for"),
        (("mute", "api", "--until", "2020-01-01"), "in the future"),
    ],
)
def test_cli_refuses_bad_mutes(
    tmp_path: Path, redis_url: str, args: tuple[str, ...], message: str
) -> None:
    config = write_config(tmp_path, redis_url)
    result = CliRunner().invoke(cli, ["--config", str(config), *args])
    assert result.exit_code == 2, result.output
    assert message in html.unescape(result.output)
    listing = msgspec.json.decode(invoke(config, "maintenance", "--json").output)
    assert listing["mutes"] == []


async def test_an_ended_mute_is_not_ended_again(redis: Redis) -> None:
    config = Config(health=health())
    now = datetime.now(UTC)
    await set_mute(redis, config, "api", until=now + timedelta(minutes=5), now=now)
    assert not await remove_mute(redis, config, "api", now + timedelta(minutes=6))
    await set_mute(redis, config, "api", until=now + timedelta(minutes=5), now=now)
    assert await remove_mute(redis, config, "api", now + timedelta(minutes=4))
