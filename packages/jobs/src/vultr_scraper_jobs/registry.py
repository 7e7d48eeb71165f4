"""Every job the worker knows, by its public name (the one the CLI and the API use).

A job function is ``async def f(ctx, *args) -> dict`` whose result starts with ``status``
(``success``, ``quarantined`` or ``failed``). ``schedule`` names the ``[schedules.*]`` table
that configures its cron entry; jobs without one run only when enqueued.
"""

from __future__ import annotations

from dataclasses import dataclass

from vultr_scraper_jobs.context import JobFunction


@dataclass(frozen=True)
class JobSpec:
    name: str
    function: JobFunction
    description: str
    schedule: str | None = None


def all_jobs() -> dict[str, JobSpec]:
    """Name -> spec, in a stable order. Imported lazily so each job module stays independent."""
    from vultr_scraper_jobs.alerts import dispatch_alerts
    from vultr_scraper_jobs.availability import confirm_availability, scrape_vultr_availability
    from vultr_scraper_jobs.catalog import scrape_vultr_pricing
    from vultr_scraper_jobs.health import check_endpoint_health
    from vultr_scraper_jobs.history import move_history
    from vultr_scraper_jobs.notify import deliver_digest, deliver_notification
    from vultr_scraper_jobs.prune import prune

    specs: list[JobSpec] = [
        JobSpec(
            name="scrape-catalog",
            function=scrape_vultr_pricing,
            description="Fetch plans, metal plans, regions and OS images; gate, diff and commit",
            schedule="scrape_catalog",
        ),
        JobSpec(
            name="scrape-availability",
            function=scrape_vultr_availability,
            description="Fetch per-region stock and record what entered or left stock",
            schedule="scrape_availability",
        ),
        JobSpec(
            name="confirm-availability",
            function=confirm_availability,
            description="Check again the regions whose stock answer is held for confirmation",
        ),
        JobSpec(
            name="check-health",
            function=check_endpoint_health,
            description="Probe the due [[health.endpoints]] and record results and UP/DOWN changes",
            schedule="check_health",
        ),
        JobSpec(
            name="dispatch-alerts",
            function=dispatch_alerts,
            description="Match new change events against [[alerts]]; queue one delivery per sink",
            schedule="dispatch_alerts",
        ),
        JobSpec(
            name="deliver-notification",
            function=deliver_notification,
            description="Send one change event to one sink (args: SINK EVENT_ID ALERT)",
        ),
        JobSpec(
            name="deliver-digest",
            function=deliver_digest,
            description="Send one digest of a storm of matches to one sink (queued by dispatch)",
        ),
        JobSpec(
            name="prune",
            function=prune,
            description="Apply retention settings (raw response archive, ...)",
            schedule="prune",
        ),
        JobSpec(
            name="move-history",
            function=move_history,
            description="Move history older than [history] window_days from Redis to the archive",
            schedule="move_history",
        ),
    ]
    return {spec.name: spec for spec in specs}


def get_job(name: str) -> JobSpec:
    jobs = all_jobs()
    if name not in jobs:
        known = ", ".join(sorted(jobs)) or "(none)"
        raise KeyError(f"unknown job {name!r}; known jobs: {known}")
    return jobs[name]
