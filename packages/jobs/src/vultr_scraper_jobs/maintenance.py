"""Maintenance as people see and set it: one-off mutes and what is in maintenance now.

The CLI (``mute``, ``unmute``, ``maintenance``), the API (``/api/v1/maintenance``), the status
page and the badges all go through here, so a mute set from one is seen by all, and the rule
for "in maintenance" is the dispatcher's own (``reminders.maintenance_plan`` + ``store.mutes``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from redis.asyncio import Redis

from vultr_scraper_core.config import Config
from vultr_scraper_core.maintenance import (
    CATALOG_SUBJECT,
    EVERYTHING,
    Maintenance,
    MaintenancePlan,
    Mute,
)
from vultr_scraper_core.store.mutes import MuteStore
from vultr_scraper_jobs.reminders import maintenance_plan

# A mute longer than this is a mistake (or a removed endpoint): say so instead of storing it.
MAX_MUTE = timedelta(days=366)
MAX_REASON = 500
DURATION_FORMS = "a duration such as 90s, 30m, 2h, 1h30m, 3d or 1w"
_DURATION = re.compile(r"(?:(\d{1,6})([smhdw]))+")
_PART = re.compile(r"(\d{1,6})([smhdw])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_duration(text: str) -> timedelta:
    """``2h``, ``1h30m``, ``45s``, ``3d``, ``1w``: positive and at most a year."""
    value = text.strip().lower()
    if not _DURATION.fullmatch(value):
        raise ValueError(f"{text!r} is not a duration; use {DURATION_FORMS}")
    seconds = sum(int(amount) * _UNITS[unit] for amount, unit in _PART.findall(value))
    if seconds <= 0:
        raise ValueError(f"{text!r} is not a positive duration")
    if seconds > MAX_MUTE.total_seconds():
        raise ValueError(f"{text!r} is longer than {MAX_MUTE.days} days")
    return timedelta(seconds=seconds)


def mute_targets(config: Config) -> list[str]:
    """What may be muted: every checked endpoint, the catalogue's alerts, and everything."""
    # Deferred: health imports the probes (aiohttp, dnspython); listing mutes need not load them.
    from vultr_scraper_jobs.health import configured_endpoints

    return [endpoint.name for endpoint in configured_endpoints(config)] + [
        CATALOG_SUBJECT,
        EVERYTHING,
    ]


class UnknownTarget(ValueError):
    """A mute target that is neither a configured endpoint, ``catalog`` nor ``*``."""

    def __init__(self, target: str, known: list[str]) -> None:
        shown = target if len(target) <= 80 else target[:77] + "..."
        endpoints = ", ".join(known[:-2]) or "none is configured"
        super().__init__(
            f"nothing to mute named {shown!r}: use an endpoint name ({endpoints}), "
            f"{CATALOG_SUBJECT!r} for the catalogue's alerts, or '*' for everything"
        )
        self.target = target


def check_reason(reason: str) -> str:
    cleaned = " ".join(reason.split())
    if len(cleaned) > MAX_REASON:
        raise ValueError(f"the reason is longer than {MAX_REASON} characters")
    return cleaned


async def set_mute(
    redis: Redis,
    config: Config,
    target: str,
    *,
    until: datetime,
    now: datetime,
    reason: str = "",
) -> Mute:
    """Mute ``target`` until ``until`` (replacing a mute it had). ``UnknownTarget`` or
    ``ValueError`` (an end not in the future, or too far, or a reason too long) otherwise."""
    known = mute_targets(config)
    if target not in known:
        raise UnknownTarget(target, known)
    if until <= now:
        raise ValueError("the end of a mute must be in the future")
    if until - now > MAX_MUTE:
        raise ValueError(f"a mute lasts at most {MAX_MUTE.days} days")
    mute = Mute(target=target, until=until, created_at=now, reason=check_reason(reason))
    await MuteStore(redis, config.redis.key_prefix).set(mute)
    return mute


async def remove_mute(
    redis: Redis, config: Config, target: str, now: datetime | None = None
) -> bool:
    """End ``target``'s mute now; False when it had none in force (an unknown name has none
    either, and one that already ended is not "ended" again)."""
    store = MuteStore(redis, config.redis.key_prefix)
    await store.active(now)  # drops the mutes that have ended
    return await store.remove(target)


@dataclass(frozen=True)
class WindowNow:
    """A recurring window from the configuration, and the end of its current occurrence."""

    scope: str  # "global", "global: api, db-*" or "endpoint <name>"
    text: str  # "sat,sun 02:00-04:00 Europe/Berlin"
    active_until: datetime | None


@dataclass(frozen=True)
class MaintenanceNow:
    """Everything about maintenance at one moment."""

    at: datetime
    mutes: list[Mute]
    windows: list[WindowNow]
    subjects: dict[str, Maintenance]  # only those in maintenance now (endpoints, "catalog")


async def maintenance_now(redis: Redis, config: Config, now: datetime) -> MaintenanceNow:
    plan = maintenance_plan(config)
    mutes = await MuteStore(redis, config.redis.key_prefix).active(now)
    return MaintenanceNow(
        at=now,
        mutes=mutes,
        windows=_windows(plan, now),
        subjects=_subjects(plan, mute_targets(config)[:-1], mutes, now),
    )


def _windows(plan: MaintenancePlan, now: datetime) -> list[WindowNow]:
    found = [
        WindowNow(
            scope="global" if not window.endpoints else f"global: {', '.join(window.endpoints)}",
            text=window.text,
            active_until=window.active_until(now),
        )
        for window in plan.global_windows
    ]
    for name, windows in sorted(plan.endpoint_windows.items()):
        found.extend(
            WindowNow(f"endpoint {name}", window.text, window.active_until(now))
            for window in windows
        )
    return found


def _subjects(
    plan: MaintenancePlan, subjects: list[str], mutes: list[Mute], now: datetime
) -> dict[str, Maintenance]:
    found: dict[str, Maintenance] = {}
    for subject in subjects:
        status = plan.status(subject, now, mutes)
        if status is not None:
            found[subject] = status
    return found
