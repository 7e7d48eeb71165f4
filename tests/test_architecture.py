"""The package layout is the architecture: imports flow worker -> jobs -> core only."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYERS = {"vultr_scraper_core": 0, "vultr_scraper_jobs": 1, "vultr_scraper_worker": 2}
# Libraries that belong to one layer: core must stay free of arq and of the CLI toolkit.
FORBIDDEN = {
    "vultr_scraper_core": {"arq", "click"},
    "vultr_scraper_jobs": {"arq", "click"},
}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


def _sources() -> list[tuple[str, Path]]:
    return [
        (package, path)
        for package in LAYERS
        for path in sorted((ROOT / "packages").glob(f"*/src/{package}/**/*.py"))
    ]


@pytest.mark.parametrize(
    ("package", "path"), _sources(), ids=lambda value: getattr(value, "name", value)
)
def test_imports_flow_one_way(package: str, path: Path) -> None:
    imported = _imports(path)
    upward = {name for name in imported if LAYERS.get(name, -1) > LAYERS[package]}
    assert not upward, f"{path.relative_to(ROOT)} imports a higher layer: {sorted(upward)}"
    banned = imported & FORBIDDEN.get(package, set())
    assert not banned, f"{path.relative_to(ROOT)} imports {sorted(banned)}"


def test_every_layer_has_sources() -> None:
    packages = {package for package, _ in _sources()}
    assert packages == set(LAYERS)
