# vultr-scraper-worker, built from packages/worker with hatchling: arq WorkerSettings, the
# `vultr-scraper` CLI and the HTTP API. Runs tests/worker and tests/integration in the build,
# which is also where arq is exercised on nixpkgs' redis-py.
# Every [project].dependencies entry of packages/worker/pyproject.toml must be in `dependencies`
# below (build-system: python-package.nix): tests/nix/deps-consistency.nix checks it.
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
  jinja2,
  markupsafe,
  redis,
  # `redis-server` (the top-level `redis` package) is put on the CLI's PATH: with no redis.url
  # configured the CLI starts its own redis-server under the state directory.
  redis-server,
  # check inputs (used by python-package.nix)
  pytestCheckHook,
  pytest-asyncio,
  aioresponses,
  hypothesis,
  schemathesis,
  selenium,
  moto,
  aiosmtpd,
  dnslib,
  standardwebhooks,
}@inputs:

import ./python-package.nix inputs {
  package = "worker";
  testDirs = [
    "worker"
    "integration"
  ];

  dependencies = [
    vultr-scraper-core
    vultr-scraper-jobs
    arq
    aiohttp
    click
    loguru
    msgspec
    prometheus-client
    jinja2
    markupsafe
    redis
  ];

  makeWrapperArgs = [
    "--suffix"
    "PATH"
    ":"
    (lib.makeBinPath [ redis-server ])
  ];

  pythonImportsCheck = [
    "vultr_scraper_worker"
    "vultr_scraper_worker.cli"
  ];

  meta.mainProgram = "vultr-scraper";
}
