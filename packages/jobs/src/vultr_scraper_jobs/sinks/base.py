"""The one interface every sink kind implements.

A sink makes **one attempt** to hand a ``Message`` to its receiver and returns a ``Receipt``,
or raises the project's classified errors: ``TransientHttpError`` (worth retrying: the network,
a timeout, a busy or failing server) or ``PermanentHttpError`` (retrying cannot help: refused
credentials, an invalid address). Retries, backoff and the never-twice bookkeeping live in one
place, the ``deliver-notification`` job, never in a sink.
"""

from __future__ import annotations

from typing import Protocol

import msgspec

from vultr_scraper_jobs.sinks.message import Message


class Receipt(msgspec.Struct, frozen=True, kw_only=True):
    status: int | None = None  # the receiver's HTTP or SMTP status, when it gave one
    detail: str = ""


class Sink(Protocol):
    @property
    def name(self) -> str: ...

    async def send(self, message: Message) -> Receipt: ...
