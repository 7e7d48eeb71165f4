# Stand-in for `import nixpkgs { system; overlays; }` with just what the project's flake uses.
# Overlays are applied for real (lib.fix / lib.extends), including pythonPackagesExtensions, so
# the project's overlay and package expressions are evaluated as in nixpkgs. Derivations are
# real (instantiable, never built): every input, the fileset sources and fixed-output sources
# are in their inputs, so evaluation errors anywhere surface. buildPythonPackage rejects
# attributes it does not know, to catch typos such as `build-systems`.
{
  system ? builtins.currentSystem,
  overlays ? [ ],
  config ? { },
}:

let
  lib = import ./lib;
  nixosStub = ./nixos-stub.nix;
  nixpkgsVersions = import ./nixpkgs-versions.nix;

  mkDrv =
    name: attrs:
    derivation (
      {
        inherit name system;
        builder = "/bin/sh";
        args = [
          "-c"
          "echo mock > $out"
        ];
      }
      // attrs
    )
    // {
      meta = attrs.meta or { };
    };

  fakePackage =
    pname: version: extra:
    mkDrv "${pname}-${version}" { inherit pname version; } // { inherit pname version; } // extra;

  knownAttributes = [
    "pname"
    "version"
    "pyproject"
    "src"
    "sourceRoot"
    "postUnpack"
    "build-system"
    "dependencies"
    "optional-dependencies"
    "nativeCheckInputs"
    "pythonImportsCheck"
    "pythonRelaxDeps"
    "makeWrapperArgs"
    "doCheck"
    "enabledTestPaths"
    "disabledTests"
    "disabledTestMarks"
    "disabledTestPaths"
    "pytestFlags"
    "meta"
    "passthru"
  ];

  base = final: {
    inherit lib config;
    stdenv.hostPlatform.system = system;
    pythonPackagesExtensions = [ ];

    redis = fakePackage "redis" "8.2.1" { meta.mainProgram = "redis-server"; };
    systemd = fakePackage "systemd" "258" { };
    hatch = fakePackage "hatch" "1.14.1" { };
    ruff = fakePackage "ruff" "0.12.0" { };
    nixfmt = fakePackage "nixfmt" "1.0.0" { meta.mainProgram = "nixfmt"; };

    mkShell = attrs: mkDrv "nix-shell" { inputs = map toString (attrs.packages or [ ]); };
    writeShellScriptBin =
      name: text:
      mkDrv name { inherit text; }
      // {
        meta.mainProgram = name;
      };
    formats.toml = _: {
      type = lib.types.attrsOf lib.types.anything;
      generate = name: value: builtins.toFile name (builtins.toJSON value);
    };

    python3 = fakePackage "python3" "3.13.9" {
      interpreter = "${final.python3.outPath}/bin/python3.13";
      pkgs = final.python3Packages;
    };
    python3Packages =
      let
        pythonBase = pyFinal: {
          callPackage = lib.callPackageWith (final // pyFinal);
          fetchPypi =
            {
              pname,
              version,
              hash,
            }:
            derivation {
              name = "${pname}-${version}.tar.gz";
              system = "builtin";
              builder = "builtin:fetchurl";
              url = "https://files.pythonhosted.org/packages/source/${builtins.substring 0 1 pname}/${pname}/${pname}-${version}.tar.gz";
              outputHashMode = "flat";
              outputHashAlgo = null;
              outputHash = hash;
              urls = [ ];
              unpack = false;
              executable = false;
            };
          buildPythonPackage =
            attrs:
            let
              unknown = builtins.filter (name: !(builtins.elem name knownAttributes)) (builtins.attrNames attrs);
              inputs = (attrs.build-system or [ ]) ++ (attrs.dependencies or [ ]) ++ (attrs.nativeCheckInputs or [ ]);
              notDerivations = builtins.filter (input: !(lib.isDerivation input)) inputs;
            in
            if unknown != [ ] then
              throw "buildPythonPackage ${attrs.pname}: unknown attribute(s) ${toString unknown}"
            else if notDerivations != [ ] then
              throw "buildPythonPackage ${attrs.pname}: an input is not a derivation"
            else
              mkDrv "python3.13-${attrs.pname}-${attrs.version}" {
                inherit (attrs) pname version;
                src = attrs.src;
                inputs = map toString inputs;
                sourceRoot = attrs.sourceRoot or "";
                enabledTestPaths = attrs.enabledTestPaths or [ ];
                makeWrapperArgs = attrs.makeWrapperArgs or [ ];
                pythonImportsCheck = attrs.pythonImportsCheck or [ ];
                doCheck = attrs.doCheck or true;
              }
              // {
                inherit (attrs) pname version;
                meta = attrs.meta or { };
                passthru = attrs.passthru or { };
                optional-dependencies = attrs.optional-dependencies or { };
              };
          toPythonApplication =
            drv:
            mkDrv "${drv.pname}-${drv.version}" { library = toString drv; }
            // {
              inherit (drv) pname version meta;
            };

          pytestCheckHook = fakePackage "pytest-check-hook" "8.4.1" { };
          pytest-asyncio = fakePackage "pytest-asyncio" "1.1.0" { };
          aioresponses = fakePackage "aioresponses" "0.7.8" { };
          hypothesis = fakePackage "hypothesis" "6.136.9" { };
          schemathesis = fakePackage "schemathesis" "4.1.4" { };
          selenium = fakePackage "selenium" "4.34.2" { };
          moto = fakePackage "moto" "5.1.8" { };
          aiosmtpd = fakePackage "aiosmtpd" "1.4.6" { };
          dnslib = fakePackage "dnslib" "0.9.26" { };
          standardwebhooks = fakePackage "standardwebhooks" "1.0.0" { };
        }
        // builtins.mapAttrs (
          name: version:
          fakePackage name version (
            lib.optionalAttrs (name == "redis") {
              optional-dependencies.hiredis = [ (fakePackage "hiredis" nixpkgsVersions.hiredis { }) ];
            }
          )
        ) nixpkgsVersions;
      in
      lib.fix (lib.foldl' (acc: extension: lib.extends extension acc) pythonBase final.pythonPackagesExtensions);

    # Evaluates the test's nodes against the NixOS option stub, so a type error or failed
    # assertion in the VM test configuration fails `flake check`; the nodes' units end up in
    # the derivation's environment so the drvPath depends on them.
    testers.runNixOSTest =
      testModule:
      let
        test = lib.evalModules {
          modules = [
            {
              options = {
                name = lib.mkOption { type = lib.types.str; };
                nodes = lib.mkOption { type = lib.types.attrsOf lib.types.deferredModule; };
                testScript = lib.mkOption { type = lib.types.str; };
              };
            }
            testModule
          ];
        };
        evalNode =
          node:
          (lib.evalModules {
            modules = [
              nixosStub
              { _module.args.pkgs = final; }
              node
            ];
          }).config;
        nodes = builtins.mapAttrs (_: evalNode) test.config.nodes;
        failed = lib.concatLists (
          lib.mapAttrsToList (
            name: node: map (a: "${name}: ${a.message}") (builtins.filter (a: !a.assertion) node.assertions)
          ) nodes
        );
      in
      if failed != [ ] then
        throw "runNixOSTest ${test.config.name}: failed assertions:\n${lib.concatStringsSep "\n" failed}"
      else
        mkDrv "vm-test-run-${test.config.name}" {
          inherit (test.config) testScript;
          nodes = builtins.toJSON (builtins.mapAttrs (_: node: node.systemd.services) nodes);
        };
  };
in
lib.fix (lib.foldl' (acc: overlay: lib.extends overlay acc) base overlays)
