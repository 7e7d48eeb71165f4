# vultr-scraper-core, built from packages/core with hatchling; runs tests/core in the build.
# Every [project].dependencies / [build-system].requires entry of packages/core/pyproject.toml
# must be in `dependencies` / `build-system` below: tests/nix/deps-consistency.nix checks it.
{
  lib,
  buildPythonPackage,
  hatchling,
  aiohttp,
  loguru,
  msgspec,
  redis,
  # check inputs
  pytestCheckHook,
  pytest-asyncio,
  aioresponses,
  hypothesis,
  schemathesis,
  selenium,
  redis-server,
}:

let
  project = (lib.importTOML ../packages/core/pyproject.toml).project;
  source = import ./source.nix { inherit lib; } {
    package = "core";
    testDirs = [ "core" ];
  };
in
buildPythonPackage {
  pname = project.name;
  inherit (project) version;
  pyproject = true;

  inherit (source) src;
  sourceRoot = "${source.src.name}/packages/core";
  # The build runs in packages/core; the tests live in ../../tests and need a writable tree.
  postUnpack = ''
    chmod -R u+w "${source.src.name}"
  '';

  build-system = [ hatchling ];

  dependencies = [
    aiohttp
    loguru
    msgspec
    redis
  ];

  # packages/core pins redis below 6 (arq's bound) and nixpkgs ships redis-py 6: the check phase
  # runs the project's tests against the redis-py that is actually in the closure.
  pythonRelaxDeps = [ "redis" ];

  doCheck = source.testPaths != [ ];
  nativeCheckInputs = [
    pytestCheckHook
    pytest-asyncio
    aioresponses
    hypothesis
    schemathesis
    selenium
    redis-server
  ];
  enabledTestPaths = source.testPaths;
  disabledTestMarks = [ "slow" ];
  pytestFlags = [
    "-p"
    "no:cacheprovider"
  ];

  pythonImportsCheck = [
    "vultr_scraper_core"
    "vultr_scraper_core.config"
  ];

  meta = {
    inherit (project) description;
    license = lib.licenses.mit;
  };
}
