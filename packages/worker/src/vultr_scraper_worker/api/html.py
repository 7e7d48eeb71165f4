"""A small escaping template helper for the status page (no template engine needed).

``render(template, **values)`` fills ``str.format`` fields, HTML-escaping every value unless it is
``Markup`` (already-rendered HTML). Templates are files under ``templates/``; loops are done in
Python and joined with ``join``. Nothing reaches the page without passing through ``escape``.
"""

from __future__ import annotations

import html
import string
from collections.abc import Iterable
from functools import cache
from importlib import resources
from typing import Any


class Markup(str):
    """Text that is already safe HTML; ``render`` inserts it as is."""

    __slots__ = ()


def escape(value: object) -> Markup:
    if isinstance(value, Markup):
        return value
    return Markup(html.escape("" if value is None else str(value), quote=True))


class _EscapingFormatter(string.Formatter):
    def format_field(self, value: Any, format_spec: str) -> str:
        if isinstance(value, Markup):
            return value
        return escape(format(value, format_spec))


_formatter = _EscapingFormatter()
_PACKAGE = "vultr_scraper_worker.api"


def render(template: str, /, **values: Any) -> Markup:
    """Fill ``template``; every value is escaped unless it is ``Markup``."""
    return Markup(_formatter.vformat(template, (), values))


def join(parts: Iterable[Markup], separator: str = "\n") -> Markup:
    escaped = [escape(part) for part in parts]
    return Markup(separator.join(escaped))


@cache
def template(name: str) -> str:
    """The text of ``templates/<name>``, shipped inside the package."""
    return (resources.files(_PACKAGE) / "templates" / name).read_text(encoding="utf-8")


@cache
def static_file(name: str) -> bytes:
    return (resources.files(_PACKAGE) / "static" / name).read_bytes()
