"""``run scrape-*``, ``plans``, ``changes``, ``availability`` and ``quarantine`` end to end: the
real CLI, a real Redis and the fake Vultr API (served from a thread, as the CLI runs its own
event loop)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import pytest
from click.testing import Result

from tests.fakes.vultr_api import FakeVultrAPI
from tests.worker.cli_harness import cli_runner
from vultr_scraper_worker.cli import cli
from vultr_scraper_worker.cli.catalog_cmd import describe_value, gigabytes, parse_megabytes


@pytest.fixture
def api() -> Iterator[FakeVultrAPI]:
    fake = FakeVultrAPI()
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(fake.start(), loop).result(10)
    try:
        yield fake
    finally:
        asyncio.run_coroutine_threadsafe(fake.stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


@pytest.fixture
def config(tmp_path: Path, redis_url: str, api: FakeVultrAPI) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(
        f"""
[redis]
url = "{redis_url}"

[vultr]
base_url = "{api.base_url}"

[client]
rate_limit = 0
max_attempts = 2
backoff_base = 0.01
backoff_cap = 0.01

[worker]
max_tries = 1
"""
    )
    return path


def invoke(config: Path, *args: str) -> Result:
    return cli_runner().invoke(cli, ["--config", str(config), *args], catch_exceptions=False)


def json_of(result: Result) -> Any:
    assert result.exit_code == 0, result.output
    return msgspec.json.decode(result.stdout)


def test_scrape_then_query_plans(config: Path) -> None:
    run = json_of(invoke(config, "run", "scrape-catalog"))
    assert run["status"] == "success" and run["added"] == 7

    document = json_of(invoke(config, "plans", "--json"))
    prices = [Decimal(row["monthly_cost"]) for row in document["plans"]]
    assert prices == sorted(prices) and document["count"] == len(prices)
    assert document["plans"][0]["monthly_cost"] == "5"  # exact text, not a float

    cheap = json_of(invoke(config, "plans", "--max-monthly", "5", "--json"))
    assert {(row["plan"], row["region"]) for row in cheap["plans"]} == {
        ("vc2-1c-1gb", "ewr"),
        ("vc2-1c-1gb", "fra"),
        ("vc2-1c-1gb", "ams"),
    }
    gpu = json_of(invoke(config, "plans", "--type", "vcg", "--min-gpu-vram", "40", "--json"))
    assert {row["region"] for row in gpu["plans"]} == {"fra", "ams"}
    big = json_of(invoke(config, "plans", "--min-ram", "100GB", "--min-vcpu", "16", "--json"))
    assert {row["plan"] for row in big["plans"]} == {"vcg-l40s-16c-180g-48vram"}
    regional = json_of(
        invoke(config, "plans", "--plan", "vhp-2c-4gb-amd", "--region", "fra", "--json")
    )
    assert regional["plans"][0]["monthly_cost"] == "26.4"

    table = invoke(config, "plans", "--region", "sao")
    assert table.exit_code == 0
    lines = table.stdout.splitlines()
    assert lines[0].split() == [
        "PLAN",
        "TYPE",
        "REGION",
        "VCPU",
        "RAM",
        "DISK",
        "GPU",
        "MONTHLY",
        "HOURLY",
        "STOCK",
    ]
    assert lines[1].split()[:3] == ["vc2-1c-1gb-sc1", "vc2", "sao"]
    assert "7.50" in lines[1] and "0.011" in lines[1]

    limited = invoke(config, "plans", "--limit", "2")
    assert len(limited.stdout.splitlines()) == 4 and "more" in limited.stdout.splitlines()[-1]


def test_changes_filters_and_pages(config: Path, api: FakeVultrAPI) -> None:
    invoke(config, "run", "scrape-catalog")
    api.catalogue.plan("vc2-2c-4gb")["monthly_cost"] = 24
    invoke(config, "run", "scrape-catalog")

    added = json_of(invoke(config, "changes", "--kind", "plan_added", "--json"))
    assert added["count"] == 7
    priced = json_of(
        invoke(config, "changes", "--plan", "vc2-2c-4gb", "--kind", "price_changed", "--json")
    )
    (event,) = priced["changes"]
    assert (event["old"], event["new"], event["field"]) == ("20", "24", "monthly_cost")

    first = json_of(invoke(config, "changes", "--after", "0", "--limit", "5", "--json"))
    assert first["count"] == 5 and first["next"] == first["changes"][-1]["id"]
    rest = json_of(invoke(config, "changes", "--after", first["next"], "--limit", "100", "--json"))
    everything = json_of(invoke(config, "changes", "--limit", "1000", "--json"))
    ids = [event["id"] for event in everything["changes"]]
    assert [event["id"] for event in (*first["changes"], *rest["changes"])] == ids
    assert rest["next"] is None
    assert ids == sorted(ids, key=lambda event_id: tuple(map(int, event_id.split("-"))))

    # No cursor and no window: the newest --limit events, printed oldest to newest.
    newest = json_of(invoke(config, "changes", "--limit", "3", "--json"))
    assert [event["id"] for event in newest["changes"]] == ids[-3:]
    assert newest["next"] is None  # nothing follows the newest event
    assert newest["changes"][-1]["kind"] == "price_changed"
    table = invoke(config, "changes", "--limit", "3")
    assert [line.split()[0] for line in table.stdout.splitlines()[1:4]] == ids[-3:]
    assert "older ones: vultr-scraper changes --after 0" in table.stdout
    assert "--after" not in invoke(config, "changes", "--limit", "1000").stdout
    about = json_of(invoke(config, "changes", "--plan", "vc2-2c-4gb", "--limit", "1", "--json"))
    assert [event["kind"] for event in about["changes"]] == ["price_changed"]
    # --since keeps reading forwards from that time, with the next-page cursor.
    since = json_of(invoke(config, "changes", "--since", "1h", "--limit", "2", "--json"))
    assert [event["id"] for event in since["changes"]] == ids[:2]
    assert since["next"] == ids[1]

    table = invoke(config, "changes", "--plan", "vc2-2c-4gb")
    assert "price_changed" in table.stdout and "20 -> 24" in table.stdout
    assert invoke(config, "changes", "--since", "1h").exit_code == 0
    # Seconds too, read by the same parser as the API's since=.
    recent = json_of(invoke(config, "changes", "--since", "3600s", "--limit", "2", "--json"))
    assert [event["id"] for event in recent["changes"]] == ids[:2]
    future = json_of(invoke(config, "changes", "--since", "2999-01-01", "--json"))
    assert future["changes"] == []


def test_plans_at_answers_from_history(config: Path, api: FakeVultrAPI) -> None:
    invoke(config, "run", "scrape-catalog")
    between = datetime.now(UTC)
    api.catalogue.plan("vc2-2c-4gb")["monthly_cost"] = 24
    invoke(config, "run", "scrape-catalog")
    when = between.isoformat().replace("+00:00", "Z")
    args = ["plans", "--plan", "vc2-2c-4gb", "--region", "ewr", "--json"]
    then = json_of(invoke(config, *args, "--at", when))
    now = json_of(invoke(config, *args))
    assert then["plans"][0]["monthly_cost"] == "20" and now["plans"][0]["monthly_cost"] == "24"
    assert then["at"] is not None
    table = invoke(config, "plans", "--plan", "vc2-2c-4gb", "--at", when)
    assert table.stdout.startswith("# as of ")
    assert json_of(invoke(config, *args, "--at", "2000-01-01"))["plans"] == []
    bad = invoke(config, "plans", "--at", "yesterday-ish")
    assert bad.exit_code == 2 and "not a time" in bad.stderr


def test_availability_and_in_stock(config: Path, api: FakeVultrAPI) -> None:
    invoke(config, "run", "scrape-catalog")
    assert json_of(invoke(config, "run", "scrape-availability"))["status"] == "success"
    api.catalogue.availability["ams"].remove("vc2-2c-4gb")
    result = json_of(invoke(config, "run", "scrape-availability"))
    assert result["closed"] == 1

    rows = json_of(invoke(config, "availability", "--plan", "vc2-2c-4gb", "--json"))["stock"]
    assert [(row["region"], row["in_stock"]) for row in rows] == [
        ("ams", False),
        ("ewr", True),
        ("fra", False),
    ]
    assert rows[0]["last_in_stock"] is not None
    out = json_of(invoke(config, "availability", "--out-of-stock", "--json"))
    out_pairs = {(row["plan"], row["region"]): row for row in out["stock"]}
    assert out_pairs[("vc2-2c-4gb", "ams")]["last_in_stock"] is not None
    # Sold in fra but never listed in stock there: out of stock, never in stock.
    l40s = out_pairs[("vcg-l40s-16c-180g-48vram", "fra")]
    assert (l40s["in_stock"], l40s["last_in_stock"], l40s["first_seen"]) == (False, None, None)
    # Every pair `plans` shows as out of stock is listed, and nothing else.
    every = json_of(invoke(config, "plans", "--json"))["plans"]
    assert set(out_pairs) == {(row["plan"], row["region"]) for row in every if not row["in_stock"]}
    table = invoke(config, "availability", "--out-of-stock")
    assert "vcg-l40s-16c-180g-48vram" in table.stdout and "(none)" not in table.stdout
    in_stock = json_of(invoke(config, "plans", "--in-stock", "--plan", "vc2-2c-4gb", "--json"))
    assert [row["region"] for row in in_stock["plans"]] == ["ewr"]
    table = invoke(config, "availability", "--region", "sao")
    assert "vc2-1c-1gb-sc1" in table.stdout and "yes" in table.stdout
    stock_events = json_of(invoke(config, "changes", "--kind", "stock_changed", "--json"))
    assert stock_events["count"] == 1


def test_quarantine_show_accept_and_discard(config: Path, api: FakeVultrAPI) -> None:
    invoke(config, "run", "scrape-catalog")
    assert invoke(config, "quarantine").stdout.strip() == "nothing is quarantined"
    api.catalogue.plans = api.catalogue.plans[:2]
    held = invoke(config, "run", "scrape-catalog")
    assert held.exit_code == 3  # the run command's "quarantined" status
    assert msgspec.json.decode(held.stdout)["status"] == "quarantined"

    shown = invoke(config, "quarantine")
    assert shown.exit_code == 0
    assert "plans: 2 items, down from 6" in shown.stdout
    assert "plans 6 -> 2" in shown.stdout
    assert "4 plan_retired" in shown.stdout
    document = json_of(invoke(config, "quarantine", "--json"))
    assert document["quarantine"]["complete"] is True
    assert document["accepting_would"] == {"plan_retired": 4}

    accepted = json_of(invoke(config, "quarantine", "accept", "--json"))
    assert accepted["status"] == "success" and accepted["retired"] == 4
    remaining = json_of(invoke(config, "plans", "--json"))["plans"]
    assert {row["plan"] for row in remaining} == {"vc2-1c-1gb", "vc2-1c-1gb-sc1", "vbm-4c-32gb"}
    again = invoke(config, "quarantine", "accept")
    assert again.exit_code == 1 and "nothing is quarantined" in again.stderr

    api.catalogue.plans = [*api.catalogue.plans[:1], dict(api.catalogue.plans[1], monthly_cost=99)]
    assert invoke(config, "run", "scrape-catalog").exit_code == 3
    assert (
        invoke(config, "quarantine", "discard").stdout.strip() == "quarantined snapshot discarded"
    )
    # Nothing held: discard fails like accept does (exit 1, the reason on stderr).
    nothing = invoke(config, "quarantine", "discard")
    assert nothing.exit_code == 1 and "nothing is quarantined" in nothing.stderr


def test_without_redis_server_the_cli_says_how_to_get_one(tmp_path: Path) -> None:
    state = tmp_path / "s"
    config = tmp_path / "config.toml"
    config.write_text(f'[paths]\nstate_dir = "{state}"\n')
    empty_path = tmp_path / "bin"
    empty_path.mkdir()
    for args in (
        ["plans"],
        ["changes"],
        ["availability"],
        ["quarantine"],
        ["run", "scrape-catalog"],
    ):
        result = cli_runner({"PATH": str(empty_path)}).invoke(cli, ["--config", str(config), *args])
        assert result.exit_code == 69, (args, result.output)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and "redis-server was not found on PATH" in lines[0], lines


def test_parsers_and_formatting() -> None:
    # Times, cursors and money: vultr_scraper_core.formats (tests/core/test_formats.py).
    assert parse_megabytes("4096") == 4096
    assert parse_megabytes("8GB") == 8192
    assert parse_megabytes("1.5g") == 1536
    with pytest.raises(ValueError, match="not a size"):
        parse_megabytes("lots")
    assert gigabytes(184320) == "180 GB" and gigabytes(512) == "0.5 GB"
    assert (
        describe_value({"type": "vc2", "monthly_cost": "5", "other": 1})
        == "type=vc2 monthly_cost=5"
    )
    assert describe_value([str(n) for n in range(30)]).endswith("...")
    assert describe_value(True) == "yes" and describe_value(None) == "-"


def test_held_stock_answers_are_shown_accepted_and_discarded(
    config: Path, api: FakeVultrAPI
) -> None:
    assert invoke(config, "run", "scrape-catalog").exit_code == 0
    for _ in range(2):  # the first check of each region is the silent baseline
        assert invoke(config, "run", "scrape-availability").exit_code == 0
    stock_before = json_of(invoke(config, "changes", "--kind", "stock_changed", "--json"))
    fra_before = json_of(invoke(config, "availability", "--region", "fra", "--json"))
    assert any(row["in_stock"] for row in fra_before["stock"])
    for region in api.catalogue.availability:
        api.catalogue.availability[region] = []  # one empty answer everywhere
    held = invoke(config, "run", "scrape-availability")
    assert held.exit_code == 3

    shown = invoke(config, "quarantine")
    assert shown.exit_code == 0, shown.output
    assert "held stock answers: 4 regions" in shown.stdout
    assert "ewr: reports no plan in stock, down from 4" in shown.stdout
    assert "4 -> 0" in shown.stdout and "emptied" in shown.stdout
    document = json_of(invoke(config, "quarantine", "--json"))
    assert document["quarantine"] is None
    assert [answer["region"] for answer in document["stock"]] == ["ams", "ewr", "fra", "sao"]
    assert all(answer["reasons"] and answer["listed"] == [] for answer in document["stock"])

    accepted = json_of(invoke(config, "quarantine", "accept", "--region", "ewr", "--json"))
    assert accepted["status"] == "success"
    assert accepted["stock"]["accepted"] == ["ewr"] and accepted["stock"]["events"] == 4
    ewr = json_of(invoke(config, "availability", "--region", "ewr", "--json"))
    assert ewr["stock"] and not any(row["in_stock"] for row in ewr["stock"])
    fra = json_of(invoke(config, "availability", "--region", "fra", "--json"))
    assert fra == fra_before  # still held, so unchanged
    stock_after = json_of(invoke(config, "changes", "--kind", "stock_changed", "--json"))
    assert stock_after["count"] == stock_before["count"] + 4

    discarded = invoke(config, "quarantine", "discard", "--stock")
    assert discarded.stdout.strip() == "held stock answers discarded: ams, fra, sao"
    assert invoke(config, "quarantine").stdout.strip() == "nothing is quarantined"
    again = invoke(config, "quarantine", "accept")
    assert again.exit_code == 1 and "nothing is quarantined" in again.stderr
    fra = json_of(invoke(config, "availability", "--region", "fra", "--json"))
    assert fra == fra_before  # discarded: unchanged


def test_quarantine_preview_says_how_many_more(config: Path, api: FakeVultrAPI) -> None:
    template = api.catalogue.plans[0]
    extra = [dict(template, id=f"vc2-extra-{n:02d}") for n in range(30)]
    api.catalogue.plans = [*api.catalogue.plans, *extra]
    assert invoke(config, "run", "scrape-catalog").exit_code == 0
    api.catalogue.plans = api.catalogue.plans[:2]  # 34 plans retired at once: held back
    assert invoke(config, "run", "scrape-catalog").exit_code == 3
    document = json_of(invoke(config, "quarantine", "--json"))
    retired = document["accepting_would"]["plan_retired"]
    assert len(document["preview"]) == 20 and document["preview_more"] == retired - 20
    shown = invoke(config, "quarantine").stdout
    assert f"... and {retired - 20} more" in shown


def test_quarantine_help_shows_whole_subcommand_descriptions(config: Path) -> None:
    shown = invoke(config, "quarantine", "--help").stdout
    commands = shown[shown.index("Commands:") :]
    assert "..." not in commands
    assert "and print the result." in " ".join(shown.split())
    assert "(the current catalogue and stock stay)." in " ".join(shown.split())


def test_an_unknown_region_is_named_not_an_empty_table(config: Path) -> None:
    invoke(config, "run", "scrape-catalog")
    for command in ("plans", "availability"):
        unknown = invoke(config, command, "--region", "zzz")
        assert unknown.exit_code == 2, (command, unknown.stdout)
        assert "no such region 'zzz'" in unknown.stderr and "fra" in unknown.stderr
    # A known region with nothing matching is an empty answer, not an error.
    empty = invoke(config, "plans", "--region", "fra", "--min-vcpu", "9999")
    assert empty.exit_code == 0 and "(none)" in empty.stdout


def test_availability_limit(config: Path) -> None:
    invoke(config, "run", "scrape-catalog")
    invoke(config, "run", "scrape-availability")
    every = json_of(invoke(config, "availability", "--json"))
    assert every["count"] > 2
    two = json_of(invoke(config, "availability", "--limit", "2", "--json"))
    assert two["count"] == every["count"] and two["stock"] == every["stock"][:2]
    table = invoke(config, "availability", "--limit", "2").stdout
    assert f"# {every['count'] - 2} more; raise --limit" in table
    assert invoke(config, "availability", "--limit", "0").exit_code == 2


def test_plans_into_a_closed_pipe_exits_0(config: Path, api: FakeVultrAPI) -> None:
    """`vultr-scraper plans | head`: the reader stopping early is not a failure."""
    import os
    import subprocess
    import sys

    template = api.catalogue.plans[0]
    api.catalogue.plans = [dict(template, id=f"vc2-pipe-{n:03d}") for n in range(600)]
    assert invoke(config, "run", "scrape-catalog").exit_code == 0
    env = {**os.environ, "VULTR_SCRAPER_CONFIG": str(config)}
    process = subprocess.Popen(
        [sys.executable, "-m", "vultr_scraper_worker", "plans"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    assert process.stdout is not None and process.stderr is not None
    assert process.stdout.readline().startswith(b"PLAN")
    process.stdout.close()  # like head after its lines
    errors = process.stderr.read()
    process.stderr.close()
    assert process.wait(timeout=60) == 0, errors
    assert b"Traceback" not in errors and b"Broken pipe" not in errors
