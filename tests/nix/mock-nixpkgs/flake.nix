# A mock nixpkgs flake for `nix flake check --no-build` offline: the real nixpkgs lib (copied
# into ./lib at test time, never committed) and stand-in packages from ./default.nix.
{
  outputs =
    { self }:
    let
      lib = import ./lib;
    in
    {
      inherit lib;
      legacyPackages = lib.genAttrs [ "x86_64-linux" "aarch64-linux" ] (
        system: import ./. { inherit system; }
      );
    };
}
