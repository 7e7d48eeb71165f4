# vultr-scraper-worker, built from packages/worker with hatchling: arq WorkerSettings, the
# `vultr-scraper` CLI and the HTTP API. Runs tests/worker and tests/integration in the build,
# which is also where arq is exercised on nixpkgs' redis-py.
# Every [project].dependencies / [build-system].requires entry of
# packages/worker/pyproject.toml must be in `dependencies` / `build-system` below:
# tests/nix/deps-consistency.nix checks it.
{
  lib,
  buildPythonPackage,
  hatchling,
  vultr-scraper-core,
  vultr-scraper-jobs,
  arq,
  aiohttp,
  click,
  loguru,
  msgspec,
  prometheus-client,
  redis,
  # `redis-server` (the top-level `redis` package) is put on the CLI's PATH: with no redis.url
  # configured the CLI starts its own redis-server under the state directory.
  redis-server,
  # check inputs
  pytestCheckHook,
  pytest-asyncio,
  aioresponses,
  hypothesis,
  schemathesis,
  selenium,
}:

let
  project = (lib.importTOML ../packages/worker/pyproject.toml).project;
  source = import ./source.nix { inherit lib; } {
    package = "worker";
    testDirs = [ "worker" "integration" ];
  };
in
buildPythonPackage {
  pname = project.name;
  inherit (project) version;
  pyproject = true;

  inherit (source) src;
  sourceRoot = "${source.src.name}/packages/worker";
  # The build runs in packages/worker; the tests live in ../../tests and need a writable tree.
  postUnpack = ''
    chmod -R u+w "${source.src.name}"
  '';

  build-system = [ hatchling ];

  dependencies = [
    vultr-scraper-core
    vultr-scraper-jobs
    arq
    aiohttp
    click
    loguru
    msgspec
    prometheus-client
    redis
  ];

  # packages/worker pins redis below 6 (arq's bound) and nixpkgs ships redis-py 6: the check
  # phase runs the project's tests against the redis-py that is actually in the closure.
  pythonRelaxDeps = [ "redis" ];

  makeWrapperArgs = [
    "--suffix"
    "PATH"
    ":"
    (lib.makeBinPath [ redis-server ])
  ];

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
    "vultr_scraper_worker"
    "vultr_scraper_worker.cli"
  ];

  meta = {
    inherit (project) description;
    license = lib.licenses.mit;
    mainProgram = "vultr-scraper";
  };
}
