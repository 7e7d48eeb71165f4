"""Configuration: defaults, TOML, ``VULTR_SCRAPER__*`` overrides, secret files, one-line errors."""

from __future__ import annotations

import os
import shutil
import tempfile
import textwrap
import warnings
from collections.abc import Callable
from pathlib import Path

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vultr_scraper_core.config import (
    CONFIG_PATH_ENV,
    EX_CONFIG,
    Config,
    ConfigError,
    EndpointConfig,
    ListenAddress,
    LoadedConfig,
    ScheduleConfig,
    Secrets,
    SinkConfig,
    config_to_dict,
    load_config,
    mask_url,
    parse_listen,
    state_dir,
)

WriteFile = Callable[..., Path]


@pytest.fixture
def write(tmp_path: Path) -> WriteFile:
    def write_file(text: str, name: str = "config.toml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text), encoding="utf-8")
        return path

    return write_file


def error_of(path: Path | None = None, environ: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ=environ or {})
    message = str(caught.value)
    assert "\n" not in message
    return message


# -- defaults and sources --------------------------------------------------------------------


def test_no_file_means_defaults() -> None:
    loaded = load_config(environ={})
    assert loaded.source == "defaults"
    assert loaded.config == Config()
    assert loaded.secrets == Secrets()
    assert loaded.secrets.values() == []


def test_documented_defaults() -> None:
    config = Config()
    assert config.vultr.base_url == "https://api.vultr.com/v2"
    assert config.vultr.api_key_file == ""
    assert config.redis.url == ""  # embedded redis-server
    assert config.http.listen == "127.0.0.1:8080"
    assert config.health.endpoints == []
    assert config.schedules.scrape_catalog.timeout == 60.0
    assert config.schedules.prune == ScheduleConfig(minute=[7], hour=[3], timeout=600.0)
    assert EX_CONFIG == 78


def test_every_key_has_a_default() -> None:
    assert msgspec.convert({}, Config) == Config()
    # Tables in lists have required identity keys only.
    assert msgspec.convert({"name": "a", "url": "u"}, EndpointConfig).method == "GET"


def test_file_from_argument_and_from_environment(write: WriteFile) -> None:
    path = write('[redis]\nurl = "redis://10.0.0.1:6379/2"\n')
    by_argument = load_config(path, environ={})
    by_env = load_config(environ={CONFIG_PATH_ENV: str(path)})
    assert by_argument.config.redis.url == "redis://10.0.0.1:6379/2"
    assert by_argument == by_env
    assert by_argument.source == str(path)


def test_argument_wins_over_environment(write: WriteFile) -> None:
    chosen = write('[log]\nlevel = "DEBUG"\n', "chosen.toml")
    other = write('[log]\nlevel = "ERROR"\n', "other.toml")
    loaded = load_config(chosen, environ={CONFIG_PATH_ENV: str(other)})
    assert loaded.config.log.level == "DEBUG"


def test_full_file(write: WriteFile) -> None:
    path = write(
        """
        [redis]
        url = "unix:///run/redis-vultr-scraper/redis.sock"
        key_prefix = "vst"

        [vultr]
        per_page = 100

        [client]
        timeout = 45
        rate_limit = 2.5

        [http]
        listen = ""

        [schedules.scrape_catalog]
        minute = [5, 35]

        [[health.endpoints]]
        name = "site"
        url = "https://example.org/health"
        status = [200, 204]
        max_latency_ms = 800
        headers = { Accept = "application/json" }

        [[sinks]]
        name = "ops"
        kind = "ntfy"
        url = "https://ntfy.sh/ops"

        [[alerts]]
        name = "cheap-gpu"
        kinds = ["stock_changed"]
        sinks = ["ops"]
        min_gpu_vram_gb = 40
        max_monthly = 1500.5
        """
    )
    config = load_config(path, environ={}).config
    assert config.redis.url.startswith("unix://")
    assert config.redis.key_prefix == "vst"
    assert config.vultr.per_page == 100
    assert config.client.timeout == 45.0
    assert isinstance(config.client.timeout, float)
    assert config.http.listen == ""
    assert config.schedules.scrape_catalog.minute == [5, 35]
    # The other keys of a table keep that table's own defaults, not the type's.
    assert config.schedules.scrape_catalog.timeout == 60.0
    assert config.health.endpoints[0].status == [200, 204]
    assert config.health.endpoints[0].headers == {"Accept": "application/json"}
    assert config.sinks == [SinkConfig(name="ops", kind="ntfy", url="https://ntfy.sh/ops")]
    assert config.alerts[0].max_monthly == 1500.5


def test_setting_one_key_keeps_the_tables_other_defaults(write: WriteFile) -> None:
    # Regression: [schedules.prune] minute = [9] silently made prune run every hour.
    path = write("[schedules.prune]\nminute = [9]\n")
    prune = load_config(path, environ={}).config.schedules.prune
    assert prune == ScheduleConfig(minute=[9], hour=[3], timeout=600.0)


# -- environment overrides ---------------------------------------------------------------------


def test_env_overrides_file(write: WriteFile) -> None:
    path = write('[client]\ntimeout = 5\n[log]\nlevel = "INFO"\n')
    loaded = load_config(
        path,
        environ={
            "VULTR_SCRAPER__CLIENT__TIMEOUT": "12.5",
            "VULTR_SCRAPER__CLIENT__MAX_ATTEMPTS": "7",
            "VULTR_SCRAPER__HEALTH__CHECK_VULTR_API": "false",
            "VULTR_SCRAPER__LOG__LEVEL": "debug",
            "VULTR_SCRAPER__REDIS__URL": "redis://127.0.0.1:6380/1",
            "UNRELATED": "x",
        },
    )
    config = loaded.config
    assert config.client.timeout == 12.5
    assert config.client.max_attempts == 7
    assert config.health.check_vultr_api is False
    assert config.log.level == "debug"
    assert config.redis.url == "redis://127.0.0.1:6380/1"
    assert loaded.source == (
        f"{path} + environment (VULTR_SCRAPER__CLIENT__MAX_ATTEMPTS, "
        "VULTR_SCRAPER__CLIENT__TIMEOUT, VULTR_SCRAPER__HEALTH__CHECK_VULTR_API, "
        "VULTR_SCRAPER__LOG__LEVEL, VULTR_SCRAPER__REDIS__URL)"
    )


def test_env_overrides_without_a_file_are_named_in_the_source() -> None:
    environ = {"VULTR_SCRAPER__VULTR__BASE_URL": "http://127.0.0.1:9/v2", "UNRELATED": "x"}
    loaded = load_config(environ=environ)
    assert loaded.source == "defaults + environment (VULTR_SCRAPER__VULTR__BASE_URL)"


def test_env_override_of_a_nested_key() -> None:
    environ = {"VULTR_SCRAPER__SCHEDULES__SCRAPE_CATALOG__MINUTE": "[0, 30]"}
    schedules = load_config(environ=environ).config.schedules
    assert schedules.scrape_catalog == ScheduleConfig(minute=[0, 30], timeout=60.0)
    assert schedules.prune == Config().schedules.prune


def test_env_override_of_an_array_of_tables() -> None:
    environ = {
        "VULTR_SCRAPER__HEALTH__ENDPOINTS": '[{name = "api", url = "https://x/health"}]',
    }
    endpoints = load_config(environ=environ).config.health.endpoints
    assert endpoints == [EndpointConfig(name="api", url="https://x/health")]


@pytest.mark.parametrize(
    ("variable", "raw", "expected"),
    [
        ("VULTR_SCRAPER__REDIS__KEY_PREFIX", "8080", "8080"),
        ("VULTR_SCRAPER__REDIS__KEY_PREFIX", "2024-01-01", "2024-01-01"),
        ("VULTR_SCRAPER__REDIS__KEY_PREFIX", "true", "true"),
        ("VULTR_SCRAPER__REDIS__KEY_PREFIX", '"quoted"', "quoted"),
        ("VULTR_SCRAPER__VULTR__BASE_URL", "http://127.0.0.1:9/v2", "http://127.0.0.1:9/v2"),
    ],
)
def test_env_text_keys_keep_the_text(variable: str, raw: str, expected: str) -> None:
    # Regression: "8080" became the integer 8080 and then a type error for a text key.
    config = load_config(environ={variable: raw}).config
    section, key = variable.removeprefix("VULTR_SCRAPER__").lower().split("__")
    assert getattr(getattr(config, section), key) == expected


@settings(deadline=None, max_examples=60)
@given(
    st.text(
        alphabet=st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=40
    ).filter(lambda text: not text.startswith(("'", '"')))
)
def test_any_text_survives_an_env_override(text: str) -> None:
    config = load_config(environ={"VULTR_SCRAPER__REDIS__KEY_PREFIX": text}).config
    assert config.redis.key_prefix == text


def test_env_wrong_type_names_the_variable(write: WriteFile) -> None:
    path = write("[client]\ntimeout = 5\n")
    message = error_of(path, {"VULTR_SCRAPER__CLIENT__TIMEOUT": "soon"})
    assert message == (
        "environment variable VULTR_SCRAPER__CLIENT__TIMEOUT: client.timeout: "
        "Expected `float`, got `str`"
    )


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        (
            {"VULTR_SCRAPER__REDIS__URLL": "redis://x"},
            "environment variable VULTR_SCRAPER__REDIS__URLL: redis.urll: unknown key",
        ),
        (
            {"VULTR_SCRAPER__FOO__BAR": "1"},
            "environment variable VULTR_SCRAPER__FOO__BAR: foo: unknown key",
        ),
        (
            {"VULTR_SCRAPER__SCHEDULES__PRUNE__HOUR": "[3, 'x']"},
            "environment variable VULTR_SCRAPER__SCHEDULES__PRUNE__HOUR: "
            "schedules.prune.hour[1]: Expected `int`, got `str`",
        ),
        (
            {"VULTR_SCRAPER__HEALTH__ENDPOINTS": '[{name = "a", url = "u", bogus = 1}]'},
            "environment variable VULTR_SCRAPER__HEALTH__ENDPOINTS: "
            "health.endpoints[0].bogus: unknown key",
        ),
        (
            {"VULTR_SCRAPER__REDIS": "1"},
            "environment variable VULTR_SCRAPER__REDIS: redis: Expected `table`, got `int`",
        ),
        (
            {"VULTR_SCRAPER__WORKER__MAX_TRIES": "0"},
            "environment variable VULTR_SCRAPER__WORKER__MAX_TRIES: worker.max_tries: "
            "must be at least 1, got 0",
        ),
        (
            {"VULTR_SCRAPER__REDIS____URL": "x"},
            "environment variable VULTR_SCRAPER__REDIS____URL: empty key segment",
        ),
        (
            {"VULTR_SCRAPER__REDIS": "1", "VULTR_SCRAPER__REDIS__URL": "x"},
            "environment variable VULTR_SCRAPER__REDIS__URL: redis is not a table",
        ),
    ],
)
def test_env_errors(environ: dict[str, str], expected: str) -> None:
    assert error_of(None, environ) == expected


