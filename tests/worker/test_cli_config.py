"""``vultr-scraper --help``, ``--version``, ``config check`` and ``config show``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import tomllib
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest
from click.testing import Result

from tests.redis_server import env_without_project_vars
from tests.worker import cli_harness
from vultr_scraper_core import __version__
from vultr_scraper_core.config import EX_CONFIG, Config, load_config

API_KEY = "VULTR-API-KEY-0123456789"
REDIS_PASSWORD = "redis-pass-987"
TOKEN = "http-token-555"
HOOK_SECRET = "hook-secret-321"
URL_PASSWORD = "url-pass-246"
BEARER = "bearer-cred-135"
SECRETS = (API_KEY, REDIS_PASSWORD, TOKEN, HOOK_SECRET, URL_PASSWORD, BEARER)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in list(os.environ):
        if name.startswith("VULTR_SCRAPER") or name == "CREDENTIALS_DIRECTORY":
            monkeypatch.delenv(name)
    yield


def invoke(*args: str, env: dict[str, str] | None = None) -> Result:
    return cli_harness.invoke(env, *args)


def one_line_error(result: Result) -> str:
    assert result.exit_code == EX_CONFIG, result.output
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("vultr-scraper: config error: ")
    return lines[0].removeprefix("vultr-scraper: config error: ")


def write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


@pytest.fixture
def secret_config(tmp_path: Path) -> Path:
    for name, value in (
        ("api-key", API_KEY),
        ("redis-pass", REDIS_PASSWORD),
        ("token", TOKEN),
        ("hook", HOOK_SECRET),
    ):
        (tmp_path / name).write_text(value + "\n")
    return write(
        tmp_path / "config.toml",
        f"""
        [vultr]
        api_key_file = "{tmp_path / "api-key"}"

        [redis]
        url = "redis://app:{URL_PASSWORD}@127.0.0.1:6379/0"
        password_file = "{tmp_path / "redis-pass"}"

        [http]
        token_file = "{tmp_path / "token"}"

        [[health.endpoints]]
        name = "site"
        url = "https://example.org/health"
        headers = {{ Authorization = "Bearer {BEARER}", "X Custom.Name" = "plain" }}
        max_latency_ms = 500

        [[sinks]]
        name = "hook"
        url = "https://hooks.example.org/in"
        secret_file = "{tmp_path / "hook"}"
        """,
    )


# -- help and version ------------------------------------------------------------------------


def test_help_lists_the_config_group() -> None:
    result = invoke("--help")
    assert result.exit_code == 0
    assert "Usage: vultr-scraper" in result.stdout
    assert "config" in result.stdout
    assert "78  configuration error" in result.stdout
    group = invoke("config", "--help")
    assert group.exit_code == 0
    assert "check" in group.stdout and "show" in group.stdout


@pytest.mark.parametrize("flag", ["--version", "-V"])
def test_version(flag: str) -> None:
    result = invoke(flag)
    assert result.exit_code == 0
    assert result.stdout == f"vultr-scraper {__version__}\n"


def test_python_dash_m_runs_the_same_cli(tmp_path: Path) -> None:
    env = env_without_project_vars()
    version = subprocess.run(
        [sys.executable, "-m", "vultr_scraper_worker", "--version"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert (version.returncode, version.stdout) == (0, f"vultr-scraper {__version__}\n")
    bad = write(tmp_path / "bad.toml", "[redis]\nurll = 1\n")
    check = subprocess.run(
        [sys.executable, "-m", "vultr_scraper_worker", "--config", str(bad), "config", "check"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert check.returncode == EX_CONFIG
    assert check.stderr == f"vultr-scraper: config error: {bad}: redis.urll: unknown key\n"


# -- config check ----------------------------------------------------------------------------


def test_check_without_a_file() -> None:
    result = invoke("config", "check")
    assert result.exit_code == 0
    assert result.stdout == "configuration OK (defaults)\n"


def test_check_and_show_name_environment_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VULTR_SCRAPER__VULTR__BASE_URL", "http://127.0.0.1:9/v2")
    source = "defaults + environment (VULTR_SCRAPER__VULTR__BASE_URL)"
    assert invoke("config", "check").stdout == f"configuration OK ({source})\n"
    assert invoke("config", "show").stdout.startswith(f"# source: {source}\n")
    assert json.loads(invoke("config", "show", "--json").stdout)["source"] == source


def test_check_with_a_file_from_option_and_from_env(secret_config: Path) -> None:
    by_option = invoke("--config", str(secret_config), "config", "check")
    by_env = invoke("config", "check", env={"VULTR_SCRAPER_CONFIG": str(secret_config)})
    for result in (by_option, by_env):
        assert result.exit_code == 0, result.stderr
        assert result.stdout == f"configuration OK ({secret_config})\n"
        assert not any(secret in result.output for secret in SECRETS)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[redis]\nurll = 'x'\n", "redis.urll: unknown key"),
        ("[client]\ntimeout = 'slow'\n", "client.timeout: Expected `float`, got `str`"),
        ("[redis\nurl = 'x'\n", "invalid TOML: "),
        ("[log]\nlevel = 'chatty'\n", "log.level: must be one of"),
    ],
    ids=["unknown-key", "wrong-type", "invalid-toml", "bad-value"],
)
def test_check_file_errors_exit_78(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path / "config.toml", text)
    message = one_line_error(invoke("--config", str(path), "config", "check"))
    assert message.startswith(f"{path}: {expected}")


SLOW_SINK = """
    [[sinks]]
    name = "hook"
    url = "https://hooks.example/in"
    timeout = 60
