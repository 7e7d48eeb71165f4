# arq is not in nixpkgs (the `arq` attribute there is an unrelated backup tool), so the flake
# packages it from its PyPI sdist.
{
  lib,
  buildPythonPackage,
  fetchPypi,
  hatchling,
  redis,
  click,
}:

buildPythonPackage rec {
  pname = "arq";
  version = "0.28.0";
  pyproject = true;

  src = fetchPypi {
    inherit pname version;
    hash = "sha256-pFgYiu/C1+4X0Tb4DY+o3x1uukzuverYfp8XLQJ9wxE=";
  };

  build-system = [ hatchling ];

  dependencies = [ click redis ] ++ redis.optional-dependencies.hiredis;

  # arq 0.28.0 asks for redis[hiredis]>=4.2,<6; nixpkgs ships redis-py 6. Upstream never merged
  # redis-py 6 support, so the project's own test suites (run in the checkPhase of
  # vultr-scraper-worker) are what exercises arq on redis-py 6 here.
  pythonRelaxDeps = [ "redis" ];

  # arq's own tests start Redis through testcontainers (Docker) and use pytest-asyncio's
  # removed `event_loop` fixture: they cannot run in the build sandbox.
  doCheck = false;

  pythonImportsCheck = [
    "arq"
    "arq.connections"
    "arq.cron"
    "arq.worker"
  ];

  meta = {
    description = "Job queues in Python with asyncio and Redis";
    homepage = "https://github.com/python-arq/arq";
    changelog = "https://github.com/python-arq/arq/releases/tag/v${version}";
    license = lib.licenses.mit;
    mainProgram = "arq";
  };
}
