"""WorkerSettings from config: nothing arq would silently drop, schedules, tries, timeouts."""

from __future__ import annotations

import inspect
from datetime import UTC, datetime
from typing import Any

import pytest
from arq.connections import ArqRedis
from arq.cron import CronJob
from arq.worker import Function, Worker

from tests.worker import sample_jobs
from vultr_scraper_core.config import LoadedConfig, TimeoutsConfig, load_config
from vultr_scraper_jobs.registry import JobSpec, all_jobs
from vultr_scraper_worker.enqueue import queue_client
from vultr_scraper_worker.plans import (
    JobSet,
    Schedule,
    describe_schedule,
    load_job_set,
    next_runs,
    plan_jobs,
)
from vultr_scraper_worker.project_worker import LEASE_MARGIN
from vultr_scraper_worker.serialization import deserialize, serialize
from vultr_scraper_worker.settings import TRAMPOLINE_TIMEOUT, build_worker_settings
from vultr_scraper_worker.worker_main import build_worker
from vultr_scraper_worker.wrapper import JobRunner

WORKER_PARAMETERS = set(inspect.signature(Worker).parameters)


async def _noop(ctx: dict[str, object]) -> dict[str, object]:
    return {"status": "success"}


# Jobs standing in for the real ones, each tied to its [schedules.*] table like the registry's.
PROJECT_LIKE = JobSet(
    [
        JobSpec("scrape-catalog", _noop, "catalogue", schedule="scrape_catalog"),
        JobSpec("scrape-availability", _noop, "stock", schedule="scrape_availability"),
        JobSpec("check-health", _noop, "probes", schedule="check_health"),
        JobSpec("prune", _noop, "retention", schedule="prune"),
        JobSpec("deliver", _noop, "on demand only"),
    ]
)


def _loaded(**env: str) -> LoadedConfig:
    return load_config(None, environ=env)


def _settings(
    loaded: LoadedConfig, pool: ArqRedis, jobs: JobSet | None, *, handle_signals: bool = True
) -> dict[str, Any]:
    """The settings as the worker builds them: jobs planned once, a runner timed by arq."""
    config = loaded.config
    return build_worker_settings(
        config,
        plan_jobs(config, jobs),
        runner=JobRunner.from_config(config, timed_by_arq=True),
        redis_pool=pool,
        handle_signals=handle_signals,
    )


@pytest.fixture
def pool() -> ArqRedis:
    return queue_client("redis://127.0.0.1:9/0", queue_name="arq:queue")  # never connected


def _worker(settings: dict[str, object]) -> Worker:
    return Worker(**settings)  # type: ignore[arg-type]


def test_every_key_passed_to_arq_is_a_worker_parameter(pool: ArqRedis) -> None:
    for jobs in (PROJECT_LIKE, load_job_set("tests.worker.sample_jobs")):
        settings = _settings(_loaded(), pool, jobs)
        assert set(settings) <= WORKER_PARAMETERS, set(settings) - WORKER_PARAMETERS


async def test_a_misspelt_setting_is_an_error_not_a_silent_drop(pool: ArqRedis) -> None:
    settings = _settings(_loaded(), pool, PROJECT_LIKE, handle_signals=False)
    with pytest.raises(TypeError, match="retry_delay"):
        _worker({**settings, "retry_delay": 5})


async def test_worker_gets_config_values_and_msgpack(pool: ArqRedis) -> None:
    loaded = _loaded(
        VULTR_SCRAPER__WORKER__MAX_TRIES="4",
        VULTR_SCRAPER__WORKER__JOB_COMPLETION_WAIT="12",
        VULTR_SCRAPER__WORKER__HEALTH_CHECK_INTERVAL="15",
        VULTR_SCRAPER__WORKER__POLL_DELAY="0.25",
        VULTR_SCRAPER__WORKER__MAX_JOBS="7",
        VULTR_SCRAPER__WORKER__KEEP_RESULT="600",
        VULTR_SCRAPER__REDIS__QUEUE_NAME="vs:queue",
    )
    settings = _settings(loaded, pool, PROJECT_LIKE, handle_signals=False)
    worker = _worker(settings)
    assert worker.max_tries == 4
    assert worker._job_completion_wait == 12
    assert worker.health_check_interval == 15
    assert worker.poll_delay_s == 0.25
    assert worker.max_jobs == 7
    assert worker.keep_result_s == 600
    assert worker.queue_name == "vs:queue"
    assert worker.timezone is UTC
    assert worker.job_serializer is serialize and worker.job_deserializer is deserialize
    assert worker.retry_jobs is True
    assert worker._pool is pool


