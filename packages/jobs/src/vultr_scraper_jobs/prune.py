"""The ``prune`` job: apply every retention setting, once a day by default.

Each pruner takes the job's dependencies and "now", and returns counts of what it removed.
Add a pruner for new data by appending to ``PRUNERS``; the job reports each one by name.
The change feed, stock intervals and record versions are history and are never pruned.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from loguru import logger

from vultr_scraper_core.store.archive import RawArchive
from vultr_scraper_core.store.codec import utcnow
from vultr_scraper_jobs.context import JobDeps, deps
from vultr_scraper_jobs.health import prune_health

Pruner = Callable[[JobDeps, datetime], Awaitable[dict[str, int]]]


async def prune_archive(job: JobDeps, now: datetime) -> dict[str, int]:
    """Raw responses older than ``catalog.archive_retention_days`` (0: archive disabled,
    so everything archived earlier goes)."""
    days = max(0, job.config.catalog.archive_retention_days)
    archive = RawArchive(job.redis, job.config.redis.key_prefix)
    removed = await archive.prune(now - timedelta(days=days))
    return {"responses": removed.responses, "bodies": removed.bodies}


PRUNERS: dict[str, Pruner] = {"archive": prune_archive, "health": prune_health}


async def prune(ctx: Mapping[str, Any]) -> dict[str, Any]:
    job = deps(ctx)
    now = utcnow()
    pruned = {name: await pruner(job, now) for name, pruner in PRUNERS.items()}
    removed = sum(sum(counts.values()) for counts in pruned.values())
    logger.bind(removed=removed).info("prune: success")
    return {"status": "success", "updated": removed, "pruned": pruned}
