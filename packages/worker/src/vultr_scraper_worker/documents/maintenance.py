"""``/api/v1/maintenance`` and its mutes; also what ``maintenance --json`` and ``mute --json``
print. Times are to the second, as they were given."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import msgspec

from vultr_scraper_core.maintenance import Maintenance, Mute
from vultr_scraper_worker.documents.common import to_second

if TYPE_CHECKING:
    from vultr_scraper_jobs.maintenance import MaintenanceNow, WindowNow


class MuteEntry(msgspec.Struct, kw_only=True):
    """A one-off mute: alerts about ``target`` are held back until ``until``."""

    target: str
    until: datetime
    created_at: datetime
    reason: str

    @classmethod
    def of(cls, mute: Mute) -> MuteEntry:
        return cls(
            target=mute.target,
            until=to_second(mute.until),
            created_at=to_second(mute.created_at),
            reason=mute.reason,
        )


class Unmuted(msgspec.Struct, kw_only=True):
    target: str
    removed: bool


class WindowEntry(msgspec.Struct, kw_only=True):
    """A recurring window from the configuration, and the end of its current occurrence."""

    scope: str
    window: str
    active: bool
    active_until: datetime | None

    @classmethod
    def of(cls, window: WindowNow) -> WindowEntry:
        return cls(
            scope=window.scope,
            window=window.text,
            active=window.active_until is not None,
            active_until=to_second(window.active_until),
        )


class MaintenanceReport(msgspec.Struct, kw_only=True):
    """What is in maintenance now and why; the active mutes; the recurring windows."""

    at: datetime
    in_maintenance: dict[str, Maintenance]
    mutes: list[MuteEntry]
    windows: list[WindowEntry]

    @classmethod
    def of(cls, found: MaintenanceNow) -> MaintenanceReport:
        return cls(
            at=to_second(found.at),
            in_maintenance={
                subject: Maintenance(until=to_second(status.until), reason=status.reason)
                for subject, status in sorted(found.subjects.items())
            },
            mutes=[MuteEntry.of(mute) for mute in found.mutes],
            windows=[WindowEntry.of(window) for window in found.windows],
        )
