# Dependency consistency between packages/*/pyproject.toml and nix/*.nix, with builtins only
# (no nixpkgs needed):
#
#   nix-instantiate --eval --strict --json tests/nix/deps-consistency.nix
#
# For every distribution under packages/ it calls nix/<distribution name>.nix with stand-in
# arguments and checks, in both directions, that
#   * [project].dependencies      == the expression's `dependencies`,
#   * [build-system].requires     == the expression's `build-system`,
#   * the root [dependency-groups].test entries are all in `nativeCheckInputs`,
#   * pname / version are the pyproject's,
#   * every version specifier holds for the version Nix provides (the project's own packages,
#     nix/arq.nix, or nixpkgs per nixpkgs-versions.nix), unless the dependency is listed in
#     `pythonRelaxDeps`.
# Names are compared PEP 503-normalised; extras and environment markers are ignored. It returns
# one line per distribution, or throws with every problem found.
let
  repoRoot = ../..;
  nixpkgsVersions = import ./nixpkgs-versions.nix;

  inherit (builtins)
    attrNames
    concatStringsSep
    elem
    elemAt
    filter
    fromTOML
    functionArgs
    head
    isString
    length
    listToAttrs
    map
    match
    pathExists
    readDir
    readFile
    replaceStrings
    split
    ;

  upper = [ "A" "B" "C" "D" "E" "F" "G" "H" "I" "J" "K" "L" "M" "N" "O" "P" "Q" "R" "S" "T" "U" "V" "W" "X" "Y" "Z" ];
  lower = [ "a" "b" "c" "d" "e" "f" "g" "h" "i" "j" "k" "l" "m" "n" "o" "p" "q" "r" "s" "t" "u" "v" "w" "x" "y" "z" ];
  normalise = name: concatStringsSep "-" (filter isString (split "[-_.]+" (replaceStrings upper lower name)));

  readTOML = path: fromTOML (readFile path);

  # "redis[hiredis]>=4.2,<6 ; python_version > '3'" -> { name = "redis"; clauses = [ ... ]; }
  parseRequirement =
    requirement:
    let
      withoutMarker = head (split ";" requirement);
      parts = match "[ ]*([A-Za-z0-9][A-Za-z0-9._-]*)[ ]*(\\[[^]]*])?[ ]*(.*)" withoutMarker;
      specifier = elemAt parts 2;
      clauses = filter (clause: clause != "") (
        map (clause: replaceStrings [ " " ] [ "" ] clause) (filter isString (split "," specifier))
      );
    in
    if parts == null then
      throw "cannot parse requirement '${requirement}'"
    else
      {
        name = normalise (elemAt parts 0);
        inherit requirement clauses;
      };

  # Version comparison on release segments, padded so that 6 == 6.0 (PEP 440).
  segments = version: filter isString (split "[.]" version);
  pad = n: list: if length list >= n then list else pad n (list ++ [ "0" ]);
  compare =
    a: b:
    let
      n = if length (segments a) > length (segments b) then length (segments a) else length (segments b);
    in
    builtins.compareVersions (concatStringsSep "." (pad n (segments a))) (
      concatStringsSep "." (pad n (segments b))
    );
  prefixMatches =
    version: prefix:
    let
      want = segments prefix;
      have = pad (length want) (segments version);
    in
    builtins.genList (i: elemAt have i) (length want) == want;

  satisfies =
    version: clause:
    let
      parts = match "(===|==|!=|~=|<=|>=|<|>)(.+)" clause;
      op = elemAt parts 0;
      target = elemAt parts 1;
      wildcard = match "(.*)[.][*]" target;
    in
    if parts == null then
      throw "cannot parse version specifier '${clause}'"
    else if op == "===" then
      version == target
    else if op == "==" then
      (if wildcard != null then prefixMatches version (head wildcard) else compare version target == 0)
    else if op == "!=" then
      !(if wildcard != null then prefixMatches version (head wildcard) else compare version target == 0)
    else if op == ">=" then
      compare version target >= 0
    else if op == "<=" then
      compare version target <= 0
    else if op == ">" then
      compare version target > 0
    else if op == "<" then
      compare version target < 0
    else
      # ~=X.Y.Z: >= X.Y.Z and == X.Y.*
      let
        targetSegments = segments target;
        stem = concatStringsSep "." (builtins.genList (i: elemAt targetSegments i) (length targetSegments - 1));
      in
      compare version target >= 0 && prefixMatches version stem;

  # --- the project's distributions -------------------------------------------------------------
  packageDirs = filter (dir: pathExists (repoRoot + "/packages/${dir}/pyproject.toml")) (
    attrNames (readDir (repoRoot + "/packages"))
  );
  pyprojects = listToAttrs (
    map (
      dir:
      let
        pyproject = readTOML (repoRoot + "/packages/${dir}/pyproject.toml");
      in
      {
        name = normalise pyproject.project.name;
        value = pyproject // {
          inherit dir;
        };
      }
    ) packageDirs
  );
  rootPyproject = readTOML (repoRoot + "/pyproject.toml");
  testGroup = map (entry: (parseRequirement entry).name) (
    filter isString (rootPyproject.dependency-groups.test or [ ])
  );

  # --- calling a Nix expression with stand-ins ---------------------------------------------------
  stubLib = {
    importTOML = readTOML;
    licenses.mit = "mit";
  };
  stubArgument = name: {
    pname = name;
    version = versionOf name;
    # arq's `redis.optional-dependencies.hiredis`
    optional-dependencies.hiredis = [ (stubArgument "hiredis") ];
  };
  callStubbed =
    file:
    let
      function = import file;
      arguments = builtins.mapAttrs (
        name: _:
        if name == "lib" then
          stubLib
        else if name == "buildPythonPackage" then
          (attrs: attrs)
        else if name == "fetchPypi" then
          (attrs: attrs)
        else
          stubArgument name
      ) (functionArgs function);
    in
    function arguments;

  nixFile = name: repoRoot + "/nix/${name}.nix";
  arq = callStubbed (nixFile "arq");
  versionOf =
    name:
    if pyprojects ? ${name} then
      pyprojects.${name}.project.version
    else if name == "arq" then
      arq.version
    else
      nixpkgsVersions.${name} or null;

  # --- the checks --------------------------------------------------------------------------------
  names = drvs: map (drv: normalise drv.pname) drvs;
  difference = a: b: filter (x: !(elem x b)) a;
  listNames = list: concatStringsSep ", " list;

  checkPackage =
    name:
    let
      pyproject = pyprojects.${name};
      where = "packages/${pyproject.dir}/pyproject.toml";
      file = nixFile name;
      expression = callStubbed file;
      nixName = "nix/${name}.nix";

      runtime = map parseRequirement (pyproject.project.dependencies or [ ]);
      build = map parseRequirement (pyproject.build-system.requires or [ ]);
      nixRuntime = names (expression.dependencies or [ ]);
      nixBuild = names (expression.build-system or [ ]);
      nixCheck = names (expression.nativeCheckInputs or [ ]);
      relaxed = map normalise (expression.pythonRelaxDeps or [ ]);

      setProblems =
        label: python: nix:
        let
          pythonNames = map (r: r.name) python;
          missing = difference pythonNames nix;
          extra = difference nix pythonNames;
        in
        (if missing == [ ] then [ ] else [ "${nixName} lacks ${label} from ${where}: ${listNames missing}" ])
        ++ (
          if extra == [ ] then [ ] else [ "${nixName} has ${label} that ${where} does not declare: ${listNames extra}" ]
        );

      versionProblems = concatLists (
        map (
          requirement:
          let
            version = versionOf requirement.name;
            failing = filter (clause: !(satisfies version clause)) requirement.clauses;
          in
          if requirement.clauses == [ ] then
            [ ]
          else if version == null then
            [
              "${where}: no known nixpkgs version for '${requirement.name}'; add it to tests/nix/nixpkgs-versions.nix"
            ]
          else if failing == [ ] || elem requirement.name relaxed then
            [ ]
          else
            [
              "${where}: '${requirement.requirement}' does not hold for ${requirement.name} ${version} provided by Nix; relax it in ${nixName} (pythonRelaxDeps) or fix the bound"
            ]
        ) (runtime ++ build)
      );

      relaxedNotes = filter (note: note != null) (
        map (
          requirement:
          let
            version = versionOf requirement.name;
          in
          if elem requirement.name relaxed && version != null then
            "${requirement.name} ${concatStringsSep "," requirement.clauses} relaxed (Nix: ${version})"
          else
            null
        ) runtime
      );

      identityProblems =
        (
          if normalise expression.pname == name then
            [ ]
          else
            [ "${nixName}: pname '${expression.pname}' is not the distribution name '${name}'" ]
        )
        ++ (
          if expression.version == pyproject.project.version then
            [ ]
          else
            [ "${nixName}: version ${expression.version} differs from ${where} (${pyproject.project.version})" ]
        );

      checkProblems =
        let
          missing = difference testGroup (nixCheck ++ [ "pytest" ]);
        in
        if missing == [ ] then
          [ ]
        else
          [ "${nixName} lacks check inputs from the root [dependency-groups].test: ${listNames missing}" ];

      problems =
        if !(pathExists file) then
          [ "${where}: no Nix expression ${nixName}" ]
        else
          setProblems "dependencies" runtime nixRuntime
          ++ setProblems "build requirements" build nixBuild
          ++ versionProblems
          ++ identityProblems
          ++ checkProblems;
    in
    {
      inherit problems;
      summary =
        "${name} ${pyproject.project.version}: ${toString (length runtime)} dependencies, "
        + "${toString (length build)} build requirement(s) consistent"
        + (if relaxedNotes == [ ] then "" else "; " + concatStringsSep "; " relaxedNotes);
    };

  concatLists = builtins.concatLists;
  results = map checkPackage (attrNames pyprojects);
  allProblems = concatLists (map (result: result.problems) results);
in
if packageDirs == [ ] then
  throw "no packages/*/pyproject.toml found under ${toString repoRoot}"
else if allProblems != [ ] then
  throw ("dependency consistency: ${toString (length allProblems)} problem(s):\n  " + concatStringsSep "\n  " allProblems)
else
  map (result: result.summary) results
