"""The alert storm guard: a sink flooded by one dispatch run gets one digest instead.

``dispatch-alerts`` first works out every delivery a run would queue (one per event and sink,
see ``alerts``). A sink that would get more than its ``storm_limit`` (``[[sinks]]``, default
20; 0 turns the guard off for it) gets **one** ``deliver-digest`` job instead: the number of
events by kind, the first ``DIGEST_ITEMS`` of them, and a link to the change feed from where
the storm began. Other sinks of the same run are unaffected. One cause (a sale, a restock, a
whole region confirmed sold out) is one notification, not two thousand.

The digest is delivered like any notification (one attempt per try, the same retries and
never-twice ledger) under the ledger id ``digest-<first event id>``: a dispatch run that was
interrupted and runs again from the same cursor queues the same job id, so arq drops the copy.
A run reads at most ``alerts.MAX_EVENTS_PER_RUN`` events, so a storm longer than that is told
in one digest per run.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import msgspec

from vultr_scraper_core.config import Config, SinkConfig, mask_url, parse_listen
from vultr_scraper_core.store.changes import ChangeEvent
from vultr_scraper_jobs.context import JobDeps

DIGEST_ITEMS = 10  # events a digest shows one by one
DELIVER_JOB = "deliver-notification"
DIGEST_JOB = "deliver-digest"


@dataclass(frozen=True)
class Planned:
    """One delivery a dispatch run would queue."""

    sink: str
    event: ChangeEvent
    alert: str


class DigestRequest(msgspec.Struct, frozen=True, kw_only=True):
    """What a ``deliver-digest`` job sends (its argument, as a plain mapping)."""

    key: str  # the ledger id: digest-<first event id>
    alerts: list[str]  # the alerts that matched, in the order of the file
    total: int
    counts: dict[str, int]  # event kind -> matches
    items: list[str]  # ids of the first DIGEST_ITEMS events
    after: str  # the feed cursor before the run
    until: str  # the last event the run read


def delivery_job_id(sink: str, event_id: str) -> str:
    return f"deliver:{sink}:{event_id}"


def storm_limit(config: Config, sink_name: str) -> int:
    for sink in config.sinks:
        if sink.name == sink_name:
            return sink.storm_limit
    return SinkConfig(name="").storm_limit


def split_storms(
    planned: Sequence[Planned], config: Config, *, after: str, until: str
) -> tuple[list[Planned], dict[str, DigestRequest]]:
    """The deliveries to queue one by one, and a digest for each sink over its limit."""
    by_sink: dict[str, list[Planned]] = {}
    for item in planned:
        by_sink.setdefault(item.sink, []).append(item)
    digests: dict[str, DigestRequest] = {}
    for sink, items in by_sink.items():
        limit = storm_limit(config, sink)
        if limit <= 0 or len(items) <= limit:
            continue
        counts: dict[str, int] = {}
        for item in items:
            counts[str(item.event.kind)] = counts.get(str(item.event.kind), 0) + 1
        digests[sink] = DigestRequest(
            key=f"digest-{items[0].event.id}",
            alerts=list(dict.fromkeys(item.alert for item in items)),
            total=len(items),
            counts=counts,
            items=[item.event.id for item in items[:DIGEST_ITEMS]],
            after=after,
            until=until,
        )
    single = [item for item in planned if item.sink not in digests]  # in the feed's order
    return single, digests


async def queue_planned(
    d: JobDeps, planned: Sequence[Planned], *, after: str, until: str
) -> dict[str, Any]:
    """Queue ``planned`` (one job per delivery, or one digest per flooded sink)."""
    single, digests = split_storms(planned, d.config, after=after, until=until)
    enqueued = already = 0
    for item in single:
        job_id = delivery_job_id(item.sink, item.event.id)
        queued = await d.enqueue(DELIVER_JOB, item.sink, item.event.id, item.alert, job_id=job_id)
        if queued is None:
            already += 1  # queued by an earlier, interrupted run
        else:
            enqueued += 1
    for sink, request in digests.items():
        job_id = delivery_job_id(sink, request.key)
        queued = await d.enqueue(DIGEST_JOB, sink, msgspec.to_builtins(request), job_id=job_id)
        if queued is None:
            already += 1
        else:
            enqueued += 1
    return {
        "enqueued": enqueued,
        "already_queued": already,
        "digests": {sink: request.total for sink, request in digests.items()},
    }


def feed_link(config: Config, after: str) -> str | None:
    """The change feed from ``after`` on this server (``[http] public_url``, else the listen
    address); None when the server is off or listens on a unix socket. A password in
    ``public_url`` is masked: the link is sent to chats and mailboxes."""
    base = mask_url(config.http.public_url).rstrip("/")
    if not base:
        try:
            address = parse_listen(config.http.listen)
        except ValueError:
            return None
        if address is None or address.path is not None:
            return None
        host = address.host or "localhost"
        host = f"[{host}]" if ":" in host else host
        base = f"http://{host}:{address.port}"
    return f"{base}/api/v1/changes?after={after}"
