"""Executing an optimistic transaction: commands staged after WATCH and MULTI."""

from __future__ import annotations

from redis.asyncio.client import Pipeline
from redis.exceptions import WatchError


async def execute_staged(pipe: Pipeline, staged: bool) -> bool:
    """EXEC what ``pipe`` staged: True if applied (or nothing was staged); False if a watched
    key changed since WATCH, so the caller re-reads and retries."""
    if not staged:
        return True
    try:
        await pipe.execute()
    except WatchError:
        return False
    return True
