"""The change feed's index by subject: for each subject, the ids of its events, in order.

Keys (``feed`` is the feed's key, ``f"{prefix}:changes"``):

* ``f"{feed}:subject:{subject}"``: a stream whose entry ids are the ids of the feed's events
  about ``subject`` (one empty field each; a stream keeps ids delta-encoded, a few bytes per
  event, and answers the same ranges as the feed itself);
* ``f"{feed}:subjects"``: the set of subjects that have such a stream (what a trim walks);
* ``f"{feed}:indexed"``: present while the index holds every event of the feed.

Written with each event, in the script that appends it (``ADD``, queued in the writer's MULTI:
the feed and its index change together or not at all), and trimmed with the feed (``TRIM``,
queued in the history mover's commit). A feed that is empty, with no index left over, when an
event is appended is indexed from then on; a feed written before the index existed is read by
scanning until ``build`` (run by the history mover under its lock) has indexed it. An index
write that fails (an index stream that somehow holds a later id) drops the marker: readers
scan again and the next build starts over. A reader skips an id whose event is gone (trimmed
after the id was read).

The scripts compute the index keys of the subjects they read from the set or the feed; the
store runs on a single Redis (or a Sentinel-managed primary), never a cluster.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from vultr_scraper_core.store.codec import text

_BUILD_BATCH = 2000
EntryId = bytes | str

# KEYS[1] the feed, KEYS[2] the subject set, KEYS[3] the marker, KEYS[3 + i] the index of the
# i-th event's subject; ARGV[1] the id to ask for ("*", or "<ms>-*" for a simulated clock),
# then kind, subject and the encoded event per event. Returns the ids assigned.
ADD = """
local indexed = redis.call('EXISTS', KEYS[3]) == 1
if not indexed and redis.call('XLEN', KEYS[1]) == 0 and redis.call('SCARD', KEYS[2]) == 0 then
  redis.call('SET', KEYS[3], '1')
  indexed = true
