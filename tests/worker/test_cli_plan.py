"""``vultr-scraper plan ID`` and ``availability --stats`` on the explorer's seeded store."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from redis.asyncio import Redis

from tests.worker.cli_harness import cli_env, invoke
from tests.worker.test_explorer_pages import seed
from vultr_scraper_worker.cli.plan_cmd import printable, share_bars, sparkline


def seeded(redis_url: str) -> None:
    """Seed on a loop of its own: the CLI runs its own ``asyncio.run``."""

    async def run() -> None:
        client = Redis.from_url(redis_url)
        try:
            await seed(client)
        finally:
            await client.aclose()

    asyncio.run(run())


def test_plan_command(redis_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seeded(redis_url)
    env = cli_env(redis_url, tmp_path, monkeypatch)
    text = invoke(env, "plan", "vc2-1c-1gb")
    as_json = invoke(env, "plan", "vc2-1c-1gb", "--json", "--span", "30d")
    missing = invoke(env, "plan", "nothing\x1b[2J")
    assert text.exit_code == 0, text.stderr
    assert "vc2-1c-1gb  (cloud, type vc2)" in text.stdout
    lines: dict[str, str] = {}
    for line in text.stdout.splitlines():  # the first line of each region: its prices
        if line.strip():
            lines.setdefault(line.split()[0], line)
    assert "regional" in lines["fra"] and "base" in lines["ewr"]
    # The price sparkline of ewr rises once ($4 -> $5) in its 90 days.
    assert "▁" in lines["ewr"] and "█" in lines["ewr"]
    stats_lines = [line for line in text.stdout.splitlines() if line.startswith("fra ")]
    assert any("8.3%" in line and "in 2.0h" in line for line in stats_lines)
    document = json.loads(as_json.stdout)
    assert document["plan"] == "vc2-1c-1gb" and {s["region"] for s in document["stats"]} == {
        "fra",
        "ewr",
    }
    assert missing.exit_code == 1 and "\x1b" not in missing.stderr


def test_availability_stats(
    redis_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seeded(redis_url)
    env = cli_env(redis_url, tmp_path, monkeypatch)
    text = invoke(env, "availability", "--region", "fra", "--stats")
    as_json = invoke(env, "availability", "--region", "fra", "--stats", "--json")
    assert text.exit_code == 0, text.stderr
    header = text.stdout.splitlines()[0].split()
    assert header[-4:] == ["24H", "7D", "30D", "MEDIAN_BACK"]
    gpu = next(line for line in text.stdout.splitlines() if line.startswith("vcg-a100"))
    assert "14.3%" in gpu  # one day of the last seven
    rows = json.loads(as_json.stdout)["stock"]
    fra = next(row for row in rows if row["plan"] == "vc2-1c-1gb")
    assert fra["stats"]["returns"] == 1 and fra["stats"]["in_stock"] is True


def test_terminal_helpers() -> None:
    assert sparkline([1.0, 2.0, 3.0]) == "▁▅█"
    assert sparkline([None, 5.0]) == " ▁"
    assert share_bars([0.0, 0.5, 1.0, None]) == "▁▅█ "
    assert printable("a\x1b[31mb\x9b") == "a?[31mb?"
