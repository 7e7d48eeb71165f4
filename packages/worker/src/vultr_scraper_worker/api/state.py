"""What every handler can reach: configuration, secrets, Redis (as an ArqRedis) and the jobs."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from aiohttp import web
from arq.connections import ArqRedis

from vultr_scraper_core.config import Config, LoadedConfig, Secrets
from vultr_scraper_worker.api.auth import Authenticator
from vultr_scraper_worker.api.throttle import LoginThrottle
from vultr_scraper_worker.plans import JobPlan

if TYPE_CHECKING:
    from vultr_scraper_core.history.files import Archive
    from vultr_scraper_core.history.query import History


@dataclass(frozen=True)
class Overview:
    """What the status page read from Redis at ``read_at`` (its template's values)."""

    read_at: datetime
    values: dict[str, Any]


@dataclass
class ApiState:
    config: Config
    secrets: Secrets
    redis: ArqRedis  # msgpack job serialiser: retry and enqueue go through it
    started_at: datetime
    auth: Authenticator
    plans: list[JobPlan]  # the jobs this worker serves, with their schedules
    _archive: Archive | None = field(default=None, repr=False)  # opened on first use
    # The status page's last good read, shown under a banner while Redis is unreachable.
    last_overview: Overview | None = field(default=None, repr=False)

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
            auth=Authenticator(
                secrets.http_token,
                protect_reads=config.http.protect_reads,
                public_badges=config.http.public_badges,
                throttle=LoginThrottle(config.http.max_failed_logins),
            ),
            plans=plans,
        )

    @property
    def prefix(self) -> str:
        return self.config.redis.key_prefix

    def history(self) -> History:
        """History across the Redis window and the archive (one archive, and so one cache of
        read files, per server)."""
        from vultr_scraper_core.history.files import archive_from_config
        from vultr_scraper_core.history.query import History

        if self._archive is None:
            self._archive = archive_from_config(self.config, self.secrets)
        return History(self.redis, self.prefix, self._archive)


STATE_KEY = web.AppKey("vultr_scraper_api_state", ApiState)


def state_of(request: web.Request) -> ApiState:
    return request.app[STATE_KEY]
