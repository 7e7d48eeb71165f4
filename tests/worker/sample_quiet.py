"""The sample jobs without any schedule (no cron runs interleaving with the test's own jobs)."""

from tests.worker.sample_jobs import JOBS
from tests.worker.sample_jobs import UNSCHEDULED as SCHEDULES

__all__ = ["JOBS", "SCHEDULES"]
