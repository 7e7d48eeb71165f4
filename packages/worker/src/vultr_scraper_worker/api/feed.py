"""``/feed.atom``: the change feed as an Atom 1.0 document (RFC 4287), newest first.

Built with ElementTree, which escapes every text and attribute value. Entry ids are stable
``urn:uuid:`` values derived from the event's stream id, so feed readers never show an event
twice; ``kind`` narrows the feed (``/feed.atom?kind=price_changed&kind=stock_changed``).
"""

from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from vultr_scraper_core.describe import describe_event
from vultr_scraper_core.formats import format_time
from vultr_scraper_core.store.changes import ChangeEvent, EventKind
from vultr_scraper_core.text import mask_urls
from vultr_scraper_worker.api import reads_catalog
from vultr_scraper_worker.api.params import choice, integer
from vultr_scraper_worker.api.routing import Response, Route
from vultr_scraper_worker.api.state import state_of

ATOM = "http://www.w3.org/2005/Atom"
ATOM_TYPE = "application/atom+xml"
_NAMESPACE = uuid.UUID("6f1d8a8e-3f0b-5a8e-9d53-7a1c2b3e4f50")


def entry_id(event: ChangeEvent) -> str:
    return f"urn:uuid:{uuid.uuid5(_NAMESPACE, f'vultr-scraper change {event.id}')}"


def _value(value: Any) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{key}: {_value(item)}" for key, item in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_value(item) for item in value) + "]"
    return "none" if value is None else str(value)


def title(event: ChangeEvent) -> str:
    """The entry title: the event in words (``describe_event``), as alerts and the page say it,
    with the password of any URL it quotes masked (as in ``content``)."""
    return mask_urls(describe_event(event))


def content(event: ChangeEvent) -> str:
    lines = [f"{event.kind} at {format_time(event.at)}", f"subject: {event.subject}"]
    if event.region:
        lines.append(f"region: {event.region}")
    if event.field:
        lines.append(f"field: {event.field}")
    if event.old is not None or event.new is not None:
        lines.append(f"old: {_value(event.old)}")
        lines.append(f"new: {_value(event.new)}")
    for key, item in sorted((event.detail or {}).items()):
        lines.append(f"{key}: {_value(item)}")
    lines.append(f"event id: {event.id}")
    # Masked when shown: an endpoint's error stored before errors were masked may quote a URL
    # with its password, and a feed is read by anyone it is shared with.
    return mask_urls("\n".join(lines))


def feed_id(kinds: list[str]) -> str:
    """The feed's ``<id>``: the whole feed has one, each filtered feed (its set of kinds) its
    own, so a reader never takes a filtered subscription for the full one."""
    name = "vultr-scraper change feed"
    if kinds:
        name += " of kinds " + ",".join(sorted(set(kinds)))
    return f"urn:uuid:{uuid.uuid5(_NAMESPACE, name)}"


def render_feed(
    events: list[ChangeEvent], *, self_url: str, site_url: str, kinds: list[str] | None = None
) -> bytes:
    ET.register_namespace("", ATOM)

    def sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
        element = ET.SubElement(parent, f"{{{ATOM}}}{tag}", attrs)
        if text is not None:
            element.text = text
        return element

    root = ET.Element(f"{{{ATOM}}}feed")
    sub(root, "id", feed_id(kinds or []))
    shown = f" ({', '.join(sorted(set(kinds)))})" if kinds else ""
    sub(root, "title", f"vultr-scraper: Vultr catalogue and endpoint changes{shown}")
    newest = max((event.at for event in events), default=None)
    sub(root, "updated", format_time(newest or datetime.now(UTC)))
    sub(root, "link", rel="self", href=self_url, type=ATOM_TYPE)
    sub(root, "link", rel="alternate", href=site_url, type="text/html")
    sub(root, "generator", "vultr-scraper")
    author = sub(root, "author")
    sub(author, "name", "vultr-scraper")
    for event in events:
        entry = sub(root, "entry")
        sub(entry, "id", entry_id(event))
        sub(entry, "title", title(event))
        sub(entry, "updated", format_time(event.at))
        sub(entry, "category", term=str(event.kind))
        sub(
            entry,
            "link",
            rel="alternate",
            href=f"{site_url}api/v1/changes?after={_before(event.id)}&limit=1",
        )
        sub(entry, "content", content(event), type="text")
    document: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return document


def _before(event_id: str) -> str:
    """The cursor just before ``event_id`` (``after`` is exclusive)."""
    ms, _, seq = event_id.partition("-")
    if seq and int(seq) > 0:
        return f"{ms}-{int(seq) - 1}"
    return f"{int(ms) - 1}-9999999999999999999" if ms and int(ms) > 0 else "0-0"


async def atom_feed(request: web.Request, args: dict[str, Any]) -> web.StreamResponse:
    state = state_of(request)
    events = await reads_catalog.latest_changes(state, args["limit"], args["kind"])
    site = f"{request.scheme}://{request.host}/"
    # Built from the parts: request.url trips over the port on older aiohttp/yarl.
    self_url = f"{request.scheme}://{request.host}{request.rel_url}"
    body = render_feed(events, self_url=self_url, site_url=site, kinds=args["kind"])
    return web.Response(body=body, content_type=ATOM_TYPE, charset="utf-8")


ROUTES = [
    Route(
        "GET",
        "/feed.atom",
        atom_feed,
        operation_id="getAtomFeed",
        summary="The change feed as Atom, newest first",
        tag="changes",
        params=(
            choice(
                "kind",
                "Only events of these kinds (repeatable)",
                [str(k) for k in EventKind],
                repeated=True,
            ),
            integer("limit", "How many entries", minimum=1, maximum=500, default=50),
        ),
        responses={200: Response("Atom 1.0 feed", media_type=ATOM_TYPE, schema={"type": "string"})},
    )
]
