#!/usr/bin/env bash
# Offline Nix checks (docs/nixos.md, "What is verified where"). Nothing is built.
#   1. every tracked .nix file parses (nix-instantiate --parse)
#   2. dependency consistency: packages/*/pyproject.toml <-> nix/*.nix (tests/nix/deps-consistency.nix)
#   3. with NIXPKGS_LIB (a nix-community/nixpkgs.lib checkout): the NixOS module evaluated with the
#      real lib.evalModules (accepted and rejected configurations), and the generated unit scored
#      with `systemd-analyze security --offline=true` (fails above 2.0)
#   4. with NIXPKGS_LIB and a Nix >= 2.18 (NIX_BIN, or nix on PATH): `nix flake check --no-build`
#      against a mock nixpkgs
# Installs nix-bin (and systemd for step 3) with apt when missing. Exits non-zero on failure.
set -euo pipefail
cd "$(dirname "$0")/.."

started=$(date +%s%N)
elapsed() { echo "$(( ($(date +%s%N) - started) / 1000000 )) ms"; }
apt_updated=""
apt_install() {
  if [ -z "$apt_updated" ]; then
    apt-get update -qq
    apt_updated=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}
json_lines() { python3 -c 'import json, sys; print("\n".join(json.load(sys.stdin)))'; }

if ! command -v nix-instantiate >/dev/null; then
  echo "nix-checks: installing nix-bin (apt)"
  apt_install nix-bin
fi
echo "nix-checks: $(nix-instantiate --version)"

# 1. parse ----------------------------------------------------------------------------------------
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  mapfile -t nix_files < <(git ls-files -- '*.nix')
else
  mapfile -t nix_files < <(find . -name '*.nix' -not -path './.git/*' | sort)
fi
for file in "${nix_files[@]}"; do
  [ -f "$file" ] || continue # deleted in the work tree but still tracked
  if ! nix-instantiate --parse "$file" >/dev/null; then
    echo "nix-checks: FAIL parse: $file" >&2
    exit 1
  fi
done
echo "nix-checks: parse ok (${#nix_files[@]} files, $(elapsed))"

# 2. dependency consistency -------------------------------------------------------------------
if ! out=$(nix-instantiate --eval --strict --json tests/nix/deps-consistency.nix); then
  echo "nix-checks: FAIL dependency consistency (see above)" >&2
  exit 1
fi
echo "$out" | json_lines | sed 's/^/nix-checks: deps: /'
echo "nix-checks: dependency consistency ok ($(elapsed))"

# 3. module evaluation and unit score (needs nixpkgs lib) -------------------------------------
lib_dir="${NIXPKGS_LIB:-}"
if [ -z "$lib_dir" ] || { [ ! -f "$lib_dir/lib/default.nix" ] && [ ! -f "$lib_dir/default.nix" ]; }; then
  echo "skipped: nixpkgs lib not found (set NIXPKGS_LIB to a nix-community/nixpkgs.lib checkout): module evaluation, unit security score and mock flake check not run"
  exit 0
fi
lib_dir=$(cd "$lib_dir" && pwd)

eval_case() {
  nix-instantiate --eval --strict --json --read-write-mode tests/nix/eval-module.nix \
    --argstr nixpkgsLib "$lib_dir" --argstr case "$1"
}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

for case in default full documented externalRedis; do
  if ! eval_case "$case" >"$work/$case.json"; then
    echo "nix-checks: FAIL module evaluation ($case)" >&2
    exit 1
  fi
  python3 - "$work/$case.json" "$case" <<'EOF'
import json, sys
evaluated = json.load(open(sys.argv[1]))
case = sys.argv[2]
if evaluated["failedAssertions"]:
    sys.exit(f"nix-checks: FAIL {case}: assertions failed: {evaluated['failedAssertions']}")
if evaluated["services"] != ["vultr-scraper"]:
    sys.exit(f"nix-checks: FAIL {case}: units {evaluated['services']} (expected exactly one)")
