"""Sinks that are one HTTP request: ``webhook``, ``slack``, ``discord`` and ``ntfy``.

* ``webhook``: ``POST`` of a JSON document (``delivery``, ``alert``, ``sink``, ``sent_at``,
  ``reminder``, ``text`` and the whole ``event``, or a ``digest`` instead of ``event`` when
  one message stands for a storm of matches) with the Standard Webhooks headers
  (https://www.standardwebhooks.com): ``webhook-id`` (the delivery id, the same on every
  attempt) and ``webhook-timestamp`` (Unix seconds of this attempt); signed when
  ``secret_file`` is set, twice: ``webhook-signature: v1,<base64 HMAC-SHA256 of
  "<id>.<timestamp>.<body>">`` (the key: the base64 after ``whsec_``, else the secret's bytes;
  verifiable with any Standard Webhooks library) and, for receivers written before it,
  ``X-Vultr-Scraper-Signature: sha256=<hex HMAC-SHA256 of the exact body bytes>`` (the key:
  the secret file's text as it is);
* ``slack`` / ``discord``: an incoming-webhook message (``{"text": ...}`` / ``{"content": ...}``);
  the webhook URL may come from ``secret_file`` instead of ``url`` (it is a credential);
* ``ntfy``: a plain-text ``POST`` with ``Title`` and ``Tags`` headers; ``secret_file`` holds an
  access token sent as ``Authorization: Bearer``.

Every request carries ``X-Vultr-Scraper-Delivery`` (stable across retries, for receivers that
deduplicate) and ``X-Vultr-Scraper-Event: <kind>`` (``digest`` for a digest).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass

import msgspec

from vultr_scraper_core.config import SinkConfig
from vultr_scraper_core.config.secrets import webhook_signing_key
from vultr_scraper_core.formats import format_instant
from vultr_scraper_core.http import HttpClient
from vultr_scraper_core.store.changes import EventKind
from vultr_scraper_jobs.sinks.base import Receipt
from vultr_scraper_jobs.sinks.message import Message

SIGNATURE_HEADER = "X-Vultr-Scraper-Signature"
DELIVERY_HEADER = "X-Vultr-Scraper-Delivery"
EVENT_HEADER = "X-Vultr-Scraper-Event"
# Standard Webhooks (lower case, as the specification writes them)
WEBHOOK_ID_HEADER = "webhook-id"
WEBHOOK_TIMESTAMP_HEADER = "webhook-timestamp"
WEBHOOK_SIGNATURE_HEADER = "webhook-signature"
DISCORD_LIMIT = 2000

_NTFY_TAGS: dict[str, str] = {
    EventKind.ENDPOINT_DOWN: "rotating_light",
    EventKind.ENDPOINT_UP: "white_check_mark",
    EventKind.PRICE_CHANGED: "moneybag",
    EventKind.STOCK_CHANGED: "package",
    EventKind.PLAN_ADDED: "new",
    EventKind.PLAN_RETIRED: "wastebasket",
    EventKind.SCHEMA_DRIFT: "warning",
    EventKind.CATALOG_STALE: "hourglass",
    EventKind.CATALOG_FRESH: "white_check_mark",
    EventKind.CATALOG_QUARANTINED: "warning",
    EventKind.QUARANTINE_CLEARED: "white_check_mark",
    "digest": "warning",
}


def sign(secret: str, body: bytes) -> str:
    """The signature header value: ``sha256=`` + hex HMAC-SHA256 of the body."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, header: str) -> bool:
    """What a receiver does (constant-time comparison)."""
    return hmac.compare_digest(sign(secret, body), header.strip())


def sign_standard(secret: str, webhook_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value: ``v1,`` + base64 HMAC-SHA256 of ``id.timestamp.body``."""
    signed = f"{webhook_id}.{timestamp}.".encode() + body
    digest = hmac.new(webhook_signing_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


class Notification(msgspec.Struct, frozen=True, kw_only=True):
    url: str
    headers: dict[str, str]
    body: bytes


def render(sink: SinkConfig, secret: str | None, message: Message) -> Notification:
    """The request for ``message`` in ``sink``'s format (pure: no I/O)."""
    headers = {DELIVERY_HEADER: message.delivery, EVENT_HEADER: message.kind}
    if sink.kind == "webhook":
        document: dict[str, object] = {
            "delivery": message.delivery,
            "alert": message.alert,
            "sink": message.sink,
            "sent_at": format_instant(message.sent_at),
            "reminder": message.reminder,
            "text": message.summary,
        }
        if message.digest is not None:
            document["digest"] = message.digest
        else:
            document["event"] = message.event
        body = msgspec.json.encode(document)
        timestamp = int(message.sent_at.timestamp())
        headers["Content-Type"] = "application/json"
        headers[WEBHOOK_ID_HEADER] = message.delivery
        headers[WEBHOOK_TIMESTAMP_HEADER] = str(timestamp)
        if secret:
            headers[WEBHOOK_SIGNATURE_HEADER] = sign_standard(
                secret, message.delivery, timestamp, body
            )
            headers[SIGNATURE_HEADER] = sign(secret, body)
    elif sink.kind == "slack":
        body = msgspec.json.encode({"text": message.summary})
        headers["Content-Type"] = "application/json"
    elif sink.kind == "discord":
        text = message.summary
        content = text if len(text) <= DISCORD_LIMIT else text[: DISCORD_LIMIT - 3] + "..."
        body = msgspec.json.encode({"content": content})
        headers["Content-Type"] = "application/json"
    else:  # ntfy
        reminder = "reminder: " if message.reminder else ""
        body = f"{reminder}{message.line}".encode()
        headers.update({"Title": f"vultr-scraper: {message.alert}", "Content-Type": "text/plain"})
        tag = _NTFY_TAGS.get(message.kind)
        if tag:
            headers["Tags"] = tag
        if secret:
            headers["Authorization"] = f"Bearer {secret}"
    headers.update(sink.headers)
    url = sink.url or (secret if sink.kind in ("slack", "discord") else None)
    if not url:
        raise ValueError(f"sink {sink.name!r} has no url")
    return Notification(url=url, headers=headers, body=body)


@dataclass(frozen=True)
class WebSink:
    config: SinkConfig
    secret: str | None
    http: HttpClient

    @property
    def name(self) -> str:
        return self.config.name

    async def send(self, message: Message) -> Receipt:
        note = render(self.config, self.secret, message)
        response = await self.http.request(
            "POST",
            note.url,
            headers=note.headers,
            data=note.body,
            timeout=self.config.timeout,
            max_attempts=1,
        )
        return Receipt(status=response.status)
