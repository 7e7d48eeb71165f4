"""Fixtures for the worker tests (none is autouse)."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from arq.connections import ArqRedis
from loguru import logger

from vultr_scraper_worker.enqueue import close_client, queue_client


@pytest.fixture
async def queue(redis_url: str) -> AsyncIterator[ArqRedis]:
    """The private test Redis as the worker and ``enqueue`` see it (msgpack serialiser)."""
    client = queue_client(redis_url, queue_name="arq:queue", outage_budget=2)
    yield client
    await close_client(client)


@pytest.fixture
def log_records() -> Iterator[list[dict[str, Any]]]:
    """Every loguru record logged during the test: message, level and bound fields."""
    records: list[dict[str, Any]] = []

    def sink(message: Any) -> None:
        record = message.record
        records.append(
            {"message": record["message"], "level": record["level"].name, **record["extra"]}
        )

    handler = logger.add(sink, level="DEBUG")
    yield records
    logger.remove(handler)


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """For CLI tests: commands point loguru at the runner's (then closed) streams."""
    yield
    logger.remove()
    logger.add(sys.stderr, level="DEBUG")
