"""Endpoint health in Redis: state machine per endpoint, last N raw results, hourly rollups.

Keys (``P`` is ``config.redis.key_prefix``, ``NAME`` the endpoint name):

* ``P:health:endpoints``     SET    every endpoint name ever recorded (for listing and pruning)
* ``P:health:state:NAME``    STRING msgpack ``EndpointState`` (UP/DOWN, streaks, last result)
* ``P:health:results:NAME``  LIST   msgpack ``ProbeResult``, newest first, trimmed to ``keep``
* ``P:health:hourly:NAME``   HASH   ``<hour>:n`` probes, ``<hour>:ok`` successes, ``<hour>:ms``
  summed latency (ms) and ``<hour>:lat`` probes with a latency; ``<hour>`` is the Unix time of
  the start of the UTC hour

The state machine follows Gatus: ``failure_threshold`` failures in a row turn an endpoint DOWN,
``success_threshold`` successes in a row turn it UP. A new endpoint starts ``unknown``; reaching
DOWN from anything else is a transition (an ``endpoint_down`` event), reaching UP is one only
when coming from DOWN (establishing the first state of a healthy endpoint is not a recovery).
A result, its rollup increments, the new state and any transition event are written
atomically and only if the state is still the one the transition was computed from (a guarded
script call, or ``WATCH`` / ``MULTI`` when there is an event to add), so two overlapping runs
cannot both report the same transition.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import msgspec
from redis.asyncio import Redis
from redis.exceptions import WatchError

from vultr_scraper_core.formats import format_instant
from vultr_scraper_core.store.changes import ChangeEvent, ChangeFeed, EventKind
from vultr_scraper_core.store.codec import text

HealthStateName = Literal["unknown", "up", "down"]
HOUR = 3600
DEFAULT_ROLLUP_DAYS = 30
_WATCH_ATTEMPTS = 20


class ProbeResult(msgspec.Struct, frozen=True, kw_only=True):
    """One check of one endpoint. ``ok`` is true only when every condition held."""

    at: datetime  # when the probe started (UTC)
    ok: bool
    status: int | None = None  # HTTP status of the final response, if one arrived
    latency_ms: float | None = None  # request start to full body, if a response arrived
    error: str = ""  # the request error, else the first failed condition
    failures: tuple[str, ...] = ()  # every failed condition
    cert_days: float | None = None  # days until the TLS certificate expires, when checked


class EndpointState(msgspec.Struct, frozen=True, kw_only=True):
    state: HealthStateName = "unknown"
    since: datetime | None = None  # when ``state`` was entered
    failures: int = 0  # consecutive failed probes
    successes: int = 0  # consecutive successful probes
    checks: int = 0  # probes recorded in total
    last: ProbeResult | None = None


class Uptime(msgspec.Struct, frozen=True, kw_only=True):
    probes: int
    successes: int
    avg_latency_ms: float | None

    @property
    def ratio(self) -> float | None:
        return self.successes / self.probes if self.probes else None


Transition = Literal["up", "down"]


def advance(
    current: EndpointState,
    result: ProbeResult,
    *,
    failure_threshold: int,
    success_threshold: int,
) -> tuple[EndpointState, Transition | None]:
    """The next state after ``result``, and the transition it caused (if any)."""
    failures = 0 if result.ok else current.failures + 1
    successes = current.successes + 1 if result.ok else 0
    state, since = current.state, current.since
    transition: Transition | None = None
    if not result.ok and failures >= failure_threshold and current.state != "down":
        state, since, transition = "down", result.at, "down"
    elif result.ok and successes >= success_threshold and current.state != "up":
        state, since = "up", result.at
        transition = "up" if current.state == "down" else None
    updated = EndpointState(
        state=state,
        since=since,
        failures=failures,
        successes=successes,
        checks=current.checks + 1,
        last=result,
    )
    return updated, transition


def transition_event(
    name: str,
    url: str,
    before: EndpointState,
    after: EndpointState,
    transition: Transition,
) -> ChangeEvent:
    """The change event for a transition: subject is the endpoint name, old/new the states."""
    result = after.last
    assert result is not None
    detail: dict[str, Any] = {"url": url, "status": result.status, "latency_ms": result.latency_ms}
    if transition == "down":
        detail.update(error=result.error, failures=list(result.failures), streak=after.failures)
        kind = EventKind.ENDPOINT_DOWN
    else:
        if before.since is not None:
            detail["down_since"] = format_instant(before.since)
            detail["downtime_s"] = round((result.at - before.since).total_seconds(), 3)
        kind = EventKind.ENDPOINT_UP
    return ChangeEvent(
        kind=kind, at=result.at, subject=name, old=before.state, new=after.state, detail=detail
    )


def hour_of(moment: datetime) -> int:
    return int(moment.timestamp()) // HOUR * HOUR


# KEYS: state, results, hourly, names. ARGV: state, result, keep, hour, ok (0/1), latency in ms
# (-1: none), name to add to the names set ("" when already known), then the guard: "any" (the
# caller holds a WATCH on the state key), "absent" (no state yet) or "equal" (the state is still
# ARGV[9]). Returns 0, writing nothing, when the guard fails.
_RECORD = """
local guard = ARGV[8]
if guard ~= 'any' then
    local current = redis.call('GET', KEYS[1])
    if guard == 'absent' then
        if current then
            return 0
        end
    elseif current ~= ARGV[9] then
        return 0
    end
