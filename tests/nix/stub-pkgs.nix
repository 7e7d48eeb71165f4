# The few nixpkgs attributes the NixOS module uses, as evaluation-only stand-ins.
# `formats.toml` writes JSON (a TOML-equivalent data model) so the harness can read back what the
# module would put in the config file; `writeShellScriptBin` keeps its text for inspection.
{ lib }:

let
  fakeDrv =
    name: extra:
    {
      type = "derivation";
      inherit name;
      outPath = "/nix/store/${builtins.substring 0 32 (builtins.hashString "sha256" name)}-${name}";
      meta = { };
    }
    // extra;

  tomlValue =
    let
      valueType =
        lib.types.nullOr (
          lib.types.oneOf [
            lib.types.bool
            lib.types.int
            lib.types.float
            lib.types.str
            lib.types.path
            (lib.types.attrsOf valueType)
            (lib.types.listOf valueType)
          ]
        )
        // {
          description = "TOML value";
        };
    in
    valueType;
in
{
  formats.toml = _: {
    type = tomlValue;
    generate = name: value: builtins.toFile name (builtins.toJSON value);
  };

  writeShellScriptBin =
    name: text:
    fakeDrv name {
      inherit text;
      meta.mainProgram = name;
    };

  systemd = fakeDrv "systemd-258" { };
  redis = fakeDrv "redis-8.2.1" { meta.mainProgram = "redis-server"; };
  vultr-scraper = fakeDrv "vultr-scraper-0.1.0" {
    pname = "vultr-scraper";
    version = "0.1.0";
    meta.mainProgram = "vultr-scraper";
  };
}
