"""The ``deliver-notification`` job: one queued job per (event, sink), or per reminder.

The sink kinds and what each sends are in ``vultr_scraper_jobs.sinks``; this module owns the
one retry policy they share. Each job makes **one attempt**:

* delivered: the ledger marks it so (never sent twice, see
  ``vultr_scraper_core.store.deliveries`` for the bookkeeping and its crash window);
* a transient failure (a timeout, 429, 5xx, an SMTP 4xx, and here also a receiver that
  refuses connections or whose name does not resolve: ``worth_retrying``): the delivery is
  *pending*. Its state (first failure, failed attempts, next attempt, last error) is written to
  Redis and the next attempt is queued as a new job, deferred by capped exponential backoff
  with jitter (``[deliveries] backoff_base`` / ``backoff_cap``, at least the receiver's
  ``Retry-After``). The job itself succeeds: it did what it could. Nothing lives in the
  worker's memory, so a restart between attempts loses nothing, and a timed-out attempt is
  followed by the next one only after its backoff, never at once;
* a permanent failure (other 4xx, an SMTP 5xx), or a transient one once ``[deliveries]
  horizon`` has passed since the first failure: the delivery is failed. The job raises
  (``DeliveryExpired`` past the horizon), so the worker records a failed job (``jobs``, the
  API, the status page) that ``retry`` runs again, with a new horizon.

The next attempt's job id is ``deliver:<sink>:<key>:attempt-<n>-<round start in ms>``: a rerun
of the same attempt (its job retried after a crash before the pending state was written) queues
the same id, which arq drops; a rerun after that write queues a second chain, which can only
add attempts, never a second delivery (the ledger's claim and ``delivered`` mark decide).

Every attempt of a delivery carries the same id (``<sink>:<event id>``; ``webhook-id`` for
webhooks) so a receiver can drop a copy. A reminder (``reminder`` > 0) is its own delivery
(``<sink>:<event id>:reminder-<n>``), and so is a digest (``deliver-digest``,
``<sink>:digest-<first event id>``, see ``storm``).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import msgspec
from loguru import logger

from vultr_scraper_core.config import Config, Secrets, SinkConfig
from vultr_scraper_core.describe import duration
from vultr_scraper_core.http import (
    Backoff,
    HttpClient,
    HttpError,
    UnreachableHttpError,
    is_transient,
    retry_after_of,
)
from vultr_scraper_core.store.changes import ChangeEvent, ChangeFeed, EventKind
from vultr_scraper_core.store.deliveries import DeliveryLedger, DeliveryRecord, PendingDelivery
from vultr_scraper_jobs.context import JobDeps, deps
from vultr_scraper_jobs.sinks import Message, Receipt, build_sink, compose
from vultr_scraper_jobs.sinks.message import Digest, compose_digest
from vultr_scraper_jobs.sinks.web import DELIVERY_HEADER, EVENT_HEADER, SIGNATURE_HEADER, verify
from vultr_scraper_jobs.storm import (
    DELIVER_JOB,
    DIGEST_JOB,
    DigestRequest,
    delivery_job_id,
    feed_link,
)

__all__ = ["DELIVERY_HEADER", "EVENT_HEADER", "SIGNATURE_HEADER", "verify"]

LEASE_MARGIN = 30.0  # seconds a claim outlives the sink's timeout
_ERROR_TEXT = 300  # characters of a sink's error kept in records and log lines
_MAX_SEQ = 2**64 - 1


class DeliveryBusy(HttpError):
    """Another job holds the claim on this (sink, event): try again later."""

    transient = True


class DeliveryExpired(Exception):
    """Transient failures went on past ``deliveries.horizon``: the delivery failed for good
    (a permanent error, so the worker records it as a failed job instead of retrying)."""


@dataclass(frozen=True)
class NextAttempt:
    """The job (and its arguments) that makes a delivery's next attempt."""

    job: str
    args: tuple[Any, ...]


async def send(
    http: HttpClient,
    sink: SinkConfig,
    secrets: Secrets,
    event: ChangeEvent,
    alert: str,
    *,
    reminder: int = 0,
) -> Receipt:
    """One attempt; raises ``HttpError`` (transient or permanent) when the sink refuses."""
    message = compose(event, alert=alert, sink=sink.name, reminder=reminder)
    return await build_sink(sink, secrets, http).send(message)


