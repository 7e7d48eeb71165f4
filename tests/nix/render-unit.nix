# Renders a systemd.services.<name> value the way NixOS writes unit files
# (nixos/lib/systemd-lib.nix): one `Key=value` line per atom, lists as repeated keys, booleans as
# true/false. Used to score the unit with `systemd-analyze security --offline=true`.
{ lib }:
service:

let
  atomToString =
    value:
    if builtins.isBool value then
      lib.boolToString value
    else if builtins.isAttrs value then
      value.outPath
    else
      toString value;
  lines = name: value: map (item: "${name}=${atomToString item}") (lib.toList value);
  section =
    title: attrs:
    "[${title}]\n"
    + lib.concatMapStrings (line: line + "\n") (
      lib.concatLists (lib.mapAttrsToList lines (lib.filterAttrs (_: value: value != [ ]) attrs))
    );
  joined = list: lib.concatStringsSep " " list;
  unit = {
    Description = service.description;
  }
  // lib.optionalAttrs (service.after != [ ]) { After = joined service.after; }
  // lib.optionalAttrs (service.wants != [ ]) { Wants = joined service.wants; }
  // lib.optionalAttrs (service.requires != [ ]) { Requires = joined service.requires; }
  // service.unitConfig;
  environment = lib.mapAttrsToList (name: value: "\"${name}=${atomToString value}\"") (
    lib.filterAttrs (_: value: value != null) service.environment
  );
in
section "Unit" unit
+ "\n"
+ section "Service" ({ Environment = environment; } // service.serviceConfig)
+ "\n"
+ section "Install" { WantedBy = joined service.wantedBy; }
