"""What one notification says, composed once and rendered by every sink in its own format.

A ``Message`` carries the one-line summary (``[alert] what happened``), a plain-text body and an
HTML body with the same facts, the stable delivery id, and the event itself. A *digest* (one
``Message`` standing for a storm of matches, see ``vultr_scraper_jobs.storm``) carries a
``Digest`` too; its ``event`` is the first event it stands for. Every piece of
external text (plan ids, endpoint errors, URLs, region names) is escaped in the HTML body;
the plain-text body is plain text.
"""

from __future__ import annotations

import html
from datetime import UTC, datetime
from typing import Any, Literal

import msgspec

from vultr_scraper_core.describe import describe_event, describe_ongoing, duration
from vultr_scraper_core.store.changes import ChangeEvent, EventKind

Severity = Literal["info", "success", "warning", "failure"]

_SEVERITY: dict[str, Severity] = {
    EventKind.ENDPOINT_DOWN: "failure",
    EventKind.CATALOG_STALE: "failure",
    EventKind.CATALOG_QUARANTINED: "warning",
    EventKind.SCHEMA_DRIFT: "warning",
    EventKind.ENDPOINT_UP: "success",
    EventKind.CATALOG_FRESH: "success",
    EventKind.QUARANTINE_CLEARED: "success",
}
_COLOURS: dict[Severity, str] = {
    "info": "#1f6feb",
    "success": "#1a7f37",
    "warning": "#9a6700",
    "failure": "#cf222e",
}
_DETAIL_LABELS = {
    "url": "URL",
    "error": "Error",
    "reason": "Reason",
    "status": "HTTP status",
    "latency_ms": "Latency (ms)",
    "last_success_at": "Last good scrape",
    "down_since": "Down since",
}


class Digest(msgspec.Struct, frozen=True, kw_only=True):
    """Many matches for one sink in one dispatch run, told once."""

    total: int  # events the sink would have been sent one by one
    counts: dict[str, int]  # event kind -> how many of them
    items: list[ChangeEvent]  # the first few, oldest first
    after: str  # the feed cursor just before the first of them
    until: str  # the id of the last event the run read
    link: str | None = None  # where to read them all (the change feed from ``after``)


class Message(msgspec.Struct, frozen=True, kw_only=True):
    delivery: str  # "<sink>:<event id>", plus ":reminder-<n>" for the n-th reminder
    alert: str
    sink: str
    event: ChangeEvent
    reminder: int  # 0: the event itself; n: the n-th reminder of the condition it opened
    sent_at: datetime
    line: str  # what happened, in one line
    summary: str  # "[alert] line": a chat message, a mail subject
    severity: Severity
    text: str  # plain-text body
    html: str  # HTML body (a whole document)
    digest: Digest | None = None

    @property
    def kind(self) -> str:
        """What the message is about: the event's kind, or ``digest``."""
        return "digest" if self.digest is not None else str(self.event.kind)


def delivery_id(sink: str, event_id: str, reminder: int = 0) -> str:
    return f"{sink}:{event_id}" + (f":reminder-{reminder}" if reminder else "")


def compose(
    event: ChangeEvent,
    *,
    alert: str,
    sink: str,
    reminder: int = 0,
    now: datetime | None = None,
) -> Message:
    """The message about ``event`` (or its ``reminder``-th reminder) for ``alert`` via ``sink``."""
    sent_at = now or datetime.now(UTC)
    elapsed = max(0.0, (sent_at - event.at).total_seconds())
    line = describe_ongoing(event, elapsed) if reminder else describe_event(event)
    summary = f"[{alert}] {'reminder: ' if reminder else ''}{line}"
    delivery = delivery_id(sink, event.id, reminder)
    facts = _facts(event, reminder, elapsed)
    severity = _SEVERITY.get(event.kind, "info")
    footer = f"vultr-scraper, alert {alert}, delivery {delivery}"
    text = "\n".join(
        [summary, "", *(f"{label}: {value}" for label, value in facts), "", "-- ", footer]
    )
    return Message(
        delivery=delivery,
        alert=alert,
        sink=sink,
        event=event,
        reminder=reminder,
        sent_at=sent_at,
        line=line,
        summary=summary,
        severity=severity,
        text=text + "\n",
        html=_html(summary, facts, footer, _COLOURS[severity]),
    )


