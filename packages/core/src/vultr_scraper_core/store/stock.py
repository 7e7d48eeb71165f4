"""Per (plan, region) stock: the current state and the intervals a plan was in stock.

Keys (``p`` = the key prefix; a pair is written ``"<plan>@<region>"``):

* ``p:stock:state``: hash, pair -> StockState (current state, since when, last seen in stock);
* ``p:stock:intervals``: hash, pair -> list of [start, end) intervals in stock (end null: open);
* ``p:stock:regions``: hash, region -> RegionCheck (first and last successful check);
* ``p:stock:flips``: sorted set, score = time (ms), one member ``"<ms>|<pair>|<0 or 1>"`` per
  interval start (1) and end (0): the same history as the intervals, indexed by time;
* ``p:stock:checkpoints`` (hash, day start in ms -> compressed StockCheckpoint) and
  ``p:stock:checkpoint_times`` (sorted set of those times): the state of every pair ever seen
  at the start of a day, written by the history job. "In stock at T" is the latest checkpoint
  before T plus the flips between, so its cost does not grow with the length of history;
* ``p:stock:held``: hash, region -> HeldStock: an availability answer the stock gate held back
  (waiting for a confirming check, or unusable), written in the same MULTI as the transitions;
* ``p:stock:in_stock:<region>``: set of the plans whose state in the region is in stock, an
  index of ``p:stock:state`` kept in the same MULTI as every state write (``StockTx.stage``, the
  only writer of states), so a check compares a region's answer with one set instead of reading
  and decoding every pair's state; ``p:stock:in_stock_index`` holds the index's format version
  once it has been built from the states. Without it (a store written before the index
  existed) the next transaction reads every state and writes the whole index.

Only transitions are written (plus the region check times), never one row per poll. A pair
with no state in a region that has been checked was never seen in stock there.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import msgspec
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from vultr_scraper_core.models import Shape
from vultr_scraper_core.store.changes import ChangeEvent, ChangeFeed
from vultr_scraper_core.store.codec import compress, decode, decompress, encode, text, to_ms
from vultr_scraper_core.store.watched import execute_staged


class StockState(msgspec.Struct, kw_only=True, omit_defaults=True):
    in_stock: bool
    since: datetime  # when the current state was first observed
    first_seen: datetime  # first check that listed the plan in this region
    last_in_stock: datetime | None = None  # last check that listed it (while out of stock)


class Interval(msgspec.Struct, array_like=True):
    start: datetime
    end: datetime | None = None  # exclusive; None while still in stock

    def covers(self, moment: datetime) -> bool:
        return self.start <= moment and (self.end is None or moment < self.end)


class StockPoint(msgspec.Struct, array_like=True, frozen=True):
    """A pair's state from ``since_ms`` on (in stock, or out of stock after an interval)."""

    in_stock: bool
    since_ms: int


StockCheckpoint = dict[str, StockPoint]  # pair -> state, for every pair ever seen in stock


class Flip(msgspec.Struct, frozen=True, order=True):
    at_ms: int
    pair: str
    in_stock: bool


def flip_member(flip: Flip) -> str:
    # Zero-padded time first: members of one score sort by pair, then off (0) before on (1),
    # so an interval that ends and another that starts at the same instant leave it in stock.
    return f"{flip.at_ms:015d}|{flip.pair}|{int(flip.in_stock)}"


def parse_flip(member: bytes | str) -> Flip:
    at, _, rest = text(member).partition("|")
    pair, _, bit = rest.rpartition("|")
    return Flip(at_ms=int(at), pair=pair, in_stock=bit == "1")


def interval_flips(pair: str, intervals: Iterable[Interval]) -> list[Flip]:
    flips: list[Flip] = []
    for interval in intervals:
        flips.append(Flip(at_ms=to_ms(interval.start), pair=pair, in_stock=True))
        if interval.end is not None:
            flips.append(Flip(at_ms=to_ms(interval.end), pair=pair, in_stock=False))
    return flips


