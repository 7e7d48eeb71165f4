"""Configuration of endpoints, alerts and sinks: the documented examples load, mistakes are
one-line errors naming the key."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

import pytest

from vultr_scraper_core.config import ALERT_KINDS, ConfigError, load_config
from vultr_scraper_jobs.alerts import WATCHES

DOC = Path(__file__).resolve().parents[2] / "docs" / "health-and-alerts.md"


def load(tmp_path: Path, text: str) -> None:
    path = tmp_path / "config.toml"
    path.write_text(text)
    load_config(path, environ={})


def test_price_bounds_are_exact_decimals(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(
        '[[alerts]]\nname = "a"\nkinds = ["new_plan"]\nmax_hourly = 0.1\nmax_monthly = "7.005"\n'
    )
    (alert,) = load_config(path, environ={}).config.alerts
    # As written, not the binary float nearest to it (0.1000000000000000055...).
    assert alert.max_hourly == Decimal("0.1") and type(alert.max_hourly) is Decimal
    assert alert.max_monthly == Decimal("7.005")
    env = {"VULTR_SCRAPER__ALERTS": '[{name = "b", kinds = ["new_plan"], max_hourly = 2.35}]'}
    (alert,) = load_config(None, environ=env).config.alerts
    assert alert.max_hourly == Decimal("2.35")
    with pytest.raises(ConfigError, match=r"alerts\[0\]\.max_monthly"):
        load(tmp_path, '[[alerts]]\nname = "a"\nkinds = ["new_plan"]\nmax_monthly = "cheap"\n')


def test_documented_examples_load(tmp_path: Path) -> None:
    blocks = re.findall(r"```toml\n(.*?)```", DOC.read_text(), flags=re.DOTALL)
    assert len(blocks) == 7
    secret = tmp_path / "secret"
    secret.write_text("https://hooks.slack.example/T000/B000/XXXX\n")
    text = re.sub(r'secret_file = "[^"]*"', f'secret_file = "{secret}"', "\n".join(blocks))
    path = tmp_path / "config.toml"
    path.write_text(text)
    loaded = load_config(path, environ={})
    assert [alert.name for alert in loaded.config.alerts] == [
        "gpu-eu",
        "cheap-new-plans",
        "a100-reliable",
        "api-down",
        "shop-down",
    ]
    assert loaded.config.alerts[4].remind_every == 3600
    kinds = {sink.kind for sink in loaded.config.sinks}
    assert kinds == {"webhook", "slack", "ntfy", "apprise", "email"}
    schemes = [endpoint.url.partition(":")[0] for endpoint in loaded.config.health.endpoints]
    assert schemes == ["https"] * 3 + ["tcp", "tcp", "tls", "dns", "dns", "https"]
    assert len(loaded.config.maintenance) == 2
    assert loaded.config.http.public_badges and loaded.config.http.badge_max_age == 300
    assert loaded.config.health.endpoints[-1].maintenance[0].timezone == "America/New_York"


def test_vocabulary_is_the_matchers() -> None:
    assert set(ALERT_KINDS) == set(WATCHES)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            '[[alerts]]\nname = "a"\nkinds = ["back_in_stok"]\n',
            "alerts[0].kinds: unknown kind 'back_in_stok'; known: new_plan,",
        ),
        ('[[alerts]]\nname = "a"\n', "alerts[0].kinds: must name at least one event kind"),
        (
            '[[alerts]]\nname = "a"\nkinds = ["new_plan"]\nsinks = ["nope"]\n',
            "alerts[0].sinks: unknown sink nope",
        ),
        ('[[sinks]]\nname = "s"\nkind = "webhook"\n', "sinks[0].url: required"),
        ('[[sinks]]\nname = "s"\nkind = "pager"\nurl = "http://x"\n', "sinks[0].kind"),
        ('[[sinks]]\nname = "s"\nkind = "email"\n', "sinks[0].host: required"),
        (
            '[[sinks]]\nname = "s"\nkind = "email"\nhost = "mx"\nsender = "a@b"\n',
            "sinks[0]: an email sink needs sender and recipients",
        ),
        (
            '[[sinks]]\nname = "s"\nkind = "email"\nhost = "mx"\nsender = "a@b"\n'
            'recipients = ["c@d"]\nsecurity = "ssl"\n',
            "sinks[0].security",
        ),
        (
            '[[sinks]]\nname = "s"\nkind = "apprise"\nurl = "tgram://t/c"\n',
            "sinks[0].url: an Apprise URL holds credentials: put it in secret_file",
        ),
        ('[[sinks]]\nname = "s"\nkind = "apprise"\n', "sinks[0].secret_file: required"),
        (
            '[[alerts]]\nname = "a"\nkinds = ["endpoint_down"]\nremind_every = 5\n',
            "alerts[0].remind_every: must be at least 60 seconds",
        ),
        (
            '[[health.endpoints]]\nname = "e"\nurl = "tcp://db.example"\n',
            "health.endpoints[0].url: expected tcp://HOST:PORT",
        ),
        (
            '[[health.endpoints]]\nname = "e"\nurl = "tcp://db:5432"\njson_path = "a"\n',
            "health.endpoints[0].json_path: does not apply to a tcp:// endpoint",
        ),
        (
            '[[health.endpoints]]\nname = "e"\nurl = "tcp://db:5432"\ncert_min_days = 3\n',
            "health.endpoints[0].cert_min_days: does not apply to a tcp:// endpoint",
        ),
        (
            '[[health.endpoints]]\nname = "e"\nurl = "https://x"\nsend = "PING"\n',
            "health.endpoints[0].send: does not apply to a https:// endpoint",
        ),
        ('[[health.endpoints]]\nname = "e"\nurl = "dns://1.1.1.1"\n', "expected dns://"),
        (
            '[[health.endpoints]]\nname = "e"\nurl = "dns:///x.org"\nquery_type = "AAAAA"\n',
            "health.endpoints[0].query_type: unknown record type 'AAAAA'",
        ),
        (
            '[[health.endpoints]]\nname = "e"\nurl = "dns:///x.org"\nexpect_rcode = "NOPE"\n',
            "health.endpoints[0].expect_rcode: unknown response code 'NOPE'",
        ),
        (
            '[[maintenance]]\nstart = "25:00"\nend = "03:00"\n',
            "maintenance[0]: not a time of day: '25:00'",
        ),
        (
            '[[maintenance]]\nstart = "02:00"\nend = "03:00"\ntimezone = "Mars/Olympus"\n',
            "maintenance[0]: unknown time zone 'Mars/Olympus'",
        ),
        (
            '[[maintenance]]\nstart = "02:00"\nend = "03:00"\ndays = ["sat", "caturday"]\n',
            "maintenance[0]: unknown day 'caturday'",
        ),
        (
            '[[health.endpoints]]\nname = "e"\nurl = "http://x"\n'
            '[[health.endpoints.maintenance]]\nstart = "1:00"\nend = "2:00"\nendpoints = ["x"]\n',
            "health.endpoints[0].maintenance[0].endpoints: only for [[maintenance]]",
        ),
        (
            '[[health.endpoints]]\nname = "e"\nurl = "http://x"\nbody_regex = "("\n',
            "health.endpoints[0].body_regex: invalid regular expression",
        ),
        (
            '[[health.endpoints]]\nname = "e"\nurl = "http://x"\njson_path = "a..b"\n',
            "health.endpoints[0].json_path: invalid path",
        ),
        ('[[health.endpoints]]\nname = "e"\nurl = "ftp://x"\n', "health.endpoints[0].url"),
        ("[health]\nconcurrency = 0\n", "health.concurrency: must be at least 1"),
    ],
)
def test_mistakes_are_named(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, text)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)