def test_env_error_under_a_file_table_still_names_the_variable(write: WriteFile) -> None:
    path = write('[redis]\nurl = "redis://x/0"\n')
    message = error_of(path, {"VULTR_SCRAPER__REDIS__PASWORD_FILE": "/x"})
    assert message.startswith("environment variable VULTR_SCRAPER__REDIS__PASWORD_FILE: ")
    assert "redis.pasword_file: unknown key" in message


def test_file_error_is_not_blamed_on_an_unrelated_variable(write: WriteFile) -> None:
    path = write("[schedules.prune]\nhour = ['x']\n")
    message = error_of(path, {"VULTR_SCRAPER__SCHEDULES__PRUNE__MINUTE": "[1]"})
    assert message == f"{path}: schedules.prune.hour[0]: Expected `int`, got `str`"


# -- file errors -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('[redis]\nurll = "x"\n', "redis.urll: unknown key"),
        ("colour = 1\n", "colour: unknown key"),
        ('[vultr]\nper_page = "many"\n', "vultr.per_page: Expected `int`, got `str`"),
        ("[worker]\nmax_tries = 1.5\n", "worker.max_tries: Expected `int`, got `float`"),
        ('redis = "redis://x"\n', "redis: Expected `table`, got `str`"),
        ('[[health.endpoints]]\nname = "x"\n', "health.endpoints[0].url: required key missing"),
        (
            '[[health.endpoints]]\nname = "x"\nurl = "u"\nheader = {}\n',
            "health.endpoints[0].header: unknown key",
        ),
        ('[[sinks]]\nname = "x"\nkind = "pager"\n', "sinks[0].kind: Invalid enum value 'pager'"),
        ('[log]\nlevel = "LOUD"\n', "log.level: must be one of TRACE, DEBUG, INFO"),
        ("[schedules.check_health]\nminute = [60]\n", "schedules.check_health.minute: values"),
        ("[schedules.prune]\nhour = [24]\n", "schedules.prune.hour: values must be 0-23, got 24"),
        ("[client]\ntimeout = 0\n", "client.timeout: must be greater than 0, got 0.0"),
        (
            "[schedules.scrape_catalog]\ntimeout = 0\n",
            "schedules.scrape_catalog.timeout: must be greater than 0, got 0.0",
        ),
        (
            "[worker.timeouts]\ndeliver_digest = -1\n",
            "worker.timeouts.deliver_digest: must be greater than 0, got -1.0",
        ),
        ("[worker.timeouts]\nscrape_catalog = 5\n", "worker.timeouts.scrape_catalog: unknown"),
        ("[vultr]\nper_page = 501\n", "vultr.per_page: must be between 1 and 500, got 501"),
        ("[deliveries]\nhorizon = 0\n", "deliveries.horizon: must be greater than 0, got 0.0"),
        (
            "[deliveries]\nbackoff_base = 60\nbackoff_cap = 30\n",
            "deliveries.backoff_cap: must be at least deliveries.backoff_base",
        ),
        (
            "[catalog.gate]\nmax_count_drop = 1.5\n",
            "catalog.gate.max_count_drop: must be between 0 and 1",
        ),
        (
            "[catalog]\nmax_count_drop = 0.3\n",
            "catalog.max_count_drop: unknown key (moved to catalog.gate.max_count_drop)",
        ),
        ("[catalog.gate]\nmax_turnover = 0\n", "catalog.gate.max_turnover: must be greater"),
        ("[catalog.gate]\nmin_price_ratio = 1.2\n", "catalog.gate: min_price_ratio must be"),
        ("[vultr]\nmax_response_bytes = 10\n", "vultr.max_response_bytes: must be at least 1024"),
        ('[redis]\nurl = "http://x"\n', "redis.url: must start with redis://"),
        (
            '[[health.endpoints]]\nname = "a"\nurl = "u"\n[[health.endpoints]]\nname = "a"\n'
            'url = "v"\n',
            "health.endpoints: names must be unique",
        ),
        (
            '[[alerts]]\nname = "a"\nkinds = ["new_plan"]\nsinks = ["nowhere"]\n',
            "alerts[0].sinks: unknown sink nowhere",
        ),
    ],
)
def test_file_errors_name_file_and_key(write: WriteFile, text: str, expected: str) -> None:
    path = write(text)
    message = error_of(path)
    assert message.startswith(f"{path}: {expected}")


