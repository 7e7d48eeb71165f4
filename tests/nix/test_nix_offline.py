"""Offline checks of the Nix side: parse, dependency consistency, NixOS module evaluation, the
unit's systemd-analyze security score, the VM test script and the whole flake against a mock
nixpkgs. Nothing here builds: see docs/nixos.md for what only a Nix machine with network verifies.

Needs ``nix-instantiate`` (Debian's nix-bin); the module checks need nixpkgs ``lib`` from
``$NIXPKGS_LIB`` (a nix-community/nixpkgs.lib checkout); the flake check needs a Nix >= 2.18
(``$NIX_BIN`` or ``nix`` on PATH). Each is skipped with its reason when missing.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import threading
import tomllib
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.nix.fake_vultr_api import Handler, response_for

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
EXPOSURE_LIMIT = 2.0
FLAKE_MIN_NIX = (2, 18)


# --- helpers -----------------------------------------------------------------------------------


def _nix_instantiate() -> str:
    found = shutil.which("nix-instantiate")
    if found is None:
        pytest.skip("skipped: nix-instantiate not found (apt-get install nix-bin)")
    return found


def _nixpkgs_lib() -> Path:
    value = os.environ.get("NIXPKGS_LIB", "")
    path = Path(value) if value else None
    if path is None or not (
        (path / "lib" / "default.nix").is_file() or (path / "default.nix").is_file()
    ):
        pytest.skip(
            "skipped: nixpkgs lib not found (set NIXPKGS_LIB to a nix-community/nixpkgs.lib "
            "checkout)"
        )
    return path.resolve()


def _run(args: list[str], *, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=120, check=False)


def _eval_json(args: list[str], *, cwd: Path = REPO) -> Any:
    result = _run([_nix_instantiate(), "--eval", "--strict", "--json", *args], cwd=cwd)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def _eval_case(case: str) -> subprocess.CompletedProcess[str]:
    return _run(
        [
            _nix_instantiate(),
            "--eval",
            "--strict",
            "--json",
            "--read-write-mode",  # pkgs.formats.toml's stand-in writes the config to the store
            "tests/nix/eval-module.nix",
            "--argstr",
            "nixpkgsLib",
            str(_nixpkgs_lib()),
            "--argstr",
            "case",
            case,
        ]
    )


def _module(case: str) -> dict[str, Any]:
    result = _eval_case(case)
    assert result.returncode == 0, result.stderr
    evaluated: dict[str, Any] = json.loads(result.stdout)
    return evaluated


def _accepted(case: str) -> dict[str, Any]:
    evaluated = _module(case)
    assert evaluated["failedAssertions"] == []
    result: dict[str, Any] = evaluated["result"]
    return result


def _tracked_nix_files() -> list[Path]:
    listed = _run(["git", "ls-files", "-z", "--", "*.nix"]) if shutil.which("git") else None
    if listed is not None and listed.returncode == 0 and listed.stdout:
        return [REPO / name for name in listed.stdout.split("\0") if name]
    return sorted(p for p in REPO.rglob("*.nix") if ".git" not in p.parts)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    if isinstance(value, dict):
        return (
            "{" + ", ".join(f"{json.dumps(k)} = {_toml_value(v)}" for k, v in value.items()) + "}"
        )
    raise TypeError(f"no TOML form for {value!r}")


def _to_toml(settings: dict[str, Any]) -> str:
    """What pkgs.formats.toml would write (inline tables for nested data are equivalent)."""
    lines: list[str] = []
    for section, table in settings.items():
        if not isinstance(table, dict):
            lines.insert(0, f"{json.dumps(section)} = {_toml_value(table)}")
            continue
        lines.append(f"[{section}]")
        lines.extend(f"{json.dumps(key)} = {_toml_value(value)}" for key, value in table.items())
    return "\n".join(lines) + "\n"


# --- 1. parse --------------------------------------------------------------------------------


def test_every_nix_file_parses() -> None:
    files = _tracked_nix_files()
    assert any(path.name == "flake.nix" for path in files)
    for path in files:
        if not path.exists():  # deleted in the work tree, still tracked
            continue
        result = _run([_nix_instantiate(), "--parse", str(path)])
        assert result.returncode == 0, f"{path.relative_to(REPO)}: {result.stderr}"


def test_parse_check_reports_undefined_variables(tmp_path: Path) -> None:
    broken = tmp_path / "broken.nix"
    broken.write_text("{ lib }: { a = lib.id; b = undefinedName; }\n")
    result = _run([_nix_instantiate(), "--parse", str(broken)])
    assert result.returncode != 0
    assert "undefined variable 'undefinedName'" in result.stderr


# --- 2. dependency consistency ---------------------------------------------------------------


def test_dependency_consistency() -> None:
    lines = _eval_json(["tests/nix/deps-consistency.nix"])
    distributions = {
        tomllib.loads(path.read_text())["project"]["name"]
        for path in REPO.glob("packages/*/pyproject.toml")
    }
    assert {line.split()[0] for line in lines} == distributions
    assert all("consistent" in line for line in lines)


def _copy_for_consistency(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    shutil.copytree(REPO / "packages", root / "packages", ignore=shutil.ignore_patterns("src"))
    shutil.copytree(REPO / "nix", root / "nix")
    shutil.copytree(HERE, root / "tests" / "nix", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", root / "pyproject.toml")
    return root


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


def _add_dependency(pyproject: Path, requirement: str) -> None:
    _edit(pyproject, "dependencies = [\n", f'dependencies = [\n  "{requirement}",\n')


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ("pyproject-only", "nix/vultr-scraper-core.nix lacks dependencies from"),
        ("nix-only", "has dependencies that packages/jobs/pyproject.toml does not declare"),
        ("build-requirement", "lacks build requirements from packages/worker/pyproject.toml"),
        ("bound", "'aiohttp>=99' does not hold for aiohttp"),
        ("unknown-version", "no known nixpkgs version for 'uvloop'"),
    ],
)
def test_dependency_consistency_fails_on_one_sided_change(
    tmp_path: Path, change: str, expected: str
) -> None:
    root = _copy_for_consistency(tmp_path)
    if change == "pyproject-only":
        _add_dependency(root / "packages/core/pyproject.toml", "prometheus-client>=0.20")
    elif change == "nix-only":
        _edit(
            root / "nix/vultr-scraper-jobs.nix",
            "  dependencies = [\n",
            "  dependencies = [\n    click\n",
        )
        _edit(root / "nix/vultr-scraper-jobs.nix", "  hatchling,\n", "  hatchling,\n  click,\n")
    elif change == "build-requirement":
        _edit(
            root / "packages/worker/pyproject.toml",
            'requires = ["hatchling>=1.27"]',
            'requires = ["hatchling>=1.27", "hatch-vcs"]',
        )
    elif change == "bound":
        _add_dependency(root / "packages/worker/pyproject.toml", "aiohttp>=99")
    else:
        _add_dependency(root / "packages/core/pyproject.toml", "uvloop>=0.19")
    result = _run(
        [_nix_instantiate(), "--eval", "--strict", "--json", "tests/nix/deps-consistency.nix"],
        cwd=root,
    )
    assert result.returncode != 0
    assert expected in result.stderr, result.stderr


# --- 3. NixOS module evaluation (nixpkgs lib) --------------------------------------------------


def test_default_configuration() -> None:
    result = _accepted("default")
    service = result["service"]
    config = service["serviceConfig"]
    assert service["after"] == ["network-online.target", "redis-vultr-scraper.service"]
    assert service["requires"] == ["redis-vultr-scraper.service"]
    assert service["wantedBy"] == ["multi-user.target"]
    assert config["ExecStart"].endswith("/bin/vultr-scraper worker")
    assert config["DynamicUser"] is True
    assert config["StateDirectory"] == "vultr-scraper"
    assert config["Restart"] == "on-failure"
    assert config["RestartPreventExitStatus"] == 78
    assert config["TimeoutStopSec"] > result["settings"]["worker"]["job_completion_wait"]
    assert config["SupplementaryGroups"] == ["redis-vultr-scraper"]
    assert config["LoadCredential"] == []
    assert "EnvironmentFile" not in config
    assert result["settings"] == {
        "redis": {"url": "unix:///run/redis-vultr-scraper/redis.sock"},
        "vultr": {"base_url": "https://api.vultr.com/v2"},
        "http": {"listen": "127.0.0.1:8080"},
        "worker": {"job_completion_wait": 30},
        "history": {},  # the archive in the state directory: nothing to write
        "log": {"level": "INFO"},
    }
    redis = result["redisServers"]["vultr-scraper"]
    assert redis["appendOnly"] is True
    assert redis["port"] == 0
    assert redis["unixSocket"] == "/run/redis-vultr-scraper/redis.sock"
    assert result["firewallTCPPorts"] == []
    assert result["systemPackages"] == ["vultr-scraper"]


def test_exactly_one_unit() -> None:
    assert _module("default")["services"] == ["vultr-scraper"]
    assert _module("disabled")["services"] == []


def test_full_configuration() -> None:
    result = _accepted("full")
    config = result["service"]["serviceConfig"]
    assert config["LoadCredential"] == [
        "http-token:/run/keys/vultr-scraper-http-token",
        "vultr-api-key:/run/keys/vultr-api-key",
    ]
    assert config["EnvironmentFile"] == "/run/keys/vultr-scraper.env"
    assert config["TimeoutStopSec"] == math.ceil(45.5) + 30
    assert result["firewallTCPPorts"] == [9090]
    settings = result["settings"]
    assert settings["vultr"]["api_key_file"] == "vultr-api-key"
    assert settings["http"] == {"listen": "[::]:9090", "token_file": "http-token"}
    assert settings["health"]["endpoints"][0]["name"] == "site"
    wrapper = result["cliWrapper"]
    assert "--property=LoadCredential=vultr-api-key:/run/keys/vultr-api-key" in wrapper
    assert "--property=User=vultr-scraper" in wrapper


def test_history_archive_location() -> None:
    result = _accepted("archiveDirectory")
    assert result["settings"]["history"] == {"archive": "/srv/vultr-history"}
    assert result["service"]["serviceConfig"]["ReadWritePaths"] == ["/srv/vultr-history"]
    result = _accepted("archiveBucket")
    assert result["settings"]["history"]["archive"] == "s3://vultr-history/prod"
    assert result["settings"]["history"]["s3_access_key_file"] == "s3-access"
    assert "ReadWritePaths" not in result["service"]["serviceConfig"]
    assert "ReadWritePaths" not in _accepted("default")["service"]["serviceConfig"]


def test_external_redis() -> None:
    result = _accepted("externalRedis")
    service = result["service"]
    assert service["requires"] == []
    assert "redis-vultr-scraper.service" not in service["after"]
    assert service["serviceConfig"]["SupplementaryGroups"] == []
    assert result["redisServers"] == {}
    assert result["settings"]["redis"] == {"url": "redis://redis.internal:6379/2"}


def test_sentinel_redis() -> None:
    result = _accepted("sentinelRedis")
    service = result["service"]
    assert service["requires"] == [] and result["redisServers"] == {}
    assert result["settings"]["redis"] == {
        "sentinels": ["10.0.0.1:26379", "10.0.0.2:26379", "10.0.0.3:26379"],
        "service_name": "vultr-scraper",
        "tls": True,
        "ca_file": "redis-ca",
        "password_file": "redis-password",
        "sentinel_password_file": "redis-sentinel-password",
    }
    assert "redis-ca:/run/keys/redis-ca.pem" in service["serviceConfig"]["LoadCredential"]
    url = _accepted("sentinelUrl")["settings"]["redis"]
    assert url == {"url": "redis+sentinel://10.0.0.1:26379,10.0.0.2:26379/vultr-scraper/0"}


def test_sentinel_settings_are_accepted_by_the_application(tmp_path: Path) -> None:
    config_module = pytest.importorskip("vultr_scraper_core.config")
    settings = _accepted("sentinelRedis")["settings"]
    path = tmp_path / "vultr-scraper.toml"
    path.write_text(_to_toml(settings))
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    for name in ("redis-ca", "redis-password", "redis-sentinel-password"):
        (credentials / name).write_text("x\n")
    loaded = config_module.load_config(path, environ={"CREDENTIALS_DIRECTORY": str(credentials)})
    assert loaded.config.redis.sentinels == settings["redis"]["sentinels"]
    assert loaded.secrets.redis_ca_file == str(credentials / "redis-ca")
    assert loaded.secrets.redis_sentinel_password == "x"


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("noRedis", "Set services.vultr-scraper.settings.redis.url"),
        ("sentinelsWithLocalRedis", "createLocally = false (the local server would go unused)"),
        ("firewallWithoutPort", "openFirewall needs a port in settings.http.listen"),
        ("reservedCredential", 'credential id "vultr-api-key" is reserved'),
    ],
)
def test_assertions(case: str, message: str) -> None:
    evaluated = _module(case)
    assert evaluated["result"] is None
    assert any(message in failed for failed in evaluated["failedAssertions"]), evaluated


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("optionTypo", "The option `services.vultr-scraper.redis.createLocaly' does not exist"),
        ("negativeWait", "settings.worker.job_completion_wait' is not of type"),
        ("badRedisScheme", "settings.redis.url' is not of type `null or string matching"),
        ("badLogLevel", "settings.log.level' is not of type `one of"),
    ],
)
def test_type_errors(case: str, message: str) -> None:
    result = _eval_case(case)
    assert result.returncode != 0
    assert message in result.stderr, result.stderr


@pytest.mark.parametrize(
    "case", ["default", "full", "documented", "externalRedis", "archiveBucket"]
)
def test_generated_config_is_accepted_by_the_application(tmp_path: Path, case: str) -> None:
    config_module = pytest.importorskip("vultr_scraper_core.config")
    settings = _accepted(case)["settings"]
    path = tmp_path / "vultr-scraper.toml"
    path.write_text(_to_toml(settings))
    assert tomllib.loads(path.read_text()) == settings
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    (credentials / "vultr-api-key").write_text("k\n")
    (credentials / "http-token").write_text("t\n")
    (credentials / "s3-access").write_text("a\n")
    (credentials / "s3-secret").write_text("s\n")
    loaded = config_module.load_config(path, environ={"CREDENTIALS_DIRECTORY": str(credentials)})
    assert loaded.config.redis.url == settings["redis"]["url"]
    assert loaded.config.worker.job_completion_wait == settings["worker"]["job_completion_wait"]


# --- 4. systemd-analyze security of the rendered unit -----------------------------------------


def _systemd_analyze() -> str:
    found = shutil.which("systemd-analyze")
    if found is None:
        pytest.skip("skipped: systemd-analyze not found (apt-get install systemd)")
    helptext = _run([found, "security", "--help"]).stdout
    if "--offline" not in helptext:
        pytest.skip("skipped: this systemd-analyze has no --offline (systemd >= 250 needed)")
    return found


def exposure(unit_text: str, directory: Path) -> float:
    unit = directory / "vultr-scraper.service"
    unit.write_text(unit_text)
    result = _run([_systemd_analyze(), "security", "--offline=true", "--no-pager", str(unit)])
    match = re.search(
        r"Overall exposure level for vultr-scraper\.service: ([0-9.]+)", result.stdout
    )
    assert match, result.stdout + result.stderr
    return float(match.group(1))


@pytest.mark.parametrize("case", ["default", "full", "documented", "externalRedis"])
def test_unit_security_exposure(tmp_path: Path, case: str) -> None:
    unit_text = _accepted(case)["unitFile"]
    assert "RestartPreventExitStatus=78" in unit_text
    score = exposure(unit_text, tmp_path)
    assert score <= EXPOSURE_LIMIT, f"exposure {score} > {EXPOSURE_LIMIT}"


def test_exposure_rises_without_hardening(tmp_path: Path) -> None:
    unit_text = _accepted("default")["unitFile"]
    bare = "\n".join(
        line
        for line in unit_text.splitlines()
        if line.startswith(("[", "Description=", "ExecStart=", "Environment=", "Type="))
    )
    assert exposure(bare + "\n", tmp_path) > 9.0


# --- 5. the VM test's script and fake API --------------------------------------------------------


def test_vm_test_script_compiles() -> None:
    script = _eval_json(["-E", "(import ./tests/nix/vm-test.nix { self = null; }).testScript"])
    compile(script, "vm-test testScript", "exec")
    for command in ("vultr-scraper run scrape-catalog", "vultr-scraper plans --json"):
        assert command in script


def test_fake_vultr_api_responses() -> None:
    status, body = response_for("/v2/plans")
    assert status == 200
    assert body["meta"] == {"total": len(body["plans"]), "links": {"next": "", "prev": ""}}
    assert response_for("/v2/plans-metal")[1]["plans_metal"]
    assert response_for("/v2/regions/ewr/availability")[1]["available_plans"]
    assert response_for("/v2/regions/nope/availability")[0] == 400
    assert response_for("/v2/nothing")[0] == 404


@pytest.fixture
def fake_api() -> Iterator[str]:
    from http.server import ThreadingHTTPServer

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v2"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_fake_vultr_api_serves_http(fake_api: str) -> None:
    with urllib.request.urlopen(f"{fake_api}/regions?per_page=500", timeout=5) as response:
        assert response.status == 200
        body = json.load(response)
    assert [region["id"] for region in body["regions"]] == ["ewr", "fra"]


# --- 6. the whole flake against a mock nixpkgs -------------------------------------------------


def _flake_nix() -> str:
    candidate = os.environ.get("NIX_BIN") or shutil.which("nix")
    if not candidate:
        pytest.skip("skipped: no nix binary for the flake check (set NIX_BIN)")
    version = _run([candidate, "--version"]).stdout
    found = re.search(r"(\d+)\.(\d+)", version)
    if not found or (int(found.group(1)), int(found.group(2))) < FLAKE_MIN_NIX:
        pytest.skip(
            f"skipped: flake check needs Nix >= 2.18 (nixpkgs lib's minimum), found "
            f"{version.strip() or 'none'}; set NIX_BIN"
        )
    if not (REPO / ".git").exists():
        pytest.skip("skipped: flake check needs the git work tree")
    return candidate


def _mock_nixpkgs(tmp_path: Path) -> Path:
    lib_root = _nixpkgs_lib()
    lib_dir = lib_root / "lib" if (lib_root / "lib").is_dir() else lib_root
    mock = tmp_path / "mock-nixpkgs"
    shutil.copytree(HERE / "mock-nixpkgs", mock)
    shutil.copytree(lib_dir, mock / "lib")
    shutil.copy(HERE / "nixos-stub.nix", mock)
    shutil.copy(HERE / "nixpkgs-versions.nix", mock)
    return mock


def test_flake_check_against_mock_nixpkgs(tmp_path: Path) -> None:
    nix = _flake_nix()
    mock = _mock_nixpkgs(tmp_path)
    result = _run(
        [
            nix,
            "--extra-experimental-features",
            "nix-command flakes",
            "flake",
            "check",
            "--no-build",
            "--no-write-lock-file",
            "--override-input",
            "nixpkgs",
            f"path:{mock}",
            str(REPO),
        ]
    )
    assert result.returncode == 0, result.stderr
