"""Notification bookkeeping: which (sink, event) pairs were delivered, recent outcomes, and the
alert dispatcher's cursor into the change feed.

Keys (``P`` is ``config.redis.key_prefix``):

* ``P:alerts:cursor``                STRING  id of the last change event the dispatcher handled
* ``P:delivery:SINK:EVENT``          STRING  ``sending:<token>`` (with a lease) or ``delivered``
* ``P:deliveries``                   LIST    msgpack ``DeliveryRecord``, newest first, capped
* ``P:deliveries:pending``           HASH    ``SINK:EVENT`` -> msgpack ``PendingDelivery``: a
                                             delivery that failed and will be tried again

Exactly-once is impossible over HTTP; the choice here is *at least once, never lost, duplicates
only in a crash window one Redis round trip wide*:

1. ``claim`` sets ``sending:<token>`` only if the key is absent (``SET NX`` semantics, in a
   script so the same token can take its own claim again). ``delivered`` means done: skip.
2. The notification is sent.
3. ``mark_delivered`` overwrites the key with ``delivered`` (kept ``DELIVERED_TTL``).

A crash before 2 or during 2 leaves the lease; the job's next try (same job id = same token)
takes it over and sends: nothing is lost. A crash between a successful 2 and 3 sends the same
notification again on the next try: that is the one duplicate window, and every request carries
a stable delivery id (``SINK:EVENT``) so a receiver can drop it. Marking *before* sending would
close that window but lose the notification for good on a crash, which is worse for an alert.
A failed send releases the claim so a later try starts clean.

A delivery that fails transiently is *pending* until it is delivered or given up: its record
(first failure, failed attempts, when the next one is due, the last error) lives in Redis, so
it survives worker restarts, and the next attempt is a queued job (see
``vultr_scraper_jobs.notify``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import msgspec
from redis.asyncio import Redis

DELIVERED_TTL = 90 * 24 * 3600  # seconds a delivered marker is kept (the cursor never goes back)
RECENT_DELIVERIES = 1000

ClaimOutcome = Literal["claimed", "delivered", "busy"]

# KEYS[1] marker; ARGV[1] token; ARGV[2] lease in ms.
_CLAIM = """
local current = redis.call('GET', KEYS[1])
local mine = 'sending:' .. ARGV[1]
if not current or current == mine then
    redis.call('SET', KEYS[1], mine, 'PX', ARGV[2])
    return 'claimed'
end
if current == 'delivered' then
    return 'delivered'
end
return 'busy'
"""
# KEYS[1] marker; ARGV[1] token.
_RELEASE = """
if redis.call('GET', KEYS[1]) == 'sending:' .. ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
"""

# KEYS[1] cursor; ARGV[1] stream id. The cursor only moves forward (overlapping dispatchers).
_ADVANCE = """
local current = redis.call('GET', KEYS[1])
if current then
    local cm, cs = string.match(current, '^(%d+)-(%d+)$')
    local nm, ns = string.match(ARGV[1], '^(%d+)-(%d+)$')
    if cm and nm then
        cm, cs, nm, ns = tonumber(cm), tonumber(cs), tonumber(nm), tonumber(ns)
        if nm < cm or (nm == cm and ns <= cs) then
            return 0
        end
    end
