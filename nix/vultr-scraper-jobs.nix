# vultr-scraper-jobs, built from packages/jobs with hatchling; runs tests/jobs in the build.
# Every [project].dependencies / [build-system].requires entry of packages/jobs/pyproject.toml
# must be in `dependencies` / `build-system` below: tests/nix/deps-consistency.nix checks it.
{
  lib,
  buildPythonPackage,
  hatchling,
  vultr-scraper-core,
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
  project = (lib.importTOML ../packages/jobs/pyproject.toml).project;
  source = import ./source.nix { inherit lib; } {
    package = "jobs";
    testDirs = [ "jobs" ];
  };
in
buildPythonPackage {
  pname = project.name;
  inherit (project) version;
  pyproject = true;

  inherit (source) src;
  sourceRoot = "${source.src.name}/packages/jobs";
  # The build runs in packages/jobs; the tests live in ../../tests and need a writable tree.
  postUnpack = ''
    chmod -R u+w "${source.src.name}"
  '';

  build-system = [ hatchling ];

  dependencies = [
    vultr-scraper-core
    aiohttp
    loguru
    msgspec
    redis
  ];

  # packages/jobs pins redis below 6 (arq's bound) and nixpkgs ships redis-py 6: the check phase
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
    "vultr_scraper_jobs"
  ];

  meta = {
    inherit (project) description;
    license = lib.licenses.mit;
  };
}