def test_invalid_toml(write: WriteFile) -> None:
    path = write('[redis]\nurl = "unterminated\n')
    message = error_of(path)
    assert message.startswith(f"{path}: invalid TOML: ")
    assert "line 2" in message


def test_missing_and_unreadable_config_files(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    assert error_of(missing) == f"{missing}: cannot read config file: No such file or directory"
    assert error_of(tmp_path) == f"{tmp_path}: cannot read config file: Is a directory"
    latin1 = tmp_path / "latin1.toml"
    latin1.write_bytes(b'[redis]\nkey_prefix = "caf\xe9"\n')
    assert error_of(latin1) == f"{latin1}: config file is not UTF-8 text"


def test_config_error_is_always_one_line() -> None:
    assert str(ConfigError("first\nsecond\r\nthird")) == "first second third"


# -- secrets -----------------------------------------------------------------------------------


def test_secret_files_are_read_and_stripped(write: WriteFile, tmp_path: Path) -> None:
    (tmp_path / "api-key").write_text("VULTRKEY123\n")
    (tmp_path / "redis-pass").write_text("  r3dis-pass  \n")
    (tmp_path / "token").write_text("tok-abc")
    (tmp_path / "hook").write_text("hook-secret")
    path = write(
        f"""
        [vultr]
        api_key_file = "{tmp_path / "api-key"}"
        [redis]
        password_file = "{tmp_path / "redis-pass"}"
        [http]
        token_file = "{tmp_path / "token"}"
        [[sinks]]
        name = "hook"
        url = "https://hooks.example/x"
        secret_file = "{tmp_path / "hook"}"
        """
    )
    secrets = load_config(path, environ={}).secrets
    assert secrets.vultr_api_key == "VULTRKEY123"
    assert secrets.redis_password == "r3dis-pass"
    assert secrets.http_token == "tok-abc"
    assert secrets.sink_secrets == {"hook": "hook-secret"}
    assert sorted(secrets.values()) == sorted(
        ["VULTRKEY123", "r3dis-pass", "tok-abc", "hook-secret"]
    )


def test_relative_secret_paths_use_systemd_credentials(tmp_path: Path) -> None:
    (tmp_path / "vultr-api-key").write_text("from-systemd")
    environ = {
        "CREDENTIALS_DIRECTORY": str(tmp_path),
        "VULTR_SCRAPER__VULTR__API_KEY_FILE": "vultr-api-key",
    }
    assert load_config(environ=environ).secrets.vultr_api_key == "from-systemd"


def test_unreadable_secret_files(write: WriteFile, tmp_path: Path) -> None:
    missing = tmp_path / "missing"
    path = write(f'[vultr]\napi_key_file = "{missing}"\n')
    assert error_of(path) == (
        f"{path}: vultr.api_key_file: cannot read secret file {missing}: No such file or directory"
    )
    path = write(f'[redis]\npassword_file = "{tmp_path}"\n')
    assert error_of(path) == (
        f"{path}: redis.password_file: cannot read secret file {tmp_path}: Is a directory"
    )
    empty = tmp_path / "empty"
    empty.write_text("\n")
    path = write(f'[http]\ntoken_file = "{empty}"\n')
    assert error_of(path) == f"{path}: http.token_file: secret file {empty} is empty"
    binary = tmp_path / "binary"
    binary.write_bytes(b"\xff\xfe\x00")
    path = write(f'[[sinks]]\nname = "s"\nurl = "https://x"\nsecret_file = "{binary}"\n')
    assert error_of(path) == (
        f"{path}: sinks[0].secret_file: secret file {binary} is not UTF-8 text"
    )


def test_a_whsec_webhook_secret_must_be_base64(write: WriteFile, tmp_path: Path) -> None:
    secret = tmp_path / "hook"
    secret.write_text("whsec_not base64!\n")
    path = write(f'[[sinks]]\nname = "s"\nurl = "https://x"\nsecret_file = "{secret}"\n')
    message = error_of(path)
    assert (
        message == f"{path}: sinks[0].secret_file: a whsec_ secret must be base64 after the prefix"
    )
    assert "not base64!" not in message  # the secret is never quoted back
    secret.write_text("whsec_c2VjcmV0\n")  # base64 of "secret"
    assert load_config(path, environ={}).secrets.sink_secrets == {"s": "whsec_c2VjcmV0"}


def test_unreadable_secret_file_from_env_names_the_variable(tmp_path: Path) -> None:
    missing = tmp_path / "missing"
    message = error_of(None, {"VULTR_SCRAPER__VULTR__API_KEY_FILE": str(missing)})
    assert message.startswith(
        "environment variable VULTR_SCRAPER__VULTR__API_KEY_FILE: vultr.api_key_file: "
        f"cannot read secret file {missing}"
    )


def test_secret_file_without_permission() -> None:
    # Root reads any file whatever its mode, so under root the loader runs in a forked child
    # that has dropped to an unprivileged user (the modules are already imported there). The
    # files live in a fresh directory that user can traverse (pytest's base temp is private).
    tmp_path = Path(tempfile.mkdtemp(prefix="vs-perm-"))
    tmp_path.chmod(0o755)
    locked = tmp_path / "locked"
    locked.write_text("x")
    locked.chmod(0)
    config = tmp_path / "config.toml"
    config.write_text(f'[vultr]\napi_key_file = "{locked}"\n')
    config.chmod(0o644)
    read_end, write_end = os.pipe()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork() with threads: child is tiny
        pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        message = "loaded without error"
        try:
            if os.geteuid() == 0:
                os.setgid(65534)
                os.setuid(65534)
            load_config(config, environ={})
        except ConfigError as error:
            message = str(error)
        except BaseException as error:
            message = f"unexpected {type(error).__name__}: {error}"
        finally:
            os.write(write_end, message.encode())
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        output = pipe.read().decode()
    os.waitpid(pid, 0)
    shutil.rmtree(tmp_path)
    assert output.endswith(f"cannot read secret file {locked}: Permission denied"), output


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
        ("redis://:pw@127.0.0.1:6379/0", "redis://:***@127.0.0.1:6379/0"),
        ("rediss://app:pw@redis.example/1", "rediss://app:***@redis.example/1"),
        ("unix:///run/redis.sock?db=0&password=pw", "unix:///run/redis.sock?db=0&password=***"),
    ],
)
def test_mask_url_hides_passwords_in_userinfo_and_query(url: str, shown: str) -> None:
    # The worker's Redis log lines and the status page both show URLs through this.
    assert mask_url(url) == shown


