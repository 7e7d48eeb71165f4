# Evaluates nixos-module/ with nixpkgs' real lib.evalModules, the option stub (nixos-stub.nix)
# and stand-in packages (stub-pkgs.nix), for one configuration of module-cases.nix.
#
#   nix-instantiate --eval --strict --json tests/nix/eval-module.nix \
#     --argstr nixpkgsLib "$NIXPKGS_LIB" --argstr case default
#
# nixpkgsLib: a nixpkgs (or nix-community/nixpkgs.lib) checkout, or its lib/ directory.
# The result has `failedAssertions` (messages) and, when none failed, the unit, the rendered
# unit file, the settings as they reach the config file, Redis and firewall settings.
{
  nixpkgsLib,
  case ? "default",
}:

let
  root = /. + nixpkgsLib;
  lib = import (if builtins.pathExists (root + "/lib/default.nix") then root + "/lib" else root);
  pkgs = import ./stub-pkgs.nix { inherit lib; };
  cases = import ./module-cases.nix;

  evaluated = lib.evalModules {
    modules = [
      ./nixos-stub.nix
      ../../nixos-module
      { _module.args.pkgs = pkgs; }
      cases.${case}
    ];
  };
  config = evaluated.config;

  failedAssertions = map (a: a.message) (builtins.filter (a: !a.assertion) config.assertions);
  service = config.systemd.services.vultr-scraper;
  configPath = service.environment.VULTR_SCRAPER_CONFIG;
in
{
  inherit failedAssertions;
  inherit (config) warnings;
  services = builtins.attrNames config.systemd.services;
  result =
    if failedAssertions != [ ] || !(config.systemd.services ? vultr-scraper) then
      null
    else
      {
        inherit service;
        unitFile = import ./render-unit.nix { inherit lib; } service;
        settings = builtins.fromJSON (builtins.readFile configPath);
        redisServers = lib.filterAttrs (_: server: server.enable) config.services.redis.servers;
        firewallTCPPorts = config.networking.firewall.allowedTCPPorts;
        systemPackages = map (p: p.name) config.environment.systemPackages;
        cliWrapper = lib.concatMapStrings (p: p.text or "") config.environment.systemPackages;
      };
}