end
redis.call('SET', KEYS[1], ARGV[1])
return 1
"""


class DeliveryRecord(msgspec.Struct, frozen=True, kw_only=True):
    at: datetime
    sink: str
    event_id: str
    alert: str
    outcome: str  # "delivered", "skipped" (already delivered), "retrying", "failed"
    attempt: int = 1
    error: str = ""
    http_status: int | None = None
    retry_in: float | None = None  # "retrying": seconds until the next attempt


class PendingDelivery(msgspec.Struct, frozen=True, kw_only=True):
    """A delivery that failed transiently and will be tried again (until ``since`` + the
    configured horizon)."""

    sink: str
    event_id: str  # the ledger id: an event id, ``<id>:reminder-<n>`` or ``digest-<id>``
    alert: str
    since: float  # Unix time of the first failed attempt of this round
    attempts: int  # failed attempts so far
    next_at: float  # Unix time the next attempt is due
    next_job: str  # the id of the queued job that makes it
    error: str = ""  # the last attempt's error
    http_status: int | None = None

    @property
    def delivery(self) -> str:
        return f"{self.sink}:{self.event_id}"


_record_decoder = msgspec.msgpack.Decoder(DeliveryRecord)
_pending_decoder = msgspec.msgpack.Decoder(PendingDelivery)
_encoder = msgspec.msgpack.Encoder()


class DeliveryLedger:
    def __init__(self, redis: Redis, prefix: str) -> None:
        self.redis = redis
        self.prefix = prefix
        self.log_key = f"{prefix}:deliveries"
        self.cursor_key = f"{prefix}:alerts:cursor"
        self.pending_key = f"{prefix}:deliveries:pending"

    def marker_key(self, sink: str, event_id: str) -> str:
        return f"{self.prefix}:delivery:{sink}:{event_id}"

    async def claim(self, sink: str, event_id: str, token: str, lease: float) -> ClaimOutcome:
        outcome = await self.redis.eval(  # type: ignore[misc]
            _CLAIM, 1, self.marker_key(sink, event_id), token, str(max(1, int(lease * 1000)))
        )
        text = outcome.decode() if isinstance(outcome, bytes) else str(outcome)
        assert text in ("claimed", "delivered", "busy"), text
        return text  # type: ignore[return-value]

    async def release(self, sink: str, event_id: str, token: str) -> None:
        await self.redis.eval(_RELEASE, 1, self.marker_key(sink, event_id), token)  # type: ignore[misc]

    async def mark_delivered(self, sink: str, event_id: str, record: DeliveryRecord) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(self.marker_key(sink, event_id), "delivered", ex=DELIVERED_TTL)
            pipe.hdel(self.pending_key, f"{sink}:{event_id}")
            self._log(pipe, record)
            await pipe.execute()

    async def is_delivered(self, sink: str, event_id: str) -> bool:
        value = await self.redis.get(self.marker_key(sink, event_id))
        return value in (b"delivered", "delivered")

    async def log(self, record: DeliveryRecord) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            self._log(pipe, record)
            await pipe.execute()

    def _log(self, pipe: object, record: DeliveryRecord) -> None:
        pipe.lpush(self.log_key, _encoder.encode(record))  # type: ignore[attr-defined]
        pipe.ltrim(self.log_key, 0, RECENT_DELIVERIES - 1)  # type: ignore[attr-defined]

    # -- deliveries to be tried again -------------------------------------------------------
    async def pending_of(self, sink: str, event_id: str) -> PendingDelivery | None:
        raw = await self.redis.hget(self.pending_key, f"{sink}:{event_id}")  # type: ignore[misc]
        return _decode_pending(raw)

    async def set_pending(self, pending: PendingDelivery, record: DeliveryRecord) -> None:
        """Note ``pending`` (replacing its previous state) and log ``record`` at once."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(self.pending_key, pending.delivery, _encoder.encode(pending))  # type: ignore[arg-type]
            self._log(pipe, record)
            await pipe.execute()

    async def give_up(self, sink: str, event_id: str, record: DeliveryRecord) -> None:
        """The delivery is no longer pending; log ``record`` (its failure) at once."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hdel(self.pending_key, f"{sink}:{event_id}")
            self._log(pipe, record)
            await pipe.execute()

    async def pending(self) -> list[PendingDelivery]:
        """Every pending delivery, the next due first (one per sink and event: a handful)."""
        raws = await self.redis.hvals(self.pending_key)  # type: ignore[misc]
        found = [item for item in map(_decode_pending, raws) if item is not None]
        return sorted(found, key=lambda item: item.next_at)

    async def pending_per_sink(self) -> dict[str, int]:
        """How many deliveries are pending, by sink (sinks with none are left out)."""
        counts: dict[str, int] = {}
        for item in await self.pending():
            counts[item.sink] = counts.get(item.sink, 0) + 1
        return counts

    async def recent(self, limit: int = 50) -> list[DeliveryRecord]:
        """The newest delivery outcomes first."""
        raws = await self.redis.lrange(self.log_key, 0, limit - 1)  # type: ignore[misc]
        return [_record_decoder.decode(raw) for raw in raws]

    # -- the dispatcher's cursor ----------------------------------------------------------
    async def cursor(self) -> str | None:
        value = await self.redis.get(self.cursor_key)
        if value is None:
            return None
        return value.decode() if isinstance(value, bytes) else str(value)

    async def set_cursor(self, event_id: str) -> bool:
        """Move the cursor to ``event_id`` unless it is already at or past it."""
        moved = await self.redis.eval(_ADVANCE, 1, self.cursor_key, event_id)  # type: ignore[misc]
        return bool(moved)


def _decode_pending(raw: bytes | None) -> PendingDelivery | None:
    if raw is None:
        return None
    try:
        return _pending_decoder.decode(raw)
    except msgspec.DecodeError:  # unreadable: treated as absent, so the delivery starts over
        return None