def test_inline_secrets_are_found_and_masked(write: WriteFile) -> None:
    path = write(
        """
        [redis]
        url = "redis://worker:hunter2@10.0.0.5:6379/0"
        [[health.endpoints]]
        name = "private"
        url = "https://ops:pa55word@status.example/health?password=qs-secret&x=1"
        headers = { Authorization = "Bearer tok-123456", X-Api-Key = "k-999", Accept = "*/*" }
        """
    )
    loaded = load_config(path, environ={})
    values = loaded.secrets.values()
    for secret in ("hunter2", "pa55word", "qs-secret", "Bearer tok-123456", "tok-123456", "k-999"):
        assert secret in values
    assert "*/*" not in values

    shown = msgspec.json.encode(config_to_dict(loaded.config)).decode()
    for secret in ("hunter2", "pa55word", "qs-secret", "tok-123456", "k-999"):
        assert secret not in shown
    document = config_to_dict(loaded.config)
    assert document["redis"]["url"] == "redis://worker:***@10.0.0.5:6379/0"
    endpoint = document["health"]["endpoints"][0]
    assert endpoint["url"] == "https://ops:***@status.example/health?password=***&x=1"
    assert endpoint["headers"] == {"Authorization": "***", "X-Api-Key": "***", "Accept": "*/*"}
    # Masking is for display only: the loaded config keeps the real values.
    assert loaded.config.redis.url == "redis://worker:hunter2@10.0.0.5:6379/0"