def ledger_id(event_id: str, reminder: int = 0) -> str:
    """What the delivery ledger and the job id know a delivery by, after the sink's name."""
    return f"{event_id}:reminder-{reminder}" if reminder else event_id


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


# -- the jobs -----------------------------------------------------------------------------
async def deliver_notification(
    ctx: dict[str, Any], sink_name: str, event_id: str, alert_name: str, reminder: int = 0
) -> dict[str, Any]:
    """Send change event ``event_id`` (or its ``reminder``-th reminder) to ``sink_name`` once
    (see the module docstring)."""
    d = deps(ctx)
    sink = find_sink(d.config, sink_name)
    event = await load_event(ChangeFeed(d.redis, d.config.redis.key_prefix), event_id)
    base: dict[str, Any] = {"sink": sink_name, "event": event_id, "alert": alert_name}
    if reminder:
        base["reminder"] = reminder
    message = compose(event, alert=alert_name, sink=sink.name, reminder=reminder)
    again = NextAttempt(DELIVER_JOB, (sink_name, event_id, alert_name, reminder))
    return await _deliver_once(d, sink, ledger_id(event_id, reminder), message, base, again)


async def deliver_digest(ctx: dict[str, Any], sink_name: str, request: Any) -> dict[str, Any]:
    """Send one digest for a storm of matches to ``sink_name`` once (see ``storm``)."""
    d = deps(ctx)
    wanted = msgspec.convert(request, DigestRequest)
    sink = find_sink(d.config, sink_name)
    feed = ChangeFeed(d.redis, d.config.redis.key_prefix)
    digest = Digest(
        total=wanted.total,
        counts=wanted.counts,
        items=[await load_event(feed, event_id) for event_id in wanted.items],
        after=wanted.after,
        until=wanted.until,
        link=feed_link(d.config, wanted.after),
    )
    alert = ", ".join(wanted.alerts)
    message = compose_digest(digest, alert=alert, sink=sink.name, key=wanted.key)
    base: dict[str, Any] = {"sink": sink_name, "digest": wanted.key, "alert": alert}
    again = NextAttempt(DIGEST_JOB, (sink_name, request))
    return await _deliver_once(
        d, sink, wanted.key, message, {**base, "events": wanted.total}, again
    )


async def _deliver_once(
    d: JobDeps,
    sink: SinkConfig,
    key: str,
    message: Message,
    base: dict[str, Any],
    again: NextAttempt,
) -> dict[str, Any]:
    """Claim ``key`` for ``sink`` in the ledger, send ``message``, record the outcome; on a
    transient failure queue ``again`` for the next attempt (see the module docstring)."""
    ledger = DeliveryLedger(d.redis, d.config.redis.key_prefix)
    token = d.job_id or uuid.uuid4().hex
    claim = await ledger.claim(sink.name, key, token, sink.timeout + LEASE_MARGIN)
    if claim == "busy":
        raise DeliveryBusy("another job is delivering this event", url=sink.name)
    pending = await ledger.pending_of(sink.name, key) if claim == "claimed" else None
    attempt = (pending.attempts if pending else 0) + 1

    def record(outcome: str, **fields: Any) -> DeliveryRecord:
        return DeliveryRecord(
            at=datetime.now(UTC),
            sink=sink.name,
            event_id=key,
            alert=message.alert,
            outcome=outcome,
            attempt=attempt,
            **fields,
        )

    if claim == "delivered":
        await ledger.log(record("skipped"))
        return {"status": "success", **base, "delivered": False, "reason": "already delivered"}
    try:
        receipt = await build_sink(sink, d.secrets, d.http).send(message)
    except Exception as error:
        try:
            later = await _after_failure(d, ledger, sink, key, message, error, pending, again)
        finally:
            await ledger.release(sink.name, key, token)
        if later is None:
            raise
        return {"status": "success", **base, "delivered": False, **later}
    await ledger.mark_delivered(sink.name, key, record("delivered", http_status=receipt.status))
    return {"status": "success", **base, "delivered": True, "http_status": receipt.status}


