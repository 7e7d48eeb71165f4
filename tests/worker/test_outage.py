"""The worker's outage tracker: one WARNING, one INFO with the length, a budget, backoff."""

from __future__ import annotations

from typing import Any

import pytest
from loguru import logger
from redis.exceptions import BusyLoadingError, ConnectionError, OutOfMemoryError

from vultr_scraper_worker.outage import BACKOFF_CAP, OutageTooLong, RedisOutage


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def records() -> Any:
    lines: list[Any] = []
    handler = logger.add(lambda message: lines.append(message.record), level="DEBUG")
    yield lines
    logger.remove(handler)


async def test_one_warning_then_one_info_with_the_length(records: list[dict[str, Any]]) -> None:
    clock = Clock()
    outage = RedisOutage(30, clock=clock)
    refused = OutOfMemoryError("command not allowed when used memory > 'maxmemory'.")
    delays = []
    for _ in range(8):
        delays.append(await outage.failed(refused))
        clock.now += 1
    outage.recovered()
    outage.recovered()  # no outage any more: nothing to say
    levels = [(record["level"].name, record["message"]) for record in records]
    assert [level for level, _ in levels] == ["WARNING", "INFO"]
    assert levels[0][1].startswith("Redis refuses writes: out of memory")
    assert levels[1][1].startswith("Redis is back after an outage of 8.0 s")
    assert delays[0] < delays[3] <= BACKOFF_CAP * 1.2  # backs off, capped


async def test_an_outage_longer_than_the_budget_raises() -> None:
    clock = Clock()
    outage = RedisOutage(5, clock=clock)
    await outage.failed(ConnectionError("Connection refused"))
    clock.now += 5
    await outage.failed(ConnectionError("Connection refused"))
    clock.now += 0.5
    with pytest.raises(OutageTooLong, match="Redis unreachable"):
        await outage.failed(ConnectionError("Connection refused"))


async def test_a_loading_redis_gets_the_loading_wait() -> None:
    clock = Clock()
    outage = RedisOutage(5, loading_wait=60, clock=clock)
    await outage.failed(BusyLoadingError("loading"))
    clock.now += 30
    await outage.failed(BusyLoadingError("loading"))  # within the loading wait
    clock.now += 31
    with pytest.raises(OutageTooLong):
        await outage.failed(BusyLoadingError("loading"))
