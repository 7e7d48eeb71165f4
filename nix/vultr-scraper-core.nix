# vultr-scraper-core, built from packages/core with hatchling; runs tests/core in the build.
# Every [project].dependencies entry of packages/core/pyproject.toml must be in `dependencies`
# below (build-system: python-package.nix): tests/nix/deps-consistency.nix checks it.
{
  lib,
  buildPythonPackage,
  hatchling,
  aiohttp,
  loguru,
  dnspython,
  msgspec,
  pyarrow,
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
  package = "core";
  testDirs = [ "core" ];

  dependencies = [
    aiohttp
    dnspython
    loguru
    msgspec
    pyarrow
    redis
  ];

  pythonImportsCheck = [
    "vultr_scraper_core"
    "vultr_scraper_core.config"
  ];
}
