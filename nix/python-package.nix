# What the project's distributions (nix/vultr-scraper-*.nix) have in common: packages/<package>
# built with hatchling, named and versioned by its pyproject.toml, with the tests of the given
# tests/ directories run in the build (see source.nix).
#
#   import ./python-package.nix inputs { package; testDirs; dependencies; pythonImportsCheck; ... }
#
# `inputs` is the calling expression's whole argument set: that expression lists every input in
# its own arguments, because callPackage and tests/nix/deps-consistency.nix read them
# (builtins.functionArgs), including the build and check inputs taken from it here. Further
# attributes (e.g. makeWrapperArgs) go to buildPythonPackage unchanged; `meta` is added to the
# description and licence.
{
  lib,
  buildPythonPackage,
  hatchling,
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
  ...
}:
{
  # packages/<package>
  package,
  # directories under tests/ whose tests this distribution runs in its check phase
  testDirs,
  dependencies,
  pythonImportsCheck,
  meta ? { },
  ...
}@attrs:

let
  project = (lib.importTOML (../packages + "/${package}/pyproject.toml")).project;
  source = import ./source.nix { inherit lib; } { inherit package testDirs; };
in
buildPythonPackage (
  {
    pname = project.name;
    inherit (project) version;
    pyproject = true;

    inherit (source) src;
    sourceRoot = "${source.src.name}/packages/${package}";
    # The build runs in packages/<package>; the tests live in ../../tests and need a writable tree.
    postUnpack = ''
      chmod -R u+w "${source.src.name}"
    '';

    build-system = [ hatchling ];

    # The packages pin redis below 6 (arq's bound) and nixpkgs ships redis-py 6: the check phase
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
      moto
      aiosmtpd
      dnslib
      standardwebhooks
      redis-server
    ];
    enabledTestPaths = source.testPaths;
    disabledTestMarks = [ "slow" ];
    pytestFlags = [
      "-p"
      "no:cacheprovider"
    ];

    meta = {
      inherit (project) description;
      license = lib.licenses.mit;
    }
    // meta;
  }
  // builtins.removeAttrs attrs [
    "package"
    "testDirs"
    "meta"
  ]
)