def test_chat_webhook_urls_and_sink_headers_are_secrets(write: WriteFile) -> None:
    path = write(
        """
        [[sinks]]
        name = "chat"
        kind = "slack"
        url = "https://hooks.slack.com/services/T000/B000/XXXXSECRET"
        [[sinks]]
        name = "push"
        kind = "ntfy"
        url = "https://ntfy.sh/alerts"
        headers = { Authorization = "Bearer ntfy-token-77", Priority = "high" }
        """
    )
    loaded = load_config(path, environ={})
    values = loaded.secrets.values()
    assert "https://hooks.slack.com/services/T000/B000/XXXXSECRET" in values
    assert "/services/T000/B000/XXXXSECRET" in values
    assert "ntfy-token-77" in values
    assert "https://ntfy.sh/alerts" not in values  # ntfy topics are addresses, not keys
    chat, push = config_to_dict(loaded.config)["sinks"]
    assert chat["url"] == "https://hooks.slack.com/***"
    assert push["url"] == "https://ntfy.sh/alerts"
    assert push["headers"] == {"Authorization": "***", "Priority": "high"}


def test_config_to_dict_without_secrets_round_trips() -> None:
    config = Config()
    assert msgspec.convert(config_to_dict(config), Config) == config


# -- state directory ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("configured", "environ", "expected"),
    [
        ("/srv/vs", {"STATE_DIRECTORY": "/var/lib/x"}, "/srv/vs"),
        ("", {"STATE_DIRECTORY": "/var/lib/vs:/var/lib/other"}, "/var/lib/vs"),
        ("", {"XDG_STATE_HOME": "/home/u/.state"}, "/home/u/.state/vultr-scraper"),
    ],
)
def test_state_dir(configured: str, environ: dict[str, str], expected: str) -> None:
    config = msgspec.convert({"paths": {"state_dir": configured}}, Config)
    assert state_dir(config, environ) == Path(expected)


