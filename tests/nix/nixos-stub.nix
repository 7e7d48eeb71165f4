# A stub of the NixOS options that nixos-module/default.nix touches, with the types and defaults
# of nixpkgs (nixos-25.11): enough for lib.evalModules to type-check the module and compute the
# unit without the NixOS tree. Keep in line with nixpkgs when the flake input is bumped:
#   nixos/modules/misc/assertions.nix, nixos/lib/systemd-unit-options.nix,
#   nixos/modules/services/databases/redis.nix, nixos/modules/config/users-groups.nix.
{ lib, pkgs, ... }:

let
  inherit (lib) mkOption types;

  # nixos/lib/systemd-lib.nix: a unit setting is an atom or a list of atoms; lists from several
  # definitions are concatenated, atoms must agree.
  atom = types.oneOf [
    types.bool
    types.int
    types.str
    types.path
    types.package
  ];
  unitOption = lib.mkOptionType {
    name = "systemd option";
    description = "systemd unit setting (atom or list of atoms)";
    check = value: atom.check value || (builtins.isList value && builtins.all atom.check value);
    merge =
      loc: defs:
      let
        defs' = lib.filterOverrides defs;
      in
      if builtins.any (def: builtins.isList def.value) defs' then
        lib.concatMap (def: lib.toList def.value) defs'
      else
        lib.mergeEqualOption loc defs';
  };

  unitNames = mkOption {
    type = types.listOf types.str;
    default = [ ];
  };

  serviceType = types.submodule {
    options = {
      enable = mkOption {
        type = types.bool;
        default = true;
      };
      description = mkOption {
        type = types.singleLineStr;
        default = "";
      };
      documentation = mkOption {
        type = types.listOf types.str;
        default = [ ];
      };
      wantedBy = unitNames;
      requiredBy = unitNames;
      wants = unitNames;
      requires = unitNames;
      bindsTo = unitNames;
      partOf = unitNames;
      after = unitNames;
      before = unitNames;
      conflicts = unitNames;
      path = mkOption {
        type = types.listOf (types.either types.package types.str);
        default = [ ];
      };
      environment = mkOption {
        type = types.attrsOf (
          types.nullOr (
            types.oneOf [
              types.str
              types.path
              types.package
            ]
          )
        );
        default = { };
      };
      serviceConfig = mkOption {
        type = types.attrsOf unitOption;
        default = { };
      };
      unitConfig = mkOption {
        type = types.attrsOf unitOption;
        default = { };
      };
      script = mkOption {
        type = types.lines;
        default = "";
      };
      preStart = mkOption {
        type = types.lines;
        default = "";
      };
      startLimitBurst = mkOption {
        type = types.nullOr types.int;
        default = null;
      };
      startLimitIntervalSec = mkOption {
        type = types.nullOr types.int;
        default = null;
      };
    };
  };

  redisServerType = types.submodule (
    { config, name, ... }:
    let
      redisName = if name == "" then "redis" else "redis-${name}";
    in
    {
      options = {
        enable = lib.mkEnableOption "Redis server";
        user = mkOption {
          type = types.str;
          default = redisName;
        };
        group = mkOption {
          type = types.str;
          default = config.user;
        };
        port = mkOption {
          type = types.port;
          default = if name == "" then 6379 else 0;
        };
        bind = mkOption {
          type = types.nullOr types.str;
          default = "127.0.0.1";
        };
        unixSocket = mkOption {
          type = types.nullOr types.path;
          default = "/run/${redisName}/redis.sock";
        };
        unixSocketPerm = mkOption {
          type = types.int;
          default = 660;
        };
        appendOnly = mkOption {
          type = types.bool;
          default = false;
        };
        appendFsync = mkOption {
          type = types.str;
          default = "everysec";
        };
        save = mkOption {
          type = types.listOf (types.listOf types.int);
          default = [
            [
              900
              1
            ]
            [
              300
              10
            ]
            [
              60
              10000
            ]
          ];
        };
        settings = mkOption {
          type = types.attrsOf (
            types.oneOf [
              types.bool
              types.int
              types.str
              (types.listOf types.str)
            ]
          );
          default = { };
        };
      };
    }
  );
in
{
  options = {
    assertions = mkOption {
      type = types.listOf types.unspecified;
      default = [ ];
    };
    warnings = mkOption {
      type = types.listOf types.str;
      default = [ ];
    };

    environment.etc = mkOption {
      type = types.attrsOf (types.submodule { freeformType = types.attrsOf types.anything; });
      default = { };
    };
    environment.systemPackages = mkOption {
      type = types.listOf types.package;
      default = [ ];
    };

    networking.firewall.allowedTCPPorts = mkOption {
      type = types.listOf types.port;
      default = [ ];
    };

    users.users = mkOption {
      type = types.attrsOf (types.submodule { freeformType = types.attrsOf types.anything; });
      default = { };
    };
    users.groups = mkOption {
      type = types.attrsOf (types.submodule { freeformType = types.attrsOf types.anything; });
      default = { };
    };

    systemd.package = mkOption {
      type = types.package;
      default = pkgs.systemd;
    };
    systemd.services = mkOption {
      type = types.attrsOf serviceType;
      default = { };
    };

    services.redis.servers = mkOption {
      type = types.attrsOf redisServerType;
      default = { };
    };
  };
}