async def test_every_job_registered_with_its_timeout_tries_and_kept_result(pool: ArqRedis) -> None:
    settings = _settings(_loaded(), pool, PROJECT_LIKE, handle_signals=False)
    worker = _worker(settings)
    functions = {name: f for name, f in worker.functions.items() if isinstance(f, Function)}
    assert sorted(functions) == sorted(spec.name for spec in PROJECT_LIKE.specs)
    timeouts = {name: function.timeout_s or 0.0 for name, function in functions.items()}
    # arq enforces the configured timeout itself (the wrapper reports it as a JobTimeout).
    assert timeouts["scrape-catalog"] == pytest.approx(60)
    assert timeouts["check-health"] == pytest.approx(60)
    assert timeouts["prune"] == pytest.approx(600)
    assert timeouts["deliver"] == pytest.approx(300)  # no [worker.timeouts] key of its own
    assert {function.max_tries for function in functions.values()} == {3}
    assert {function.keep_result_s for function in functions.values()} == {3600}
    # arq's one lease for every job, from the largest timeout: what the claim no longer uses.
    assert worker.in_progress_timeout_s == pytest.approx(max(timeouts.values()) + 10)


async def test_each_job_is_leased_for_its_own_timeout(pool: ArqRedis) -> None:
    loaded = _loaded(VULTR_SCRAPER__SCHEDULES__SCRAPE_CATALOG__TIMEOUT="45")
    worker = build_worker(loaded, pool, jobs=PROJECT_LIKE, handle_signals=False)[0]
    assert worker.leases["scrape-catalog"] == pytest.approx(45 + LEASE_MARGIN)
    assert worker.leases["check-health"] == pytest.approx(60 + LEASE_MARGIN)
    assert worker.leases["prune"] == pytest.approx(600 + LEASE_MARGIN)
    # The cron entries only enqueue their tick.
    assert worker.leases["cron:scrape-catalog"] == pytest.approx(TRAMPOLINE_TIMEOUT + LEASE_MARGIN)


def test_on_demand_jobs_take_their_worker_timeouts_key() -> None:
    config = _loaded(VULTR_SCRAPER__WORKER__TIMEOUTS__DELIVER_NOTIFICATION="42").config
    plans = {plan.name: plan.schedule for plan in plan_jobs(config)}
    assert plans["deliver-notification"].timeout == pytest.approx(42)
    assert plans["deliver-digest"].timeout == pytest.approx(60)
    assert plans["confirm-availability"].timeout == pytest.approx(90)
    assert not any(plans[name].enabled for name in ("deliver-notification", "deliver-digest"))
    # Every registry job without a schedule has a key of its own, none the fallback.
    unscheduled = [spec.name for spec in all_jobs().values() if not spec.schedule]
    fields = {name.replace("_", "-") for name in TimeoutsConfig.__struct_fields__}
    assert set(unscheduled) == fields


def test_default_timeouts_rerun_a_killed_job_within_about_two_minutes() -> None:
    """A job's lease is its timeout + 10 s: the defaults of the jobs that run every few minutes
    (and of what they queue) keep a killed worker's job from waiting more than ~2 minutes."""
    config = _loaded().config
    frequent = ["scrape-catalog", "scrape-availability", "check-health", "dispatch-alerts"]
    frequent += ["confirm-availability", "deliver-notification", "deliver-digest"]
    timeouts = {plan.name: plan.schedule.timeout for plan in plan_jobs(config)}
    assert all(timeouts[name] + LEASE_MARGIN <= 120 for name in frequent), timeouts


async def test_default_schedules_in_utc(pool: ArqRedis) -> None:
    settings = _settings(_loaded(), pool, PROJECT_LIKE, handle_signals=False)
    crons = {cron.name: cron for cron in settings["cron_jobs"]}
    assert sorted(crons) == [
        "cron:check-health",
        "cron:prune",
        "cron:scrape-availability",
        "cron:scrape-catalog",
    ]
    assert crons["cron:scrape-catalog"].minute == {0, 15, 30, 45}
    assert crons["cron:scrape-catalog"].hour is None
    assert crons["cron:scrape-availability"].minute == set(range(0, 60, 5))
    assert crons["cron:check-health"].minute == set(range(60))
    assert (crons["cron:prune"].hour, crons["cron:prune"].minute) == ({3}, {7})
    for cron in crons.values():
        assert isinstance(cron, CronJob)
        assert cron.second == {0}
        assert cron.unique and not cron.run_at_startup
        # arq's cron defaults (max_tries=1, keep_result=0) are overridden explicitly.
        assert cron.max_tries == 3
        assert cron.keep_result_s == 3600
    assert _worker(settings).timezone is UTC