end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('LPUSH', KEYS[2], ARGV[2])
redis.call('LTRIM', KEYS[2], 0, tonumber(ARGV[3]) - 1)
local hour = ARGV[4]
redis.call('HINCRBY', KEYS[3], hour .. ':n', 1)
if ARGV[5] == '1' then
    redis.call('HINCRBY', KEYS[3], hour .. ':ok', 1)
end
local latency = tonumber(ARGV[6])
if latency >= 0 then
    redis.call('HINCRBY', KEYS[3], hour .. ':ms', latency)
    redis.call('HINCRBY', KEYS[3], hour .. ':lat', 1)
end
if ARGV[7] ~= '' then
    redis.call('SADD', KEYS[4], ARGV[7])
end
return 1
"""


class _NotRead:
    """``record(expected=...)`` default: the caller has not read the state."""


NOT_READ = _NotRead()

_state_decoder = msgspec.msgpack.Decoder(EndpointState)
_result_decoder = msgspec.msgpack.Decoder(ProbeResult)
_encoder = msgspec.msgpack.Encoder()


class HealthStore:
    def __init__(self, redis: Redis, prefix: str, *, keep_results: int = 100) -> None:
        self.redis = redis
        self.prefix = prefix
        self.keep_results = max(1, keep_results)

    # -- keys ------------------------------------------------------------------------------
    @property
    def names_key(self) -> str:
        return f"{self.prefix}:health:endpoints"

    def state_key(self, name: str) -> str:
        return f"{self.prefix}:health:state:{name}"

    def results_key(self, name: str) -> str:
        return f"{self.prefix}:health:results:{name}"

    def hourly_key(self, name: str) -> str:
        return f"{self.prefix}:health:hourly:{name}"

    # -- reads -----------------------------------------------------------------------------
    async def known(self) -> list[str]:
        members = await self.redis.smembers(self.names_key)  # type: ignore[misc]
        return sorted(text(member) for member in members)

    async def raw_states(self, names: Sequence[str]) -> dict[str, bytes | None]:
        """The stored state of each name as it is in Redis (for ``record(expected=...)``)."""
        if not names:
            return {}
        raws = await self.redis.mget([self.state_key(name) for name in names])
        return dict(zip(names, raws, strict=True))

    async def states(self, names: Sequence[str]) -> dict[str, EndpointState]:
        """Current state per name (``unknown`` for names never recorded), one round trip."""
        return {name: decode_state(raw) for name, raw in (await self.raw_states(names)).items()}

    async def results(self, name: str, limit: int | None = None) -> list[ProbeResult]:
        """The last raw results, newest first."""
        stop = (limit or self.keep_results) - 1
        raws = await self.redis.lrange(self.results_key(name), 0, stop)  # type: ignore[misc]
        return [_result_decoder.decode(raw) for raw in raws]

    async def uptime(
        self, names: Sequence[str], hours: int, now: datetime | None = None
    ) -> dict[str, Uptime]:
        """Uptime over the last ``hours`` hourly buckets (the current, partial one included)."""
        current = hour_of(now or datetime.now(UTC))
        first = current - (hours - 1) * HOUR
        async with self.redis.pipeline(transaction=False) as pipe:
            for name in names:
                pipe.hgetall(self.hourly_key(name))
            replies = await pipe.execute()
        found: dict[str, Uptime] = {}
        for name, reply in zip(names, replies, strict=True):
            totals = {"n": 0, "ok": 0, "ms": 0, "lat": 0}
            for field, value in reply.items():
                hour_text, _, counter = text(field).partition(":")
                if counter in totals and first <= int(hour_text) <= current:
                    totals[counter] += int(value)
            average = totals["ms"] / totals["lat"] if totals["lat"] else None
            found[name] = Uptime(probes=totals["n"], successes=totals["ok"], avg_latency_ms=average)
        return found

    async def hourly_latency(
        self, names: Sequence[str], hours: int, now: datetime | None = None
    ) -> dict[str, list[float]]:
        """Mean latency (ms) of each of the last ``hours`` hourly buckets, oldest first; hours
        without a measured latency are left out."""
        current = hour_of(now or datetime.now(UTC))
        first = current - (hours - 1) * HOUR
        async with self.redis.pipeline(transaction=False) as pipe:
            for name in names:
                pipe.hmget(
                    self.hourly_key(name),
                    [
                        f"{hour}:{counter}"
                        for hour in range(first, current + 1, HOUR)
                        for counter in ("ms", "lat")
                    ],
                )
            replies = await pipe.execute()
        found: dict[str, list[float]] = {}
        for name, reply in zip(names, replies, strict=True):
            sums, counts = reply[0::2], reply[1::2]
            found[name] = [
                int(total) / int(count)
                for total, count in zip(sums, counts, strict=True)
                if total is not None and count is not None and int(count) > 0
            ]
        return found

    # -- writes ----------------------------------------------------------------------------
    async def record(
        self,
        name: str,
        url: str,
        result: ProbeResult,
        *,
        failure_threshold: int,
        success_threshold: int,
        feed: ChangeFeed,
        expected: bytes | _NotRead | None = NOT_READ,
    ) -> tuple[EndpointState, Transition | None]:
        """Store ``result``, advance the state machine and emit the transition event, atomically.

        ``expected`` is the stored state as the caller last read it (``raw_states``). Most
        results cause no transition: they are written by one script call that first checks the
        state is still ``expected`` (one round trip). A transition, or a state that changed
        meanwhile, takes the WATCH / MULTI path, where the event joins the same transaction.
        """
        raw = (
            await self.redis.get(self.state_key(name))
            if isinstance(expected, _NotRead)
            else expected
        )
        before = decode_state(raw)
        after, transition = advance(
            before, result, failure_threshold=failure_threshold, success_threshold=success_threshold
        )
        if transition is None:
            guard = ("absent",) if raw is None else ("equal", raw)
            written = await self.redis.eval(  # type: ignore[misc]
                _RECORD, 4, *self._record_args(name, raw is None, after, result), *guard
            )
            if written:
                return after, None
        return await self._record_watched(
            name,
            url,
            result,
            failure_threshold=failure_threshold,
            success_threshold=success_threshold,
            feed=feed,
        )

    async def _record_watched(
        self,
        name: str,
        url: str,
        result: ProbeResult,
        *,
        failure_threshold: int,
        success_threshold: int,
        feed: ChangeFeed,
    ) -> tuple[EndpointState, Transition | None]:
        state_key = self.state_key(name)
        for _ in range(_WATCH_ATTEMPTS):
            async with self.redis.pipeline(transaction=True) as pipe:
                try:
                    await pipe.watch(state_key)
                    raw = await pipe.get(state_key)
                    before = decode_state(raw)
                    after, transition = advance(
                        before,
                        result,
                        failure_threshold=failure_threshold,
                        success_threshold=success_threshold,
                    )
                    pipe.multi()  # type: ignore[no-untyped-call]
                    pipe.eval(
                        _RECORD, 4, *self._record_args(name, raw is None, after, result), "any"
                    )
                    if transition is not None:
                        feed.add_to(pipe, [transition_event(name, url, before, after, transition)])
                    await pipe.execute()
                except WatchError:
                    continue
            return after, transition
        raise RuntimeError(f"health state of {name!r} kept changing under concurrent writers")

    def _record_args(
        self, name: str, new: bool, state: EndpointState, result: ProbeResult
    ) -> list[Any]:
        """KEYS and the first ARGV of ``_RECORD``: one script call instead of up to eight
        commands, which is most of the client's CPU per probe."""
        return [
            self.state_key(name),
            self.results_key(name),
            self.hourly_key(name),
            self.names_key,
            _encoder.encode(state),
            _encoder.encode(result),
            self.keep_results,
            hour_of(result.at),
            1 if result.ok else 0,
            -1 if result.latency_ms is None else round(result.latency_ms),
            name if new else "",
        ]

    async def forget(self, names: Iterable[str]) -> int:
        names = list(names)
        if not names:
            return 0
        keys = [key for name in names for key in self._keys_of(name)]
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(*keys)
            pipe.srem(self.names_key, *names)
            deleted, _ = await pipe.execute()
        return int(deleted)

    def _keys_of(self, name: str) -> list[str]:
        return [self.state_key(name), self.results_key(name), self.hourly_key(name)]

    async def prune(
        self,
        now: datetime | None = None,
        *,
        keep_days: int = DEFAULT_ROLLUP_DAYS,
        configured: Iterable[str] = (),
    ) -> dict[str, int]:
        """Drop hourly rollups older than ``keep_days``, and every key of an endpoint that is no
        longer configured and has not been checked for ``keep_days``. Raw results are already
        bounded by ``keep_results``."""
        moment = now or datetime.now(UTC)
        cutoff = hour_of(moment - timedelta(days=keep_days))
        keep = set(configured)
        names = await self.known()
        states = await self.states(names)
        stale = [
            name
            for name, state in states.items()
            if name not in keep
            and (state.last is None or state.last.at < moment - timedelta(days=keep_days))
        ]
        await self.forget(stale)
        rollups = 0
        for name in names:
            if name in stale:
                continue
            key = self.hourly_key(name)
            fields = await self.redis.hkeys(key)  # type: ignore[misc]
            old = [
                field
                for field in (text(raw) for raw in fields)
                if int(field.partition(":")[0]) < cutoff
            ]
            if old:
                rollups += int(await self.redis.hdel(key, *old))  # type: ignore[misc]
        return {"health_rollup_fields": rollups, "health_endpoints": len(stale)}


def is_due(state: EndpointState, interval: float, now: datetime, grace: float) -> bool:
    """Whether a probe is due: never checked, or ``interval`` (less ``grace``) has passed since
    the last probe started. ``grace`` absorbs the scheduler's jitter so that an endpoint with
    ``interval = 60`` is checked on every run of a once-a-minute job."""
    if state.last is None:
        return True
    return (now - state.last.at).total_seconds() >= interval - grace


def decode_state(raw: bytes | None) -> EndpointState:
    return _state_decoder.decode(raw) if raw else EndpointState()
