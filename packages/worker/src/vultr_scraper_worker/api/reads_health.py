"""Endpoint health as the API, the status page and the metrics see it (``store.health``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from vultr_scraper_core.config import mask_url
from vultr_scraper_core.maintenance import Maintenance
from vultr_scraper_core.store.health import EndpointState, HealthStore, Uptime
from vultr_scraper_jobs.health import configured_endpoints
from vultr_scraper_jobs.maintenance import maintenance_now
from vultr_scraper_worker.api.state import ApiState

UPTIME_WINDOWS = {"24h": 24, "7d": 24 * 7, "30d": 24 * 30}


@dataclass
class EndpointHealth:
    name: str
    url: str | None  # credentials masked; None: no longer configured, still in the store
    state: EndpointState
    uptime: dict[str, Uptime]  # window ("24h", "7d", "30d") -> uptime
    maintenance: Maintenance | None = None  # in a maintenance window or muted now
    latency_24h: list[float] = field(default_factory=list)  # hourly means (ms), oldest first


async def endpoint_health(state: ApiState, now: datetime | None = None) -> list[EndpointHealth]:
    """Every endpoint the health job probes (the built-in ``vultr-api`` one included) and every
    one still in the store, with its state and uptime windows."""
    store = HealthStore(state.redis, state.prefix)
    configured = {
        endpoint.name: mask_url(endpoint.url) for endpoint in configured_endpoints(state.config)
    }
    names = sorted(set(configured) | set(await store.known()))
    states = await store.states(names)
    windows = {
        label: await store.uptime(names, hours, now) for label, hours in UPTIME_WINDOWS.items()
    }
    latency = await store.hourly_latency(names, 24, now)
    maintenance = await maintenance_now(state.redis, state.config, now or datetime.now(UTC))
    return [
        EndpointHealth(
            name=name,
            url=configured.get(name),
            state=states[name],
            uptime={label: found[name] for label, found in windows.items()},
            maintenance=maintenance.subjects.get(name),
            latency_24h=latency[name],
        )
        for name in names
    ]
