"""The package layout is the architecture: imports flow worker -> jobs -> core only, and
downhill inside each package (no module imports another that imports it back)."""

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


def _module_name(path: Path) -> str:
    parts = path.relative_to(path.parents[len(path.relative_to(ROOT / "packages").parts) - 3])
    return ".".join(parts.with_suffix("").parts).removesuffix(".__init__")


def _imported_modules(path: Path, known: set[str]) -> set[str]:
    """The project modules ``path`` imports, anywhere in the file (TYPE_CHECKING and function
    bodies included: a cycle hidden there is still a cycle in the design)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            candidates = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
        elif isinstance(node, ast.Import):
            candidates = [alias.name for alias in node.names]
        else:
            continue
        found.update(name for name in candidates if name in known)
    return found


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


def test_no_import_cycles() -> None:
    """Every import among the project's modules points one way (a package's ``__init__`` may
    import its own modules; they must not import it back)."""
    modules = {_module_name(path): path for _, path in _sources()}
    graph = {name: _imported_modules(path, set(modules) - {name}) for name, path in modules.items()}
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(name: str, path: list[str]) -> None:
        state[name] = 1
        for target in sorted(graph[name]):
            if state.get(target) == 1:
                cycles.append([*path[path.index(target) :], target])
            elif target not in state:
                visit(target, [*path, target])
        state[name] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(cycle) for cycle in cycles)
