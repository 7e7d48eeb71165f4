"""Jinja2 for every page: templates under ``templates/`` inherit ``layout.html`` and use the
macros of ``macros.html`` (tables, times, badges, charts). Autoescape is on for every
template, so external text (plan ids, error messages, event values) is always escaped; only
``Markup`` (the SVG charts of ``charts``, macro output) is inserted as is.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from functools import cache
from importlib import resources
from typing import Any

import jinja2
from aiohttp import web
from markupsafe import Markup, escape

from vultr_scraper_core import __version__
from vultr_scraper_core.formats import format_time, from_unix
from vultr_scraper_worker.api import charts

HTML = "text/html"
_PACKAGE = "vultr_scraper_worker.api"


def ago(moment: datetime, now: datetime) -> str:
    """``3 min ago`` / ``in 12 min``: coarse, for people."""
    seconds = (now - moment).total_seconds()
    future = seconds < 0
    seconds = abs(seconds)
    if seconds < 60:
        amount = f"{int(seconds)} s"
    elif seconds < 3600:
        amount = f"{int(seconds // 60)} min"
    elif seconds < 48 * 3600:
        amount = f"{seconds / 3600:.1f} h"
    else:
        amount = f"{int(seconds // 86400)} days"
    return f"in {amount}" if future else f"{amount} ago"


def duration(seconds: float | None) -> str:
    """``45 min``, ``6.5 h``, ``12 days``; ``-`` when unknown."""
    if seconds is None:
        return "-"
    if seconds < 3600:
        return f"{int(seconds // 60)} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def percent(share: float | None) -> str:
    return "-" if share is None else f"{share * 100:.1f} %"


def money(value: Decimal | str | None) -> str:
    if value is None or value == "":
        return "-"
    return f"${Decimal(value):,.2f}" if Decimal(value) >= 1 else f"${Decimal(value)}"


def utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def table_rows(
    headers: Sequence[str], rows: Iterable[Sequence[Any]], classes: Sequence[str] = ()
) -> Markup:
    """The ``<tr>`` rows of a table as ``macros.html``'s ``td`` renders each cell (same
    markup, same escaping), built in Python: a macro call per cell costs about 20 µs, and a
    region page has some 1,200 cells. ``classes``: each column's class (default: the first
    column none, the others ``num``, as ``chart`` shows its numbers)."""
    starts = [
        f'<td class="{escape(classes[n] if n < len(classes) else ("num" if n else ""))}" '
        f'data-label="{escape(header)}"><div>'
        for n, header in enumerate(headers)
    ]
    parts: list[str] = []
    for row in rows:
        parts.append("<tr>")
        for n, cell in enumerate(row):
            parts.extend((starts[n], escape(cell), "</div></td>"))
        parts.append("</tr>")
    return Markup("".join(parts))


@cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader(_PACKAGE, "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        unix=from_unix,
        ago=ago,
        duration=duration,
        percent=percent,
        money=money,
        utc=utc,
        iso=format_time,
    )
    env.globals.update(charts=charts, version=__version__, table_rows=table_rows)
    return env


def render(name: str, /, **context: Any) -> str:
    return environment().get_template(name).render(**context)


def page(
    request: web.Request,
    name: str,
    *,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
    **context: Any,
) -> web.Response:
    """Render ``templates/<name>`` (which extends the layout) as a response."""
    from vultr_scraper_worker.api.state import state_of  # the state imports auth, not pages

    auth = state_of(request).auth
    session = "none"
    if auth.configured:
        session = "in" if auth.session_valid(request) else "out"
    now = datetime.now(UTC)
    context.setdefault("now", now)
    text = render(name, session=session, rendered_at=now, path=request.path, **context)
    return web.Response(
        text=text, status=status, content_type=HTML, charset="utf-8", headers=headers
    )


@cache
def static_file(name: str) -> bytes:
    return (resources.files(_PACKAGE) / "static" / name).read_bytes()
