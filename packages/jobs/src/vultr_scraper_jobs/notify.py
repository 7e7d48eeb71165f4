"""Notification sinks and the ``deliver-notification`` job (one queued job per event and sink).

Sink kinds (``[[sinks]]``):

* ``webhook``: ``POST`` of a JSON document (``delivery``, ``alert``, ``sink``, ``sent_at``,
  ``text`` and the whole ``event``), signed when ``secret_file`` is set: header
  ``X-Vultr-Scraper-Signature: sha256=<hex HMAC-SHA256 of the exact body bytes>``;
* ``slack`` / ``discord``: an incoming-webhook message (``{"text": ...}`` / ``{"content": ...}``);
  the webhook URL may come from ``secret_file`` instead of ``url`` (it is a credential);
* ``ntfy``: a plain-text ``POST`` with ``Title`` and ``Tags`` headers; ``secret_file`` holds an
  access token sent as ``Authorization: Bearer``.

Every request carries ``X-Vultr-Scraper-Delivery: <sink>:<event id>`` (stable across retries,
for receivers that deduplicate) and ``X-Vultr-Scraper-Event: <kind>``. Each job makes one
attempt; a transient failure (connection error, timeout, 429, 5xx) is raised so the worker
retries the job with backoff, a permanent one (other 4xx) fails it at once. See
``vultr_scraper_core.store.deliveries`` for the never-twice bookkeeping and its crash window.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from datetime import UTC, datetime
from typing import Any

import msgspec

from vultr_scraper_core.config import Config, Secrets, SinkConfig
from vultr_scraper_core.describe import describe_event
from vultr_scraper_core.http import HttpClient, HttpError, Response, is_transient
from vultr_scraper_core.store.changes import ChangeEvent, ChangeFeed, EventKind
from vultr_scraper_core.store.deliveries import DeliveryLedger, DeliveryRecord
from vultr_scraper_jobs.context import deps

SIGNATURE_HEADER = "X-Vultr-Scraper-Signature"
DELIVERY_HEADER = "X-Vultr-Scraper-Delivery"
EVENT_HEADER = "X-Vultr-Scraper-Event"
LEASE_MARGIN = 30.0  # seconds a claim outlives the sink's timeout
DISCORD_LIMIT = 2000
_MAX_SEQ = 2**64 - 1

_NTFY_TAGS: dict[str, str] = {
    EventKind.ENDPOINT_DOWN: "rotating_light",
    EventKind.ENDPOINT_UP: "white_check_mark",
    EventKind.PRICE_CHANGED: "moneybag",
    EventKind.STOCK_CHANGED: "package",
    EventKind.PLAN_ADDED: "new",
    EventKind.PLAN_RETIRED: "wastebasket",
    EventKind.SCHEMA_DRIFT: "warning",
}


class DeliveryBusy(HttpError):
    """Another job holds the claim on this (sink, event): try again later."""

    transient = True


def sign(secret: str, body: bytes) -> str:
    """The signature header value: ``sha256=`` + hex HMAC-SHA256 of the body."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, header: str) -> bool:
    """What a receiver does (constant-time comparison)."""
    return hmac.compare_digest(sign(secret, body), header.strip())


# -- requests -----------------------------------------------------------------------------
class Notification(msgspec.Struct, frozen=True, kw_only=True):
    url: str
    headers: dict[str, str]
    body: bytes


def sink_url(sink: SinkConfig, secrets: Secrets) -> str:
    if sink.url:
        return sink.url
    if sink.kind in ("slack", "discord") and sink.name in secrets.sink_secrets:
        return secrets.sink_secrets[sink.name]
    raise ValueError(f"sink {sink.name!r} has no url")


