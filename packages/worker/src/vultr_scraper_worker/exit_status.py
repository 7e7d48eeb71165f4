"""The exit statuses of every command and of the worker process: one table.

The CLI's ``--help``, ``vultr-scraper run`` (a job's result status as an exit status) and the
worker process all take their numbers from here, and a test holds the README's table to it.
69 and 78 are sysexits.h's ``EX_UNAVAILABLE`` and ``EX_CONFIG``; systemd units rely on 78
(``RestartPreventExitStatus=78``: a broken configuration is not restarted in a loop).
"""

from __future__ import annotations

from enum import IntEnum


class ExitStatus(IntEnum):
    OK = 0
    FAILURE = 1
    USAGE = 2  # click's own status for a bad option or argument
    QUARANTINED = 3
    UNAVAILABLE = 69
    CONFIG = 78  # vultr_scraper_core.config.EX_CONFIG (not imported: `--help` reads this table)


# What each status means, as ``vultr-scraper --help`` lists it.
MEANINGS: dict[ExitStatus, str] = {
    ExitStatus.OK: "success",
    ExitStatus.FAILURE: "the command failed (a job failed, a sink refused, nothing to accept, ...)",
    ExitStatus.USAGE: "usage error: unknown option, job, alert, or a bad value",
    ExitStatus.QUARANTINED: "`run`: the catalogue snapshot was quarantined (held back, see "
    "`quarantine`)",
    ExitStatus.UNAVAILABLE: "a service is unavailable: Redis, or no fresh worker heartbeat "
    "(`check`)",
    ExitStatus.CONFIG: "configuration error (one line naming the key and the file)",
}


def for_job_status(status: object) -> ExitStatus:
    """``vultr-scraper run``: a job result's ``status`` as the command's exit status (a result
    without a status, e.g. a job that returns a plain value, is a success)."""
    if status in (None, "success"):
        return ExitStatus.OK
    if status == "quarantined":
        return ExitStatus.QUARANTINED
    return ExitStatus.FAILURE


def help_table() -> str:
    """The table for ``--help`` (click keeps a block after ``\\b`` as written)."""
    rows = [f"  {int(status):<3} {MEANINGS[status]}" for status in ExitStatus]
    return "\b\nExit status:\n" + "\n".join(rows)