end
local ids = {}
for i = 1, (#ARGV - 1) / 3 do
  local subject = ARGV[3 * i]
  local id = redis.call('XADD', KEYS[1], ARGV[1],
    'kind', ARGV[3 * i - 1], 'subject', subject, 'event', ARGV[3 * i + 1])
  ids[i] = id
  if indexed then
    redis.call('SADD', KEYS[2], subject)
    local added = redis.pcall('XADD', KEYS[3 + i], id, 'e', '')
    if type(added) == 'table' and added.err then
      redis.call('DEL', KEYS[3])
      indexed = false
    end
  end
end
return ids
"""

# KEYS[1] the feed, KEYS[2] the subject set; ARGV[1] the lowest id kept, ARGV[2] the index
# keys' prefix. Trims the feed and every subject's index alike; an emptied index goes.
TRIM = """
redis.call('XTRIM', KEYS[1], 'MINID', ARGV[1])
for _, subject in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  local key = ARGV[2] .. subject
  redis.call('XTRIM', key, 'MINID', ARGV[1])
  if redis.call('XLEN', key) == 0 then
    redis.call('DEL', key)
    redis.call('SREM', KEYS[2], subject)
  end
end
return 1
"""

# KEYS[1] the feed, KEYS[2] the marker, KEYS[3] the subject's index; ARGV[1] XRANGE or
# XREVRANGE, ARGV[2] and ARGV[3] its bounds, ARGV[4] how many ids. Returns nil while the index
# is not built, else {ids read, the last id read, the entries of those still in the feed}.
READ = """
if redis.call('EXISTS', KEYS[2]) == 0 then return false end
local ids = redis.call(ARGV[1], KEYS[3], ARGV[2], ARGV[3], 'COUNT', ARGV[4])
local found = {}
for _, entry in ipairs(ids) do
  local got = redis.call('XRANGE', KEYS[1], entry[1], entry[1])
  if got[1] then found[#found + 1] = got[1] end
end
local last = ''
if #ids > 0 then last = ids[#ids][1] end
return {#ids, last, found}
"""

# KEYS[1] the feed, KEYS[2] the subject set, KEYS[3] the marker; ARGV[1] the range start (the
# entries the build has not indexed yet), ARGV[2] the index keys' prefix. Indexes the rest of
# the feed and sets the marker in one step, so that no event appended meanwhile is missed.
# Returns how many entries it indexed.
FINISH = """
local entries = redis.call('XRANGE', KEYS[1], ARGV[1], '+')
for _, entry in ipairs(entries) do
  local fields = entry[2]
  local subject = nil
  for i = 1, #fields, 2 do
    if fields[i] == 'subject' then subject = fields[i + 1] end
  end
  if subject then
    redis.call('SADD', KEYS[2], subject)
    redis.call('XADD', ARGV[2] .. subject, entry[1], 'e', '')
  end
end
redis.call('SET', KEYS[3], '1')
return #entries
"""


class SubjectIndex:
    def __init__(self, redis: Redis, feed_key: str) -> None:
        self.redis = redis
        self.feed_key = feed_key
        self.subjects = f"{feed_key}:subjects"
        self.marker = f"{feed_key}:indexed"
        self.key_prefix = f"{feed_key}:subject:"

    def key(self, subject: str) -> str:
        return self.key_prefix + subject

    def add_to(self, pipe: Pipeline, id_spec: str, entries: list[tuple[str, str, bytes]]) -> None:
        """Queue one script call appending ``entries`` (kind, subject, encoded event) to the
        feed and their ids to the index, on ``pipe`` (a MULTI pipeline)."""
        keys = [self.feed_key, self.subjects, self.marker, *(self.key(s) for _, s, _ in entries)]
        args: list[Any] = [id_spec]
        for kind, subject, event in entries:
            args.extend((kind, subject, event))
        pipe.eval(ADD, len(keys), *keys, *args)

    def trim_to(self, pipe: Pipeline, min_id: str) -> None:
        """Queue trimming the feed and the index to the ids from ``min_id`` on."""
        pipe.eval(TRIM, 2, self.feed_key, self.subjects, min_id, self.key_prefix)

    async def entries(
        self, subject: str, command: str, start: str, end: str, count: int
    ) -> tuple[int, str, list[tuple[EntryId, dict[Any, Any]]]] | None:
        """Up to ``count`` ids about ``subject`` from the index (``command``: XRANGE or
        XREVRANGE from ``start`` to ``end``) and the feed's entries of those still there:
        (ids read, the last id read, entries). None while the index is not built."""
        reply = await self.redis.eval(  # type: ignore[misc]
            READ, 3, self.feed_key, self.marker, self.key(subject), command, start, end, str(count)
        )
        if reply is None:
            return None
        read, last, found = reply
        return (
            int(read),
            text(last),
            [(entry_id, _pairs(fields)) for entry_id, fields in found],
        )

    async def built(self) -> bool:
        return bool(await self.redis.exists(self.marker))

    async def build(self, between: Callable[[], Awaitable[None]] | None = None) -> int | None:
        """Index a feed written before the index existed; None if it is indexed already, else
        how many events were indexed. Must not run beside a trim (the history mover runs it
        under its lock); ``between`` is awaited between batches (to renew that lock)."""
        if await self.built():
            return None
        # Whatever a build cut short (or an index write that failed) left is dropped first:
        # writers add no index entries while the marker is absent.
        stale = [text(s) for s in await self.redis.smembers(self.subjects)]  # type: ignore[misc]
        for offset in range(0, len(stale), 500):
            await self.redis.delete(*(self.key(s) for s in stale[offset : offset + 500]))
        await self.redis.delete(self.subjects)
        position = "-"
        indexed = 0
        while True:
            batch = await self.redis.xrange(self.feed_key, min=position, count=_BUILD_BATCH)
            if len(batch) < _BUILD_BATCH:
                break  # the rest is indexed with the marker, in one step
            async with self.redis.pipeline(transaction=False) as pipe:
                for entry_id, fields in batch:
                    subject = fields.get(b"subject", fields.get("subject"))
                    if subject is None:
                        continue
                    pipe.sadd(self.subjects, subject)
                    pipe.xadd(self.key(text(subject)), {"e": ""}, id=entry_id)
                await pipe.execute()
            indexed += len(batch)
            position = f"({text(batch[-1][0])}"
            if between is not None:
                await between()
        rest = await self.redis.eval(  # type: ignore[misc]
            FINISH, 3, self.feed_key, self.subjects, self.marker, position, self.key_prefix
        )
        return indexed + int(rest)


def _pairs(flat: list[Any]) -> dict[Any, Any]:
    return dict(zip(flat[::2], flat[1::2], strict=True))
