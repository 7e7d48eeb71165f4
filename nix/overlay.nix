# overlays.default: adds arq and the project's distributions to every Python package set
# (pythonPackagesExtensions) and the application `vultr-scraper` at the top level.
final: prev: {
  pythonPackagesExtensions = prev.pythonPackagesExtensions ++ [
    (import ./python-packages.nix { pkgs = final; })
  ];

  # The CLI / worker as an application: its own Python environment, `redis-server` on PATH.
  vultr-scraper = final.python3Packages.toPythonApplication final.python3Packages.vultr-scraper-worker;
}