def test_state_dir_falls_back_to_home() -> None:
    assert state_dir(Config(), {}) == Path.home() / ".local" / "state" / "vultr-scraper"


def test_loaded_config_is_frozen() -> None:
    loaded: LoadedConfig = load_config(environ={})
    with pytest.raises(AttributeError):
        loaded.source = "elsewhere"  # type: ignore[misc]


# -- http.listen ---------------------------------------------------------------------------------


def test_listen_addresses() -> None:
    assert parse_listen("") is None
    assert parse_listen("  ") is None
    assert parse_listen("127.0.0.1:8080") == ListenAddress(host="127.0.0.1", port=8080)
    assert parse_listen("[::1]:9000") == ListenAddress(host="::1", port=9000)
    assert parse_listen(":8080") == ListenAddress(host=None, port=8080)
    assert parse_listen("localhost:0") == ListenAddress(host="localhost", port=0)
    unix = parse_listen("unix:/run/vultr-scraper/http.sock")
    assert unix == ListenAddress(path="/run/vultr-scraper/http.sock")
    for bad in ("1", "8080", "localhost", "host:http", "host:70000", "unix:", "::1:80", "[::1:80"):
        with pytest.raises(ValueError, match=r"expected|needs a path"):
            parse_listen(bad)


@pytest.mark.parametrize("value", ["1", "localhost", "unix:", "[::1]"])
def test_a_bad_listen_address_is_a_config_error(value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(environ={"VULTR_SCRAPER__HTTP__LISTEN": value})
    message = str(caught.value)
    assert message.startswith("environment variable VULTR_SCRAPER__HTTP__LISTEN: http.listen: ")
    assert repr(value) in message and "\n" not in message