def compose_digest(
    digest: Digest, *, alert: str, sink: str, key: str, now: datetime | None = None
) -> Message:
    """The one message that stands for ``digest.total`` matches (``key``: its ledger id)."""
    counts = ", ".join(
        f"{count} {kind}" for kind, count in sorted(digest.counts.items(), key=_by_count)
    )
    plural = "" if digest.total == 1 else "s"
    line = f"{digest.total} matching event{plural} in one run ({counts})"
    summary = f"[{alert}] {line}"
    facts = [(f"Events: {kind}", str(count)) for kind, count in sorted(digest.counts.items())]
    facts.extend((_when(event.at), describe_event(event)) for event in digest.items)
    more = digest.total - len(digest.items)
    if more > 0:
        facts.append(("", f"... and {more} more"))
    if digest.link:
        facts.append(("All of them", digest.link))
    facts.append(("Or run", f"vultr-scraper changes --after {digest.after}"))
    delivery = delivery_id(sink, key)
    footer = f"vultr-scraper, alert {alert}, delivery {delivery}"
    lines = [f"{label}: {value}" if label else value for label, value in facts]
    text = "\n".join([summary, "", *lines, "", "-- ", footer])
    return Message(
        delivery=delivery,
        alert=alert,
        sink=sink,
        event=digest.items[0],
        reminder=0,
        sent_at=now or datetime.now(UTC),
        line=line,
        summary=summary,
        severity="warning",
        text=text + "\n",
        html=_html(summary, facts, footer, _COLOURS["warning"]),
        digest=digest,
    )


def _by_count(item: tuple[str, int]) -> tuple[int, str]:
    return -item[1], item[0]


def _facts(event: ChangeEvent, reminder: int, elapsed: float) -> list[tuple[str, str]]:
    facts = [("Event", str(event.kind)), ("Subject", event.subject)]
    if event.region:
        facts.append(("Region", event.region))
    if event.field:
        facts.append(("Field", event.field))
    if _scalar(event.old) or _scalar(event.new):
        facts.extend([("Before", _shown(event.old)), ("After", _shown(event.new))])
    facts.append(("Observed", _when(event.at)))
    if reminder:
        facts.append(("Reminder", f"{reminder} (for {duration(elapsed)})"))
    for key, label in _DETAIL_LABELS.items():
        value = event.detail.get(key)
        if value not in (None, "", [], {}):
            facts.append((label, _shown(value)))
    return facts


def _scalar(value: Any) -> bool:
    return value is not None and not isinstance(value, dict | list)


def _shown(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict | list):
        text = msgspec.json.encode(value).decode()
        return text if len(text) <= 200 else text[:197] + "..."
    return "none" if value is None else str(value)


def _when(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _html(summary: str, facts: list[tuple[str, str]], footer: str, colour: str) -> str:
    """A small table that mail clients render without CSS support (inline styles only)."""
    cell = "padding:2px 12px 2px 0;vertical-align:top"
    rows = "".join(
        f'<tr><th align="left" style="{cell};color:#57606a;font-weight:normal">'
        f'{html.escape(label)}</th><td style="{cell}">{html.escape(value)}</td></tr>'
        for label, value in facts
    )
    return (
        '<!DOCTYPE html><html><head><meta charset="utf-8"></head>'
        '<body style="font-family:sans-serif;font-size:14px;color:#1f2328">'
        f'<p style="font-size:16px;border-left:4px solid {colour};padding-left:8px">'
        f"<strong>{html.escape(summary)}</strong></p>"
        f'<table style="border-collapse:collapse">{rows}</table>'
        f'<p style="color:#57606a;font-size:12px">{html.escape(footer)}</p>'
        "</body></html>"
    )
