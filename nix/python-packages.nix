# Python package set extension: arq (absent from nixpkgs) and the three project distributions.
# Attribute names equal the normalised distribution names (tests/nix/deps-consistency.nix relies
# on that). `pkgs` is the top-level package set, for the Redis server used by the tests and the
# CLI.
{ pkgs }:
pyFinal: _pyPrev: {
  arq = pyFinal.callPackage ./arq.nix { };
  vultr-scraper-core = pyFinal.callPackage ./vultr-scraper-core.nix { redis-server = pkgs.redis; };
  vultr-scraper-jobs = pyFinal.callPackage ./vultr-scraper-jobs.nix { redis-server = pkgs.redis; };
  vultr-scraper-worker = pyFinal.callPackage ./vultr-scraper-worker.nix {
    redis-server = pkgs.redis;
  };
}