def render(
    sink: SinkConfig,
    secrets: Secrets,
    event: ChangeEvent,
    alert: str,
    *,
    sent_at: datetime | None = None,
) -> Notification:
    """The request for ``event`` in ``sink``'s format (pure: no I/O)."""
    delivery = f"{sink.name}:{event.id}"
    text = f"[{alert}] {describe_event(event)}"
    headers = {DELIVERY_HEADER: delivery, EVENT_HEADER: str(event.kind)}
    secret = secrets.sink_secrets.get(sink.name)
    if sink.kind == "webhook":
        document = {
            "delivery": delivery,
            "alert": alert,
            "sink": sink.name,
            "sent_at": (sent_at or datetime.now(UTC)).isoformat(),
            "text": text,
            "event": event,
        }
        body = msgspec.json.encode(document)
        headers["Content-Type"] = "application/json"
        if secret:
            headers[SIGNATURE_HEADER] = sign(secret, body)
    elif sink.kind == "slack":
        body = msgspec.json.encode({"text": text})
        headers["Content-Type"] = "application/json"
    elif sink.kind == "discord":
        content = text if len(text) <= DISCORD_LIMIT else text[: DISCORD_LIMIT - 3] + "..."
        body = msgspec.json.encode({"content": content})
        headers["Content-Type"] = "application/json"
    else:  # ntfy
        body = describe_event(event).encode()
        headers.update({"Title": f"vultr-scraper: {alert}", "Content-Type": "text/plain"})
        tag = _NTFY_TAGS.get(event.kind)  # StrEnum members hash like their values
        if tag:
            headers["Tags"] = tag
        if secret:
            headers["Authorization"] = f"Bearer {secret}"
    headers.update(sink.headers)
    return Notification(url=sink_url(sink, secrets), headers=headers, body=body)


async def send(
    http: HttpClient, sink: SinkConfig, secrets: Secrets, event: ChangeEvent, alert: str
) -> Response:
    """One attempt; raises ``HttpError`` (transient or permanent) when the sink refuses."""
    note = render(sink, secrets, event, alert)
    return await http.request(
        "POST",
        note.url,
        headers=note.headers,
        data=note.body,
        timeout=sink.timeout,
        max_attempts=1,
    )


def find_sink(config: Config, name: str) -> SinkConfig:
    for sink in config.sinks:
        if sink.name == name:
            return sink
    raise LookupError(f"unknown sink {name!r} (no longer in the configuration?)")


def _previous_id(stream_id: str) -> str:
    milliseconds, _, sequence = stream_id.partition("-")
    if int(sequence or 0) > 0:
        return f"{milliseconds}-{int(sequence) - 1}"
    return f"{int(milliseconds) - 1}-{_MAX_SEQ}"


async def load_event(feed: ChangeFeed, event_id: str) -> ChangeEvent:
    found = await feed.read(after=_previous_id(event_id), limit=1)
    if not found or found[0].id != event_id:
        raise LookupError(f"change event {event_id} not found")
    return found[0]


# -- the job ------------------------------------------------------------------------------
async def deliver_notification(
    ctx: dict[str, Any], sink_name: str, event_id: str, alert_name: str
) -> dict[str, Any]:
    """Send change event ``event_id`` to ``sink_name`` once (see the module docstring)."""
    d = deps(ctx)
    prefix = d.config.redis.key_prefix
    sink = find_sink(d.config, sink_name)
    event = await load_event(ChangeFeed(d.redis, prefix), event_id)
    ledger = DeliveryLedger(d.redis, prefix)
    token = d.job_id or uuid.uuid4().hex
    base = {"sink": sink_name, "event": event_id, "alert": alert_name}
    claim = await ledger.claim(sink_name, event_id, token, sink.timeout + LEASE_MARGIN)

    def record(outcome: str, **fields: Any) -> DeliveryRecord:
        return DeliveryRecord(
            at=datetime.now(UTC),
            sink=sink_name,
            event_id=event_id,
            alert=alert_name,
            outcome=outcome,
            attempt=d.job_try,
            **fields,
        )

    if claim == "delivered":
        await ledger.log(record("skipped"))
        return {"status": "success", **base, "delivered": False, "reason": "already delivered"}
    if claim == "busy":
        raise DeliveryBusy("another job is delivering this event", url=sink_name)
    try:
        response = await send(d.http, sink, d.secrets, event, alert_name)
    except Exception as error:
        await ledger.release(sink_name, event_id, token)
        last = not is_transient(error) or d.job_try >= d.config.worker.max_tries
        status = error.status if isinstance(error, HttpError) else None
        outcome = "failed" if last else "retrying"
        await ledger.log(record(outcome, error=str(error), http_status=status))
        raise
    await ledger.mark_delivered(
        sink_name, event_id, record("delivered", http_status=response.status)
    )
    return {"status": "success", **base, "delivered": True, "http_status": response.status}


