"""vultr-scraper core: configuration, logging, HTTP policy, Vultr client, models and store.

Nothing in this package knows about arq or the CLI.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("vultr-scraper-core")
except PackageNotFoundError:  # running from a source tree without installed metadata
    __version__ = "0.0.0"

__all__ = ["__version__"]
