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
  redis-server,
}:

let
  project = (lib.importTOML ../packages/jobs/pyproject.toml).project;
  src = lib.fileset.toSource {
    root = ../.;
    fileset = lib.fileset.unions [
      ../pyproject.toml # pytest settings: asyncio auto mode, filterwarnings = error
      ../packages/jobs
      (lib.fileset.maybeMissing ../tests/conftest.py)
      (lib.fileset.maybeMissing ../tests/fakes)
      (lib.fileset.maybeMissing ../tests/jobs)
    ];
  };
in
buildPythonPackage {
  pname = project.name;
  inherit (project) version;
  pyproject = true;

  inherit src;
  sourceRoot = "${src.name}/packages/jobs";

  build-system = [ hatchling ];

  dependencies = [
    vultr-scraper-core
    vultr-scraper-core
    aiohttp
    loguru
    msgspec
    redis
  ];

  # packages/jobs pins redis>=5,<6 (arq's bound) and nixpkgs ships redis-py 6: the check phase
  # runs the project's tests against the redis-py that is actually in the closure.
  pythonRelaxDeps = [ "redis" ];

  doCheck = builtins.pathExists ../tests/jobs;
  nativeCheckInputs = [
    pytestCheckHook
    pytest-asyncio
    aioresponses
    hypothesis
    redis-server
  ];
  enabledTestPaths = [ "../../tests/jobs" ];
  disabledTestMarks = [ "slow" ];

  pythonImportsCheck = [
    "vultr_scraper_jobs"
  ];

  meta = {
    inherit (project) description;
    license = lib.licenses.mit;
  };
}