def apply_flips(state: StockCheckpoint, flips: Iterable[Flip]) -> None:
    """Advance ``state`` by ``flips`` (in time order)."""
    for flip in flips:
        state[flip.pair] = StockPoint(in_stock=flip.in_stock, since_ms=flip.at_ms)


class RegionCheck(msgspec.Struct, kw_only=True):
    first_checked: datetime
    last_checked: datetime


class HeldStock(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One region's availability answer that changed nothing (see ``jobs.stock_gate``)."""

    region: str
    observed_at: datetime  # when the held answer arrived
    checks: list[str]  # emptied, region_changes, run_changes, malformed, failed
    reasons: list[str]
    listed: list[str] | None = None  # what it lists in stock; None: nothing usable to apply
    in_stock_before: int = 0  # plans in stock in the region when it was held
    confirm_at: datetime | None = None  # from then on a check seeing the same confirms it

    @property
    def reason(self) -> str:
        return "; ".join(self.reasons)


class StockView(msgspec.Struct, kw_only=True):
    # pair -> state: every pair's, or, when ``in_stock`` was read from the index, only those
    # of the pairs read since (``StockTx.read_states``)
    states: dict[str, StockState]
    regions: dict[str, RegionCheck]
    held: dict[str, HeldStock] = {}  # region -> held answer
    in_stock: dict[str, set[str]] | None = None  # region -> plans in stock, from the index

    def in_stock_by_region(self) -> dict[str, set[str]]:
        """Region -> the plans in stock there (regions with none left out)."""
        if self.in_stock is not None:
            return self.in_stock
        return in_stock_by_region(self.states)


def in_stock_by_region(states: dict[str, StockState]) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for pair, state in states.items():
        if state.in_stock:
            plan, region = split_pair(pair)
            found.setdefault(region, set()).add(plan)
    return found


def pair_key(plan: str, region: str) -> str:
    return f"{plan}@{region}"


def split_pair(pair: str) -> tuple[str, str]:
    plan, _, region = pair.rpartition("@")
    return plan, region


class StockKeys:
    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.state = f"{prefix}:stock:state"
        self.intervals = f"{prefix}:stock:intervals"
        self.regions = f"{prefix}:stock:regions"
        self.schema = f"{prefix}:schema"
        self.flips = f"{prefix}:stock:flips"
        self.checkpoints = f"{prefix}:stock:checkpoints"
        self.checkpoint_times = f"{prefix}:stock:checkpoint_times"
        self.held = f"{prefix}:stock:held"
        self.in_stock_built = f"{prefix}:stock:in_stock_index"

    def in_stock(self, region: str) -> str:
        return f"{self.prefix}:stock:in_stock:{region}"


# Every set named in KEYS as a JSON array ("" for an empty one: cjson writes an empty table as
# an object).
_READ_SETS = """
local found = {}
for i, key in ipairs(KEYS) do
  local members = redis.call('SMEMBERS', key)
  if #members == 0 then found[i] = '' else found[i] = cjson.encode(members) end
end
return found
"""

# The index's format: a store whose ``in_stock_index`` holds another value is indexed again.
IN_STOCK_INDEX_VERSION = "1"


def _decode_view(
    states: dict[Any, Any], regions: dict[Any, Any], held: dict[Any, Any] | None = None
) -> StockView:
    return StockView(
        states={text(key): decode(value, StockState) for key, value in states.items()},
        regions={text(key): decode(value, RegionCheck) for key, value in regions.items()},
        held=_decode_held(held or {}),
    )


def _decode_held(raw: dict[Any, Any]) -> dict[str, HeldStock]:
    return {text(key): decode(value, HeldStock) for key, value in raw.items()}


class StockTx:
    def __init__(
        self, store: StockStore, pipe: Pipeline, current: StockView, *, build_index: bool = False
    ) -> None:
        """``build_index``: ``current.states`` holds every state and the staged writes
        replace the whole in-stock index (built from them and the staged states)."""
        self.store = store
        self.pipe = pipe
        self.current = current
        self.build_index = build_index
        self.staged = False

    async def read_states(self, pairs: Iterable[str]) -> None:
        """Add the stored states of ``pairs`` to ``current.states`` (read under the same
        WATCH); a pair with none stays absent (never seen in stock)."""
        states = self.current.states
        wanted = [pair for pair in dict.fromkeys(pairs) if pair not in states]
        if not wanted:
            return
        raw = await self.pipe.hmget(self.store.keys.state, wanted)  # type: ignore[misc]
        for pair, value in zip(wanted, raw, strict=True):
            if value is not None:
                states[pair] = decode(value, StockState)

    async def intervals(self, pairs: Iterable[str]) -> dict[str, list[Interval]]:
        """The stored intervals of ``pairs`` (read under the same WATCH)."""
        wanted = list(dict.fromkeys(pairs))
        if not wanted:
            return {}
        raw = await self.pipe.hmget(self.store.keys.intervals, wanted)  # type: ignore[misc]
        return {
            pair: decode(value, list[Interval]) if value else []
            for pair, value in zip(wanted, raw, strict=True)
        }

    def stage(
        self,
        *,
        states: dict[str, StockState],
        intervals: dict[str, list[Interval]],
        regions: dict[str, RegionCheck],
        events: Sequence[ChangeEvent],
        shapes: dict[str, Shape] | None = None,
        hold: Sequence[HeldStock] = (),
        release: Iterable[str] = (),
    ) -> None:
        """Stage the transitions; ``hold`` stores held answers, ``release`` drops those of
        the regions named (a held answer replaced, confirmed, accepted or cleared)."""
        keys = self.store.keys
        self.pipe.multi()  # type: ignore[no-untyped-call]
        self.staged = True
        released = [region for region in release if region not in {h.region for h in hold}]
        if released:
            self.pipe.hdel(keys.held, *released)
        if hold:
            self.pipe.hset(keys.held, mapping={held.region: encode(held) for held in hold})
        if states:
            self.pipe.hset(keys.state, mapping={p: encode(s) for p, s in states.items()})
        if self.build_index:
            self._stage_whole_index(states)
        elif states:
            self._stage_index_changes(states)
        if intervals:
            self.pipe.hset(keys.intervals, mapping={p: encode(i) for p, i in intervals.items()})
            # Every start and end again: re-adding a known flip changes nothing, and the
            # time index can never disagree with the intervals.
            flips = {
                flip_member(flip): flip.at_ms
                for pair, listed in intervals.items()
                for flip in interval_flips(pair, listed)
            }
            if flips:
                self.pipe.zadd(keys.flips, flips)
        if regions:
            self.pipe.hset(keys.regions, mapping={r: encode(c) for r, c in regions.items()})
        if shapes:
            self.pipe.hset(keys.schema, mapping={path: encode(s) for path, s in shapes.items()})
        ChangeFeed(self.store.redis, keys.prefix, self.store.id_clock).add_to(self.pipe, events)

    async def execute(self) -> bool:
        return await execute_staged(self.pipe, self.staged)

    def _stage_index_changes(self, states: dict[str, StockState]) -> None:
        """The in-stock index follows the states written: only the pairs that change."""
        entered: dict[str, list[str]] = {}
        left: dict[str, list[str]] = {}
        for pair, state in states.items():
            plan, region = split_pair(pair)
            (entered if state.in_stock else left).setdefault(region, []).append(plan)
        keys = self.store.keys
        for region, plans in entered.items():
            self.pipe.sadd(keys.in_stock(region), *plans)
        for region, plans in left.items():
            self.pipe.srem(keys.in_stock(region), *plans)

    def _stage_whole_index(self, states: dict[str, StockState]) -> None:
        """The whole index from every state (``current.states``) and those staged now. Every
        region with a state is cleared first: partial index writes made before the index was
        built (a state is written with every change of a region's set) cannot survive."""
        merged = {**self.current.states, **states}
        by_region = in_stock_by_region(merged)
        keys = self.store.keys
        for region in sorted({split_pair(pair)[1] for pair in merged}):
            self.pipe.delete(keys.in_stock(region))
            if plans := by_region.get(region):
                self.pipe.sadd(keys.in_stock(region), *sorted(plans))
        self.pipe.set(keys.in_stock_built, IN_STOCK_INDEX_VERSION)


class StockStore:
    def __init__(
        self, redis: Redis, prefix: str, id_clock: Callable[[], int] | None = None
    ) -> None:
        self.redis = redis
        self.keys = StockKeys(prefix)
        self.id_clock = id_clock  # see ChangeFeed

    async def load(self) -> StockView:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hgetall(self.keys.state)
            pipe.hgetall(self.keys.regions)
            pipe.hgetall(self.keys.held)
            states, regions, held = await pipe.execute()
        return _decode_view(states, regions, held)

    async def held(self) -> dict[str, HeldStock]:
        """Region -> the answer the stock gate holds back there."""
        return _decode_held(await self.redis.hgetall(self.keys.held))  # type: ignore[misc]

    async def discard_held(self, regions: Iterable[str] | None = None) -> list[str]:
        """Drop the held answers of ``regions`` (all when None); returns the regions dropped.
        The region's stock stays as it is; its next check is judged afresh."""
        present = [text(key) for key in await self.redis.hkeys(self.keys.held)]  # type: ignore[misc]
        wanted = present if regions is None else [r for r in dict.fromkeys(regions) if r in present]
        if wanted:
            await self.redis.hdel(self.keys.held, *wanted)  # type: ignore[misc]
        return wanted

    @asynccontextmanager
    async def transaction(self, regions: Iterable[str] = ()) -> AsyncIterator[StockTx]:
        """A transaction whose view holds the region checks, the held answers and the plans
        in stock in every checked region and in ``regions`` (from the in-stock index), but no
        pair's state: read those that change with ``StockTx.read_states``. A store not yet
        indexed is read whole, and the transaction writes the index."""
        async with self.redis.pipeline(transaction=True) as pipe:
            keys = self.keys
            await pipe.watch(
                keys.state, keys.regions, keys.intervals, keys.held, keys.in_stock_built
            )
            checks = await pipe.hgetall(keys.regions)  # type: ignore[misc]
            held = await pipe.hgetall(keys.held)  # type: ignore[misc]
            if not _index_built(await pipe.get(keys.in_stock_built)):
                states = await pipe.hgetall(keys.state)  # type: ignore[misc]
                view = _decode_view(states, checks, held)
                view.in_stock = in_stock_by_region(view.states)
                yield StockTx(self, pipe, view, build_index=True)
                return
            view = _decode_view({}, checks, held)
            view.in_stock = await self._read_index(pipe, sorted({*view.regions, *regions}))
            yield StockTx(self, pipe, view)

    async def _read_index(self, pipe: Pipeline, regions: Sequence[str]) -> dict[str, set[str]]:
        # One script call: each set comes back as one JSON array, decoded by msgspec, instead
        # of a reply element per plan decoded one by one (211,000 of them at ten times today's
        # catalogue).
        keys = [self.keys.in_stock(region) for region in regions]
        found = await pipe.eval(_READ_SETS, len(keys), *keys)  # type: ignore[misc]
        return {
            region: decode(blob, set[str])
            for region, blob in zip(regions, found, strict=True)
            if blob
        }

    async def in_stock_index(self) -> dict[str, set[str]] | None:
        """Region -> plans in stock, from the index; None while it has not been built."""
        if not _index_built(await self.redis.get(self.keys.in_stock_built)):
            return None
        prefix = self.keys.in_stock("")
        index: dict[str, set[str]] = {}
        async for key in self.redis.scan_iter(match=f"{_glob(prefix)}*", count=1000):
            members = await self.redis.smembers(key)  # type: ignore[misc]
            if members:
                index[text(key).removeprefix(prefix)] = _texts(members)
        return index

    async def region_checks(self) -> dict[str, RegionCheck]:
        raw = await self.redis.hgetall(self.keys.regions)  # type: ignore[misc]
        return {text(key): decode(value, RegionCheck) for key, value in raw.items()}

    async def shape(self, path: str) -> Shape | None:
        raw = await self.redis.hget(self.keys.schema, path)  # type: ignore[misc]
        return decode(raw, dict[str, list[str]]) if raw else None

    async def intervals(
        self, plan: str | None = None, region: str | None = None
    ) -> dict[str, list[Interval]]:
        """Pair -> intervals, optionally for one plan and/or region. A narrowed read fetches
        only the matching pairs (HGET, or HSCAN with a pattern), not the whole hash."""
        key_name = self.keys.intervals
        if plan is not None and region is not None:
            one = await self.redis.hget(key_name, pair_key(plan, region))  # type: ignore[misc]
            return {pair_key(plan, region): decode(one, list[Interval])} if one else {}
        raw: dict[Any, Any]
        if plan is not None or region is not None:
            pattern = f"{_glob(plan)}@*" if plan is not None else f"*@{_glob(region or '')}"
            raw = {
                key: value
                async for key, value in self.redis.hscan_iter(key_name, match=pattern, count=1000)
            }
        else:
            raw = await self.redis.hgetall(key_name)  # type: ignore[misc]
        found: dict[str, list[Interval]] = {}
        for key, value in raw.items():
            pair = text(key)
            pair_plan, pair_region = split_pair(pair)
            if (plan is None or pair_plan == plan) and (region is None or pair_region == region):
                found[pair] = decode(value, list[Interval])
        return found

    async def flips(self, after_ms: int | None, until_ms: int) -> list[Flip]:
        """Flips with ``after_ms < time <= until_ms`` (no lower bound when None), in order."""
        low = f"({after_ms}" if after_ms is not None else "-inf"
        raw = await self.redis.zrangebyscore(self.keys.flips, low, until_ms)
        return [parse_flip(member) for member in raw]

    async def has_checkpoints(self) -> bool:
        return bool(await self.redis.zcard(self.keys.checkpoint_times))

    async def checkpoint_before(self, at_ms: int) -> tuple[int, StockCheckpoint] | None:
        """The latest checkpoint taken at or before ``at_ms``: (its time, the state from the
        flips before that time)."""
        found = await self.redis.zrevrangebyscore(
            self.keys.checkpoint_times, at_ms, "-inf", start=0, num=1, withscores=True
        )
        if not found:
            return None
        taken = int(found[0][1])
        raw = await self.redis.hget(self.keys.checkpoints, str(taken))  # type: ignore[misc]
        if raw is None:
            return None
        return taken, decode_checkpoint(raw)

    async def points_at(self, at_ms: int) -> StockCheckpoint | None:
        """Every pair's state at ``at_ms`` from the latest checkpoint and the flips since;
        None when no checkpoint exists yet (the history job has not run)."""
        if not await self.has_checkpoints():
            return None
        return await self.state_before(at_ms + 1)

    async def state_before(self, end_ms: int) -> StockCheckpoint:
        """Every pair's state from the flips before ``end_ms`` (exclusive)."""
        found = await self.checkpoint_before(end_ms)
        taken, state = found if found is not None else (None, {})
        after = taken - 1 if taken is not None else None  # flips at the checkpoint's time count
        apply_flips(state, await self.flips(after, end_ms - 1))
        return state


def _index_built(version: bytes | str | None) -> bool:
    return version is not None and text(version) == IN_STOCK_INDEX_VERSION


def _texts(members: set[Any]) -> set[str]:
    """A set reply as text, decoded member by member only when the client returns bytes."""
    if isinstance(next(iter(members), ""), bytes):
        return set(map(bytes.decode, members))
    return set(members)


def _glob(text: str) -> str:
    """``text`` as a literal inside a Redis MATCH pattern."""
    return "".join(f"\\{c}" if c in "*?[]\\" else c for c in text)


def encode_checkpoint(state: StockCheckpoint) -> bytes:
    return compress(encode(state))


def decode_checkpoint(raw: bytes) -> StockCheckpoint:
    return decode(decompress(raw), StockCheckpoint)