config = evaluated["result"]["service"]["serviceConfig"]
wait = evaluated["result"]["settings"]["worker"]["job_completion_wait"]
checks = {
    "DynamicUser": config.get("DynamicUser") is True,
    "StateDirectory": config.get("StateDirectory") == "vultr-scraper",
    "Restart=on-failure": config.get("Restart") == "on-failure",
    "RestartPreventExitStatus=78": config.get("RestartPreventExitStatus") == 78,
    "TimeoutStopSec > job_completion_wait": config.get("TimeoutStopSec", 0) > wait,
}
failed = [name for name, ok in checks.items() if not ok]
if failed:
    sys.exit(f"nix-checks: FAIL {case}: unit settings wrong: {failed}")
open(sys.argv[1].replace(".json", ".service"), "w").write(evaluated["result"]["unitFile"])
EOF
done

for case in noRedis firewallWithoutPort reservedCredential; do
  eval_case "$case" | python3 -c '
import json, sys
if not json.load(sys.stdin)["failedAssertions"]:
    sys.exit("nix-checks: FAIL '"$case"': expected a failed assertion")'
done
for case in optionTypo negativeWait badRedisScheme badLogLevel; do
  if eval_case "$case" >/dev/null 2>&1; then
    echo "nix-checks: FAIL $case: expected an evaluation error" >&2
    exit 1
  fi
done
echo "nix-checks: module evaluation ok (4 accepted, 7 rejected configurations, $(elapsed))"

if ! systemd-analyze security --help 2>/dev/null | grep -q -- '--offline'; then
  echo "nix-checks: installing systemd (apt) for systemd-analyze"
  apt_install systemd
fi
for case in default full documented externalRedis; do
  mkdir -p "$work/$case"
  mv "$work/$case.service" "$work/$case/vultr-scraper.service"
  report=$(systemd-analyze security --offline=true --no-pager "$work/$case/vultr-scraper.service")
  score=$(echo "$report" | sed -n 's/.*Overall exposure level for vultr-scraper.service: \([0-9.]*\).*/\1/p')
  if [ -z "$score" ]; then
    echo "$report" >&2
    echo "nix-checks: FAIL could not read the exposure score ($case)" >&2
    exit 1
  fi
  if ! python3 -c "import sys; sys.exit(float('$score') > 2.0)"; then
    echo "$report" >&2
    echo "nix-checks: FAIL systemd-analyze security: exposure $score > 2.0 ($case)" >&2
    exit 1
  fi
  echo "nix-checks: systemd-analyze security --offline ($case): exposure $score (limit 2.0)"
done

# 4. whole flake against a mock nixpkgs (needs Nix >= 2.18) ----------------------------------
nix_bin="${NIX_BIN:-$(command -v nix || true)}"
nix_version=$("$nix_bin" --version 2>/dev/null | grep -o '[0-9]*\.[0-9]*' | head -n1 || true)
if [ -z "$nix_version" ] || ! python3 -c "import sys; sys.exit(tuple(map(int, '$nix_version'.split('.'))) < (2, 18))"; then
  echo "skipped: mock flake check needs Nix >= 2.18 (found ${nix_version:-none}; set NIX_BIN)"
  echo "nix-checks: ok ($(elapsed))"
  exit 0
fi
if ! git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  echo "skipped: mock flake check needs a git work tree"
  exit 0
fi
mock="$work/mock-nixpkgs"
cp -r tests/nix/mock-nixpkgs "$mock"
cp tests/nix/nixos-stub.nix tests/nix/nixpkgs-versions.nix "$mock/"
if [ -d "$lib_dir/lib" ]; then cp -r "$lib_dir/lib" "$mock/lib"; else cp -r "$lib_dir" "$mock/lib"; fi
if ! "$nix_bin" --extra-experimental-features 'nix-command flakes' flake check --no-build \
  --all-systems --no-write-lock-file --override-input nixpkgs "path:$mock" . 2>"$work/flake.log"; then
  cat "$work/flake.log" >&2
  echo "nix-checks: FAIL nix flake check against the mock nixpkgs" >&2
  exit 1
fi
echo "nix-checks: nix flake check --no-build against a mock nixpkgs ok (Nix $nix_version)"
echo "nix-checks: ok ($(elapsed))"
