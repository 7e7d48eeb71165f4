{
  description = "vultr-scraper: exact history of Vultr's public catalogue and endpoint health, as one arq worker";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-25.11";

  outputs =
    { self, nixpkgs }:
    let
      inherit (nixpkgs) lib;
      systems = [
        "x86_64-linux"
        "aarch64-linux"
      ];
      pkgsFor = lib.genAttrs systems (
        system:
        import nixpkgs {
          inherit system;
          overlays = [ self.overlays.default ];
        }
      );
      forAllSystems = f: lib.genAttrs systems (system: f pkgsFor.${system});
    in
    {
      # arq and the three distributions in every Python package set, plus the application
      # `vultr-scraper` (its own Python environment, redis-server on PATH).
      overlays.default = import ./nix/overlay.nix;

      packages = forAllSystems (pkgs: {
        default = pkgs.vultr-scraper;
        inherit (pkgs) vultr-scraper;
        inherit (pkgs.python3Packages)
          vultr-scraper-core
          vultr-scraper-jobs
          vultr-scraper-worker
          arq
          ;
      });

      # `nix run . -- plans --json`: with no redis.url configured the CLI starts its own
      # redis-server under the state directory, and the wrapper has it on PATH.
      apps = forAllSystems (pkgs: {
        default = {
          type = "app";
          program = lib.getExe pkgs.vultr-scraper;
          meta.description = "The vultr-scraper CLI and worker";
        };
      });

      devShells = forAllSystems (pkgs: {
        default = pkgs.mkShell {
          packages = [
            pkgs.python3
            pkgs.hatch
            pkgs.ruff
            pkgs.redis
            pkgs.nixfmt
          ];
        };
      });

      # The module, with the package defaulting to this flake's build for the host's system.
      nixosModules.default =
        { lib, pkgs, ... }:
        {
          imports = [ ./nixos-module ];
          services.vultr-scraper.package =
            lib.mkDefault
              self.packages.${pkgs.stdenv.hostPlatform.system}.default;
        };

      checks = forAllSystems (
        pkgs:
        {
          inherit (self.packages.${pkgs.stdenv.hostPlatform.system})
            vultr-scraper
            vultr-scraper-core
            vultr-scraper-jobs
            vultr-scraper-worker
            arq
            ;
          vm = pkgs.testers.runNixOSTest (import ./tests/nix/vm-test.nix { inherit self; });
        }
      );

      formatter = forAllSystems (pkgs: pkgs.nixfmt);
    };
}
