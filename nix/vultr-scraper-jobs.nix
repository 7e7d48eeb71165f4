# vultr-scraper-jobs, built from packages/jobs with hatchling; runs tests/jobs in the build.
# Every [project].dependencies entry of packages/jobs/pyproject.toml must be in `dependencies`
# below (build-system: python-package.nix): tests/nix/deps-consistency.nix checks it.
{
  lib,
  buildPythonPackage,
  hatchling,
  vultr-scraper-core,
  aiohttp,
  aiosmtplib,
  apprise,
  dnspython,
  loguru,
  msgspec,
  redis,
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
  redis-server,
}@inputs:

import ./python-package.nix inputs {
  package = "jobs";
  testDirs = [ "jobs" ];

  dependencies = [
    vultr-scraper-core
    aiohttp
    aiosmtplib
    apprise
    dnspython
    loguru
    msgspec
    redis
  ];

  pythonImportsCheck = [
    "vultr_scraper_jobs"
  ];
}