def test_next_runs_follow_the_schedules() -> None:
    plans = plan_jobs(_loaded().config, PROJECT_LIKE)
    now = datetime(2026, 3, 29, 12, 7, 30, tzinfo=UTC)
    upcoming = next_runs(plans, now)
    assert upcoming["scrape-catalog"] == datetime(2026, 3, 29, 12, 15, 0, 123456, tzinfo=UTC)
    assert upcoming["scrape-availability"] == datetime(2026, 3, 29, 12, 10, 0, 123456, tzinfo=UTC)
    assert upcoming["check-health"] == datetime(2026, 3, 29, 12, 8, 0, 123456, tzinfo=UTC)
    assert upcoming["prune"] == datetime(2026, 3, 30, 3, 7, 0, 123456, tzinfo=UTC)
    assert upcoming["deliver"] is None


async def test_schedules_are_configurable_and_can_be_switched_off(pool: ArqRedis) -> None:
    loaded = _loaded(
        VULTR_SCRAPER__SCHEDULES__SCRAPE_CATALOG__MINUTE="[5, 35]",
        VULTR_SCRAPER__SCHEDULES__SCRAPE_CATALOG__HOUR="[6]",
        VULTR_SCRAPER__SCHEDULES__SCRAPE_CATALOG__TIMEOUT="30",
        VULTR_SCRAPER__SCHEDULES__CHECK_HEALTH__ENABLED="false",
    )
    settings = _settings(loaded, pool, PROJECT_LIKE, handle_signals=False)
    crons = {cron.name: cron for cron in settings["cron_jobs"]}
    assert "cron:check-health" not in crons
    assert (crons["cron:scrape-catalog"].minute, crons["cron:scrape-catalog"].hour) == (
        {5, 35},
        {6},
    )
    worker = _worker(settings)
    assert "check-health" in worker.functions  # still runnable on demand
    assert worker.functions["scrape-catalog"].timeout_s == pytest.approx(30)
    plans = {plan.name: plan for plan in plan_jobs(loaded.config, PROJECT_LIKE)}
    assert plans["check-health"].schedule.describe() == "off"
    assert plans["scrape-catalog"].schedule.describe() == "hour 6 minute 5,35 UTC"


def test_registry_jobs_all_resolve_their_schedule_tables() -> None:
    for plan in plan_jobs(_loaded().config):  # the real registry, whatever it holds today
        assert plan.schedule.timeout > 0
        if plan.spec.schedule:
            assert plan.schedule.enabled


def test_jobs_module_supplies_jobs_and_schedules() -> None:
    jobs = load_job_set("tests.worker.sample_jobs")
    assert jobs is not None
    assert [spec.name for spec in jobs.specs] == [spec.name for spec in sample_jobs.JOBS]
    assert jobs.schedules["tick"] == Schedule(
        enabled=True, second=sample_jobs.TICK_SECONDS, timeout=5.0
    )
    assert load_job_set(None) is None


def test_no_jobs_is_an_error(pool: ArqRedis) -> None:
    with pytest.raises(ValueError, match="no jobs"):
        _settings(_loaded(), pool, JobSet([]))


def test_one_readable_schedule_for_the_log_the_cli_and_the_page() -> None:
    plans = {plan.name: plan.schedule for plan in plan_jobs(_loaded().config)}
    readable = {name: describe_schedule(schedule) for name, schedule in plans.items()}
    assert readable["scrape-catalog"] == "every 15 min"
    assert readable["scrape-availability"] == "every 5 min"
    assert readable["check-health"] == "every minute"
    assert readable["prune"] == "daily at 03:07 UTC"
    assert readable["deliver-notification"] == "on demand"
    every = frozenset(range(60))
    assert describe_schedule(Schedule(enabled=True, minute=frozenset({5, 40}))) == (
        "hourly at :05, :40"
    )
    assert describe_schedule(Schedule(enabled=True, minute=every, hour=frozenset({6, 18}))) == (
        "every minute in hours 06, 18 UTC"
    )
    assert describe_schedule(Schedule(enabled=True, second=frozenset(range(0, 60, 2)))) == (
        "every 2 s"
    )
    assert describe_schedule(
        Schedule(enabled=True, hour=frozenset({3}), second=frozenset({30}))
    ) == ("every minute in hours 03 UTC at seconds 30")
