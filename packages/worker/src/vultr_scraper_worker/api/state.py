"""What every handler can reach: configuration, secrets, Redis (as an ArqRedis) and the jobs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from aiohttp import web
from arq.connections import ArqRedis

from vultr_scraper_core.config import Config, Secrets
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

    @property
    def prefix(self) -> str:
        return self.config.redis.key_prefix


STATE_KEY = web.AppKey("vultr_scraper_api_state", ApiState)


def state_of(request: web.Request) -> ApiState:
    return request.app[STATE_KEY]
