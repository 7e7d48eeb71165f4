"""vultr-scraper core: configuration, logging, HTTP policy, Vultr client, models and store.

Nothing in this package knows about arq or the CLI.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

__all__ = ["__version__"]

if TYPE_CHECKING:
    __version__: str


@cache
def _installed_version() -> str:
    # importlib.metadata costs more to import than click: every submodule import runs this
    # file, so the version is looked up only when someone asks for it (`-V`, the API).
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("vultr-scraper-core")
    except PackageNotFoundError:  # running from a source tree without installed metadata
        return "0.0.0"


def __getattr__(name: str) -> str:
    if name == "__version__":
        return _installed_version()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
