"""The registry's catalogue job alone, with a short timeout, for crash tests.

arq holds a killed job's in-progress key for the largest function timeout + 10 s; serving only
``scrape-catalog`` with a 5 s timeout makes that 16 s instead of the production 615 s.
"""

from vultr_scraper_jobs.registry import get_job
from vultr_scraper_worker.plans import Schedule

JOBS = [get_job("scrape-catalog")]
SCHEDULES = {"scrape-catalog": Schedule(timeout=5.0)}
