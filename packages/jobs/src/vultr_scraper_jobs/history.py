"""The ``move-history`` job: move whole days older than ``[history] window_days`` from Redis
into the archive (``vultr_scraper_core.history.mover``), then report what moved.

Any worker may run it; the Redis lock makes exactly one of them move at a time, and a run that
finds the lock taken reports ``skipped``. An archive that cannot be written (a full disk, a
bucket that refuses) fails the run with a message naming the file; nothing leaves Redis then.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from loguru import logger

from vultr_scraper_core.formats import format_instant
from vultr_scraper_core.history.files import archive_from_config
from vultr_scraper_core.history.mover import HistoryMover
from vultr_scraper_jobs.context import deps


async def move_history(ctx: Mapping[str, Any]) -> dict[str, Any]:
    job = deps(ctx)
    settings = job.config.history
    mover = HistoryMover(
        job.redis,
        job.config.redis.key_prefix,
        archive_from_config(job.config, job.secrets),
        window=timedelta(days=settings.window_days),
    )
    summary = await mover.run(max_days=settings.max_days_per_run)
    rows = sum(sum(day.rows.values()) for day in summary.moved)
    logger.bind(days=len(summary.moved), rows=rows, skipped=summary.skipped).info(
        "history move: {}", "skipped" if summary.skipped else "success"
    )
    result: dict[str, Any] = {
        "status": "success",
        "updated": len(summary.moved),
        "days": [day.day for day in summary.moved],
        "rows": rows,
        "boundary": format_instant(summary.boundary) if summary.boundary else None,
        "seconds": round(sum(day.seconds for day in summary.moved), 3),
    }
    if summary.skipped:
        result["skipped"] = summary.skipped
    if summary.months_compacted:
        result["months_compacted"] = summary.months_compacted
    if summary.orphans_deleted:
        result["orphans_deleted"] = summary.orphans_deleted
    return result
