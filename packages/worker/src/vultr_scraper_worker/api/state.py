"""What every handler can reach: configuration, secrets, Redis (as an ArqRedis) and the jobs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from aiohttp import web
from arq.connections import ArqRedis

from vultr_scraper_core.config import Config, LoadedConfig, Secrets
from vultr_scraper_worker.api.auth import Authenticator
from vultr_scraper_worker.plans import JobPlan


@dataclass
class ApiState:
    config: Config
    secrets: Secrets
    redis: ArqRedis  # msgpack job serialiser: retry and enqueue go through it
    started_at: datetime
    auth: Authenticator
    plans: list[JobPlan]  # the jobs this worker serves, with their schedules

    @classmethod
    def create(cls, loaded: LoadedConfig, redis: ArqRedis, plans: list[JobPlan]) -> ApiState:
        """The state of a server starting now. ``redis`` is the worker's queue client (the
        project's msgpack serialiser, so retry and enqueue write what the worker reads)."""
        config, secrets = loaded.config, loaded.secrets
        return cls(
            config=config,
            secrets=secrets,
            redis=redis,
            started_at=datetime.now(UTC),
            auth=Authenticator(secrets.http_token, protect_reads=config.http.protect_reads),
            plans=plans,
        )

    @property
    def prefix(self) -> str:
        return self.config.redis.key_prefix


STATE_KEY = web.AppKey("vultr_scraper_api_state", ApiState)


def state_of(request: web.Request) -> ApiState:
    return request.app[STATE_KEY]
