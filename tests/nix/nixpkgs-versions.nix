# Versions of the nixpkgs Python packages the project depends on, in the `nixos-25.11` branch the
# flake follows (from a nixpkgs evaluation of 2025-09; patch releases on the branch may be newer).
# deps-consistency.nix checks every pyproject version specifier against this table; a
# specifier it does not satisfy must be relaxed (`pythonRelaxDeps`) in the package's Nix
# expression. Update the table when flake.lock is bumped; online, the build's
# pythonRuntimeDepsCheckHook is the final word.
{
  aiohttp = "3.12.15";
  aiosmtplib = "4.0.1";
  apprise = "1.9.4";
  click = "8.2.1";
  dnspython = "2.7.0";
  hatchling = "1.27.0";
  hiredis = "3.2.1";
  jinja2 = "3.1.6";
  loguru = "0.7.3";
  markupsafe = "3.0.2";
  msgspec = "0.19.0";
  prometheus-client = "0.22.1";
  pyarrow = "21.0.0";
  redis = "6.2.0";
}
