"""The ``apprise`` sink: any of Apprise's services (``tgram://``, ``matrix://``, ``pover://``,
``gotify://``, ``pagerduty://``, ``msteams://``, ``mailto://``, ...) from URLs kept in
``secret_file`` (one or more, separated by whitespace), so one dependency brings the long tail.

Apprise sends synchronously in its own threads and reports only success or failure per call,
so every failure is treated as transient (the worker retries it with backoff up to
``worker.max_tries``); what Apprise logged at WARNING or above is the error's reason. A URL that
Apprise does not understand fails at once (permanent). URLs are never shown: the error names
only the schemes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import apprise

from vultr_scraper_core.http import PermanentHttpError, TransientHttpError
from vultr_scraper_jobs.sinks.base import Receipt
from vultr_scraper_jobs.sinks.message import Message

_TYPES = {
    "info": apprise.NotifyType.INFO,
    "success": apprise.NotifyType.SUCCESS,
    "warning": apprise.NotifyType.WARNING,
    "failure": apprise.NotifyType.FAILURE,
}


@dataclass(frozen=True)
class AppriseSink:
    sink_name: str
    urls: tuple[str, ...]

    @property
    def name(self) -> str:
        return self.sink_name

    @property
    def address(self) -> str:
        schemes = sorted({url.partition("://")[0] for url in self.urls})
        return "apprise:" + ",".join(f"{scheme}://" for scheme in schemes)

    async def send(self, message: Message) -> Receipt:
        targets = apprise.Apprise()
        for url in self.urls:
            if not targets.add(url):
                scheme = url.partition("://")[0]
                raise PermanentHttpError(
                    f"Apprise does not understand a {scheme}:// URL", url=self.address
                )
        with apprise.LogCapture(level=logging.WARNING) as captured:  # type: ignore[no-untyped-call]
            delivered = await targets.async_notify(
                body=message.text,
                title=message.summary,
                notify_type=_TYPES[message.severity],
                body_format=apprise.NotifyFormat.TEXT,
            )
            logged = captured.getvalue()
        if not delivered:
            lines = [line.split(" - ", 2)[-1] for line in logged.splitlines() if line.strip()]
            reason = "; ".join(lines[-3:]) or "Apprise reported a failure"
            raise TransientHttpError(reason, url=self.address)
        return Receipt(detail=f"sent to {len(self.urls)} Apprise URL(s)")