# kind -> (event kind, fields) for ``sample_event``; ``{plan}`` and ``{region}`` are filled in.
_SAMPLES: dict[str, tuple[EventKind, dict[str, Any]]] = {
    "new_plan": (EventKind.PLAN_ADDED, {}),
    "plan_retired": (EventKind.PLAN_RETIRED, {}),
    "price_changed": (
        EventKind.PRICE_CHANGED,
        {"field": "hourly_cost", "old": "2.2", "new": "1.8"},
    ),
    "price_dropped": (
        EventKind.PRICE_CHANGED,
        {"field": "hourly_cost", "old": "2.2", "new": "1.8"},
    ),
    "price_increased": (
        EventKind.PRICE_CHANGED,
        {"field": "hourly_cost", "old": "1.8", "new": "2.2"},
    ),
    "back_in_stock": (EventKind.STOCK_CHANGED, {"field": "in_stock", "old": False, "new": True}),
    "stock_changed": (EventKind.STOCK_CHANGED, {"field": "in_stock", "old": False, "new": True}),
    "out_of_stock": (EventKind.STOCK_CHANGED, {"field": "in_stock", "old": True, "new": False}),
    "spec_changed": (EventKind.SPEC_CHANGED, {"field": "ram", "old": 6144, "new": 8192}),
    "region_added": (EventKind.REGION_ADDED, {}),
    "region_removed": (EventKind.REGION_REMOVED, {}),
    "schema_drift": (
        EventKind.SCHEMA_DRIFT,
        {"subject": "/plans", "field": "gpu_count", "old": "int", "new": "str"},
    ),
    "endpoint_down": (
        EventKind.ENDPOINT_DOWN,
        {"subject": "example", "old": "up", "new": "down", "error": "status 503 not in [200]"},
    ),
    "endpoint_up": (
        EventKind.ENDPOINT_UP,
        {"subject": "example", "old": "down", "new": "up", "downtime_s": 240.0},
    ),
}
_REGION_SCOPED = {EventKind.PRICE_CHANGED, EventKind.STOCK_CHANGED}


def sample_event(kind: str, *, plan: str | None = None, region: str | None = None) -> ChangeEvent:
    """A made-up event of an alert kind, for ``alerts test`` (id ``test-<hex>``)."""
    event_kind, fields = _SAMPLES.get(kind, _SAMPLES["back_in_stock"])
    fields = dict(fields)
    detail: dict[str, Any] = {"test": True}
    for key in ("error", "downtime_s"):
        if key in fields:
            detail[key] = fields.pop(key)
    concrete = plan and not any(char in plan for char in "*?[")
    subject = fields.pop("subject", None) or (
        (region or "fra")
        if event_kind in {EventKind.REGION_ADDED, EventKind.REGION_REMOVED}
        else (plan if concrete else "vcg-a100-1c-6g-4vram")
    )
    return ChangeEvent(
        kind=event_kind,
        at=datetime.now(UTC),
        id=f"test-{uuid.uuid4().hex[:12]}",
        subject=str(subject),
        region=(region or "fra") if event_kind in _REGION_SCOPED else None,
        detail=detail,
        **fields,
    )