"""


def test_check_refuses_a_sink_timeout_not_below_the_delivery_job_timeout(tmp_path: Path) -> None:
    """An attempt as long as its job would be cut off by the job's timeout: the sink's timeout
    must be lower than ``[worker.timeouts] deliver_notification`` (and ``deliver_digest``)."""
    path = write(tmp_path / "config.toml", SLOW_SINK)
    assert one_line_error(invoke("--config", str(path), "config", "check")) == (
        f"{path}: sinks[0].timeout: must be lower than worker.timeouts.deliver_notification "
        "(60 s), got 60 s: an attempt that slow would be cut off by the job's timeout"
    )
    digest = write(
        tmp_path / "digest.toml", SLOW_SINK + "[worker.timeouts]\ndeliver_notification = 120\n"
    )
    message = one_line_error(invoke("--config", str(digest), "config", "check"))
    assert "sinks[0].timeout: must be lower than worker.timeouts.deliver_digest (60 s)" in message
    longer = "[worker.timeouts]\ndeliver_notification = 61\ndeliver_digest = 61\n"
    fine = write(tmp_path / "fine.toml", SLOW_SINK + longer)
    result = invoke("--config", str(fine), "config", "check")
    assert result.exit_code == 0, result.output


def test_check_env_override_with_wrong_type_names_the_variable(tmp_path: Path) -> None:
    path = write(tmp_path / "config.toml", "[worker]\nmax_tries = 3\n")
    result = invoke(
        "--config", str(path), "config", "check", env={"VULTR_SCRAPER__WORKER__MAX_TRIES": "many"}
    )
    assert one_line_error(result) == (
        "environment variable VULTR_SCRAPER__WORKER__MAX_TRIES: worker.max_tries: "
        "Expected `int`, got `str`"
    )


def test_check_rejects_a_bad_listen_address() -> None:
    result = invoke("config", "check", env={"VULTR_SCRAPER__HTTP__LISTEN": "1"})
    assert result.exit_code == EX_CONFIG
    assert one_line_error(result) == (
        "environment variable VULTR_SCRAPER__HTTP__LISTEN: http.listen: expected HOST:PORT "
        "(e.g. 127.0.0.1:8080), [IPv6]:PORT, :PORT, unix:/path or empty, got '1'"
    )


def test_check_unreadable_secret_file(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-key"
    path = write(tmp_path / "config.toml", f'[vultr]\napi_key_file = "{missing}"\n')
    message = one_line_error(invoke("--config", str(path), "config", "check"))
    assert message == (
        f"{path}: vultr.api_key_file: cannot read secret file {missing}: No such file or directory"
    )


def test_check_missing_config_file(tmp_path: Path) -> None:
    missing = tmp_path / "absent.toml"
    message = one_line_error(invoke("--config", str(missing), "config", "check"))
    assert message == f"{missing}: cannot read config file: No such file or directory"


# -- config show -----------------------------------------------------------------------------


def test_show_masks_every_secret(secret_config: Path) -> None:
    for args in (("config", "show"), ("config", "show", "--json")):
        result = invoke("--config", str(secret_config), *args)
        assert result.exit_code == 0, result.stderr
        leaked = [secret for secret in SECRETS if secret in result.output]
        assert leaked == []
        assert "***" in result.stdout


def test_show_json_is_one_document(secret_config: Path) -> None:
    result = invoke("--config", str(secret_config), "config", "show", "--json")
    document = json.loads(result.stdout)
    assert document["source"] == str(secret_config)
    assert document["secrets"] == {
        "vultr_api_key": "***",
        "redis_password": "***",
        "redis_sentinel_password": None,
        "http_token": "***",
        "sink_secrets": {"hook": "***"},
    }
    config = document["config"]
    assert config["redis"]["url"] == "redis://app:***@127.0.0.1:6379/0"
    assert config["vultr"]["api_key_file"].endswith("api-key")  # the path, not the key
    assert config["health"]["endpoints"][0]["headers"]["Authorization"] == "***"
    assert config["schedules"]["prune"] == {
        "enabled": True,
        "minute": [7],
        "hour": [3],
        "timeout": 600.0,
    }


def test_show_json_without_secrets() -> None:
    document = json.loads(invoke("config", "show", "--json").stdout)
    assert document["source"] == "defaults"
    assert document["secrets"] == {
        "vultr_api_key": None,
        "redis_password": None,
        "redis_sentinel_password": None,
        "http_token": None,
        "sink_secrets": {},
    }
    assert msgspec.convert(document["config"], Config) == Config()


def test_show_toml_reads_back_as_the_same_config(secret_config: Path) -> None:
    result = invoke("--config", str(secret_config), "config", "show")
    assert result.exit_code == 0, result.stderr
    assert '""  # unset' not in result.stdout
    assert "# max_latency_ms" not in result.stdout  # set in the file, so shown as a value
    assert "# body_regex is unset" in result.stdout
    shown = msgspec.convert(tomllib.loads(result.stdout), Config)
    expected = load_config(secret_config, environ={}).config
    # Equal but for the masked inline secrets.
    masked_url = "redis://app:***@127.0.0.1:6379/0"
    assert shown.redis.url == masked_url
    assert shown.health.endpoints[0].headers == {
        "Authorization": "***",
        "X Custom.Name": "plain",
    }
    assert (
        msgspec.structs.replace(
            shown,
            redis=msgspec.structs.replace(shown.redis, url=expected.redis.url),
            health=expected.health,
        )
        == expected
    )


def test_show_defaults_as_toml_round_trip() -> None:
    result = invoke("config", "show")
    assert result.exit_code == 0
    assert result.stdout.startswith("# source: defaults\n")
    assert msgspec.convert(tomllib.loads(result.stdout), Config) == Config()


def test_show_reflects_env_overrides_of_nested_keys() -> None:
    result = invoke(
        "config",
        "show",
        "--json",
        env={"VULTR_SCRAPER__SCHEDULES__SCRAPE_CATALOG__MINUTE": "[0, 30]"},
    )
    scrape = json.loads(result.stdout)["config"]["schedules"]["scrape_catalog"]
    assert scrape == {"enabled": True, "minute": [0, 30], "hour": [], "timeout": 60.0}


def test_show_with_a_bad_config_exits_78(tmp_path: Path) -> None:
    path = write(tmp_path / "config.toml", "[http]\nlisten = 8080\n")
    message = one_line_error(invoke("--config", str(path), "config", "show", "--json"))
    assert message == f"{path}: http.listen: Expected `str`, got `int`"
