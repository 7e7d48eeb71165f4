"""``/healthz`` and ``/api/v1/health``."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Literal

import msgspec
from msgspec import Meta

from vultr_scraper_core.maintenance import Maintenance
from vultr_scraper_core.store.health import HealthStateName, ProbeResult, Uptime
from vultr_scraper_worker.documents.common import Count, HasMore, NextCursor

if TYPE_CHECKING:
    from vultr_scraper_worker.api.reads_health import EndpointHealth

HealthzStatus = Literal["ok", "quarantined", "unhealthy"]


class WorkerCheck(msgspec.Struct, kw_only=True):
    ok: bool
    started_at: datetime


class RedisCheck(msgspec.Struct, kw_only=True, omit_defaults=True):
    ok: bool
    error: Annotated[str | None, Meta(description="why Redis is unavailable")] = None


class CatalogCheck(msgspec.Struct, kw_only=True):
    ok: bool
    last_success: datetime | None
    last_attempt: datetime | None
    quarantined: bool


class HealthzChecks(msgspec.Struct, kw_only=True, omit_defaults=True):
    worker: WorkerCheck
    redis: RedisCheck
    catalog: Annotated[
        CatalogCheck | None, Meta(description="absent when Redis could not be read")
    ] = None


class Healthz(msgspec.Struct, kw_only=True):
    """Whether this appliance is doing its job, and why not."""

    status: HealthzStatus
    reason: str
    catalog_last_success: datetime | None
    catalog_max_age_seconds: float
    checks: HealthzChecks | None = None


class UptimeWindow(msgspec.Struct, kw_only=True):
    probes: Annotated[int, Meta(ge=0)]
    successes: Annotated[int, Meta(ge=0)]
    ratio: float | None
    avg_latency_ms: float | None

    @classmethod
    def of(cls, uptime: Uptime) -> UptimeWindow:
        return cls(
            probes=uptime.probes,
            successes=uptime.successes,
            ratio=uptime.ratio,
            avg_latency_ms=uptime.avg_latency_ms,
        )


class UptimeWindows(msgspec.Struct, kw_only=True):
    day: UptimeWindow = msgspec.field(name="24h")
    week: UptimeWindow = msgspec.field(name="7d")
    month: UptimeWindow = msgspec.field(name="30d")


class Endpoint(msgspec.Struct, kw_only=True):
    """One checked endpoint: its state, last probe and uptime."""

    name: str
    url: Annotated[str | None, Meta(description="credentials masked; null: no longer configured")]
    state: HealthStateName
    since: datetime | None
    checks: int
    failures: Annotated[int, Meta(description="consecutive failed probes")] = 0
    successes: Annotated[int, Meta(description="consecutive successful probes")] = 0
    last: ProbeResult | None
    uptime: UptimeWindows
    in_maintenance: bool
    maintenance: Maintenance | None

    @classmethod
    def of(cls, endpoint: EndpointHealth) -> Endpoint:
        state = endpoint.state
        windows = {label: UptimeWindow.of(uptime) for label, uptime in endpoint.uptime.items()}
        return cls(
            name=endpoint.name,
            url=endpoint.url,
            state=state.state,
            since=state.since,
            checks=state.checks,
            failures=state.failures,
            successes=state.successes,
            last=state.last,
            uptime=UptimeWindows(day=windows["24h"], week=windows["7d"], month=windows["30d"]),
            in_maintenance=endpoint.maintenance is not None,
            maintenance=endpoint.maintenance,
        )


class EndpointHealthReport(msgspec.Struct, kw_only=True):
    """A page of the checked endpoints, by name."""

    endpoints: list[Endpoint]
    count: Annotated[Count, Meta(description="checked endpoints in total")]
    cursor: NextCursor
    has_more: HasMore