async def _after_failure(
    d: JobDeps,
    ledger: DeliveryLedger,
    sink: SinkConfig,
    key: str,
    message: Message,
    error: Exception,
    pending: PendingDelivery | None,
    again: NextAttempt,
) -> dict[str, Any] | None:
    """Queue the next attempt of a transient failure within the horizon and return what the
    job reports; else record the delivery as failed and return None (the caller raises, so
    the worker records a failed job that ``retry`` can run again). Raises ``DeliveryExpired``
    instead of a transient error past the horizon, so the worker does not retry it itself."""
    now = time.time()
    since = pending.since if pending else now
    attempts = (pending.attempts if pending else 0) + 1
    status = error.status if isinstance(error, HttpError) else None
    text = _describe(error)
    settings = d.config.deliveries
    left = since + settings.horizon - now
    fields: dict[str, Any] = {
        "at": datetime.now(UTC),
        "sink": sink.name,
        "event_id": key,
        "alert": message.alert,
        "attempt": attempts,
        "error": text,
        "http_status": status,
    }
    log = logger.bind(
        sink=sink.name, delivery=message.delivery, attempt=attempts, error=text, http_status=status
    )
    if worth_retrying(error) and left > 0:
        backoff = Backoff(
            base=settings.backoff_base,
            cap=settings.backoff_cap,
            retry_after_cap=settings.backoff_cap,
        )
        delay = min(backoff.delay(attempts, retry_after_of(error)), left)
        # Unique per round (a failed delivery that is retried by hand starts a new round) and
        # the same when this attempt's job runs again after a crash, so arq drops the copy.
        next_job = f"{delivery_job_id(sink.name, key)}:attempt-{attempts + 1}-{int(since * 1000)}"
        await d.enqueue(again.job, *again.args, job_id=next_job, defer_by=delay)
        state = PendingDelivery(
            sink=sink.name,
            event_id=key,
            alert=message.alert,
            since=since,
            attempts=attempts,
            next_at=now + delay,
            next_job=next_job,
            error=text,
            http_status=status,
        )
        await ledger.set_pending(
            state, DeliveryRecord(outcome="retrying", retry_in=round(delay, 3), **fields)
        )
        log.bind(retry_in=round(delay, 3), next_job=next_job).warning(
            "delivery {} failed (attempt {}): {}; next attempt in {:.1f} s",
            message.delivery,
            attempts,
            text,
            delay,
        )
        return {"attempt": attempts, "retry_in": round(delay, 3), "next_job": next_job}
    await ledger.give_up(sink.name, key, DeliveryRecord(outcome="failed", **fields))
    if worth_retrying(error):
        raise DeliveryExpired(
            f"gave up on delivery {message.delivery} after {attempts} attempts over "
            f"{duration(now - since)} (deliveries.horizon): {text}"
        ) from error
    return None


def worth_retrying(error: BaseException) -> bool:
    """Transient errors, and a receiver that cannot be reached at all (connection refused, a
    name that does not resolve): for a scrape that is a wrong address, failing at once; for a
    sink it is often a receiver being restarted, and the alert must not be lost."""
    return is_transient(error) or isinstance(error, UnreachableHttpError)


def _describe(error: BaseException) -> str:
    text = str(error) or type(error).__name__
    return text if len(text) <= _ERROR_TEXT else text[: _ERROR_TEXT - 1] + "…"


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
    "catalog_stale": (
        EventKind.CATALOG_STALE,
        {"subject": "catalog", "reason": "the last good scrape was 2.0 h ago"},
    ),
    "catalog_fresh": (EventKind.CATALOG_FRESH, {"subject": "catalog", "stale_s": 7200.0}),
    "catalog_quarantined": (
        EventKind.CATALOG_QUARANTINED,
        {"subject": "catalog", "reason": "plans: count fell from 120 to 60 (-50.0%)"},
    ),
    "quarantine_cleared": (
        EventKind.QUARANTINE_CLEARED,
        {"subject": "catalog", "quarantined_s": 1800.0},
    ),
}
_REGION_SCOPED = {EventKind.PRICE_CHANGED, EventKind.STOCK_CHANGED}


def sample_event(kind: str, *, plan: str | None = None, region: str | None = None) -> ChangeEvent:
    """A made-up event of an alert kind, for ``alerts test`` (id ``test-<hex>``)."""
    event_kind, fields = _SAMPLES.get(kind, _SAMPLES["back_in_stock"])
    fields = dict(fields)
    detail: dict[str, Any] = {"test": True}
    for key in ("error", "downtime_s", "reason", "stale_s", "quarantined_s"):
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
