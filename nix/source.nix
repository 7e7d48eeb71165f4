# The source of one project distribution: its packages/<name> tree, the root pyproject.toml
# (pytest settings: asyncio auto mode, filterwarnings = error) and the shared test tree without
# the other distributions' test directories, so a change in one package's tests does not rebuild
# the others. Only git-tracked files reach a flake, and lib.fileset keeps the rest out.
# Returns { src; testPaths; }: testPaths (relative to packages/<package>, the build directory)
# lists the test directories that hold at least one test_*.py file.
{ lib }:
{
  # packages/<package>
  package,
  # directories under tests/ whose tests this distribution runs in its check phase
  testDirs,
}:

let
  perPackageTestDirs = [
    "core"
    "jobs"
    "worker"
    "integration"
    "nix"
  ];
  excluded = builtins.filter (dir: !(builtins.elem dir testDirs)) perPackageTestDirs;

  hasTests =
    dir:
    builtins.pathExists dir
    && builtins.any (
      entry:
      let
        type = (builtins.readDir dir).${entry};
      in
      (type == "directory" && hasTests (dir + "/${entry}"))
      || (type == "regular" && builtins.match "test_.*[.]py" entry != null)
    ) (builtins.attrNames (builtins.readDir dir));
in
{
  testPaths = map (dir: "../../tests/${dir}") (
    builtins.filter (dir: hasTests (../tests + "/${dir}")) testDirs
  );

  src = lib.fileset.toSource {
    root = ../.;
    fileset = lib.fileset.unions [
      ../pyproject.toml
      (../packages + "/${package}")
      (lib.fileset.difference (lib.fileset.maybeMissing ../tests) (
        lib.fileset.unions (map (dir: lib.fileset.maybeMissing (../tests + "/${dir}")) excluded)
      ))
    ];
  };
}
