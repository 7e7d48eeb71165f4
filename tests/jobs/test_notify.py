"""deliver-notification against real loopback receivers: retries, signature, never twice."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest
from redis.asyncio import Redis

from tests.fakes.http_targets import HttpTarget, Reply
from vultr_scraper_core.config import ClientConfig, Config, DeliveriesConfig, Secrets, SinkConfig
from vultr_scraper_core.http import HttpClient, HttpError, create_session, is_transient
from vultr_scraper_core.store.changes import ChangeEvent, ChangeFeed, EventKind
from vultr_scraper_core.store.deliveries import DeliveryLedger
from vultr_scraper_jobs.context import make_context
from vultr_scraper_jobs.notify import (
    DELIVERY_HEADER,
    SIGNATURE_HEADER,
    DeliveryExpired,
    deliver_digest,
    deliver_notification,
    verify,
)
from vultr_scraper_jobs.sinks import compose
from vultr_scraper_jobs.sinks.web import render
from vultr_scraper_jobs.storm import DigestRequest

PREFIX = "vs"
SECRET = "correct horse battery staple"
STOCK = ChangeEvent(
    kind=EventKind.STOCK_CHANGED,
    at=datetime(2026, 5, 1, 12, 0, tzinfo=UTC),
    subject="vcg-l40s-16c-180g-48vram",
    region="fra",
    field="in_stock",
    old=False,
    new=True,
)


@pytest.fixture
async def http() -> AsyncIterator[HttpClient]:
    config = ClientConfig(rate_limit=0)
    async with create_session(config) as session:
        yield HttpClient(session, config)


Queued = list[tuple[str, tuple[Any, ...], str | None, float | None]]


def deliver_with(
    redis: Redis, http: HttpClient, config: Config, secrets: Secrets, queued: Queued | None = None
) -> Any:
    """``deliver-notification`` as the worker runs it; follow-up jobs it queues land in
    ``queued`` as (job, args, job id, defer_by)."""

    async def enqueue(
        job_name: str, *args: Any, job_id: str | None = None, defer_by: float | None = None
    ) -> str | None:
        assert queued is not None, f"unexpected enqueue of {job_name}"
        queued.append((job_name, args, job_id, defer_by))
        return job_id

    async def deliver(sink: str, event_id: str, *, job_id: str, job_try: int) -> dict[str, Any]:
        ctx = make_context(
            config=config,
            secrets=secrets,
            redis=redis,
            http=http,
            job_id=job_id,
            job_try=job_try,
            enqueue=enqueue,
        )
        return await deliver_notification(ctx, sink, event_id, "gpu-eu")

    return deliver


async def test_retried_delivery_arrives_once_signed(redis: Redis, http: HttpClient) -> None:
    [event_id] = await ChangeFeed(redis, PREFIX).append([STOCK])
    async with HttpTarget() as receiver:
        receiver.reply("/hook", Reply(status=500), Reply(status=500), Reply(status=200))
        config = Config(
            sinks=[SinkConfig(name="hook", url=receiver.url("/hook"))],
            deliveries=DeliveriesConfig(backoff_base=10.0, backoff_cap=15.0),
        )
        queued: Queued = []
        secrets = Secrets(sink_secrets={"hook": SECRET})
        deliver = deliver_with(redis, http, config, secrets, queued)
        ledger = DeliveryLedger(redis, PREFIX)
        job_id = f"deliver:hook:{event_id}"
        for attempt in (1, 2):
            result = await deliver("hook", event_id, job_id=job_id, job_try=1)
            # The job did its part: the next attempt is queued, deferred by the backoff.
            assert (result["status"], result["delivered"], result["attempt"]) == (
                "success",
                False,
                attempt,
            )
            job, args, next_id, defer_by = queued[-1]
            assert (job, args) == ("deliver-notification", ("hook", event_id, "gpu-eu", 0))
            assert next_id == result["next_job"]
            expected = f"deliver:hook:{event_id}:attempt-{attempt + 1}-"
            assert next_id is not None and next_id.startswith(expected)
            ceiling = min(15.0, 10.0 * 2 ** (attempt - 1))
            assert defer_by is not None and ceiling / 2 <= defer_by <= ceiling
            pending = await ledger.pending_of("hook", event_id)
            assert pending is not None
            assert (pending.attempts, pending.next_job, pending.http_status) == (
                attempt,
                next_id,
                500,
            )
            job_id = next_id
        result = await deliver("hook", event_id, job_id=job_id, job_try=1)
        assert result == {
            "status": "success",
            "sink": "hook",
            "event": event_id,
            "alert": "gpu-eu",
            "delivered": True,
            "http_status": 200,
        }
        assert await ledger.pending() == []
        # A second run (a re-enqueued or duplicated job) sends nothing.
        again = await deliver("hook", event_id, job_id="another-run", job_try=1)
        assert again["delivered"] is False
        requests = receiver.requests_to("/hook")

    assert len(queued) == 2
    assert len(requests) == 3  # two refused, one accepted: the event arrived once
    for request in requests:
        assert verify(SECRET, request.body, request.headers[SIGNATURE_HEADER])
        assert not verify("wrong secret", request.body, request.headers[SIGNATURE_HEADER])
        assert request.headers[DELIVERY_HEADER] == f"hook:{event_id}"
        assert request.headers["webhook-id"] == f"hook:{event_id}"
    document = msgspec.json.decode(requests[-1].body)
    assert document["event"]["id"] == event_id
    assert document["event"]["subject"] == STOCK.subject
    assert document["text"] == "[gpu-eu] vcg-l40s-16c-180g-48vram back in stock in fra"
    recent = await DeliveryLedger(redis, PREFIX).recent()
    outcomes = [(record.outcome, record.attempt) for record in recent]
    assert outcomes == [("skipped", 1), ("delivered", 3), ("retrying", 2), ("retrying", 1)]
    assert all(record.retry_in for record in recent[2:])


async def test_past_the_horizon_the_delivery_fails_for_good(redis: Redis, http: HttpClient) -> None:
    [event_id] = await ChangeFeed(redis, PREFIX).append([STOCK])
    ledger = DeliveryLedger(redis, PREFIX)
    async with HttpTarget() as receiver:
        receiver.reply("/hook", Reply(status=503))
        config = Config(
            sinks=[SinkConfig(name="hook", url=receiver.url("/hook"))],
            deliveries=DeliveriesConfig(horizon=0.3, backoff_base=10.0, backoff_cap=10.0),
        )
        queued: Queued = []
        deliver = deliver_with(redis, http, config, Secrets(), queued)
        first = await deliver("hook", event_id, job_id="deliver:hook:x", job_try=1)
        # The next attempt never waits past the horizon.
        assert first["retry_in"] <= 0.3
        await asyncio.sleep(0.35)
        with pytest.raises(DeliveryExpired, match="after 2 attempts") as caught:
            await deliver("hook", event_id, job_id=first["next_job"], job_try=1)
        # Not transient: the worker records a failed job instead of retrying it itself.
        assert not is_transient(caught.value)
        assert len(receiver.requests_to("/hook")) == 2
    assert await ledger.pending() == []
    assert [record.outcome for record in await ledger.recent()] == ["failed", "retrying"]
    # Retried by hand (the same arguments), the delivery starts a new round with a new horizon.
    again = await deliver("hook", event_id, job_id="retry-1", job_try=1)
    assert again["attempt"] == 1
    assert again["next_job"] != first["next_job"]


async def test_permanent_refusal_fails_at_once(redis: Redis, http: HttpClient) -> None:
    [event_id] = await ChangeFeed(redis, PREFIX).append([STOCK])
    async with HttpTarget() as receiver:
        receiver.reply("/hook", Reply(status=410, body=b"gone"))
        config = Config(sinks=[SinkConfig(name="hook", url=receiver.url("/hook"))])
        deliver = deliver_with(redis, http, config, Secrets())
        with pytest.raises(HttpError) as caught:
            await deliver("hook", event_id, job_id="j", job_try=1)
        assert not is_transient(caught.value)
        # Unsigned without a secret.
        assert SIGNATURE_HEADER not in receiver.received[0].headers
    ledger = DeliveryLedger(redis, PREFIX)
    [record] = await ledger.recent()
    assert (record.outcome, record.http_status) == ("failed", 410)
    assert not await ledger.is_delivered("hook", event_id)


async def test_a_claim_held_by_another_job_is_transient(redis: Redis, http: HttpClient) -> None:
    [event_id] = await ChangeFeed(redis, PREFIX).append([STOCK])
    ledger = DeliveryLedger(redis, PREFIX)
    assert await ledger.claim("hook", event_id, "other-job", lease=30) == "claimed"
    async with HttpTarget() as receiver:
        config = Config(sinks=[SinkConfig(name="hook", url=receiver.url("/hook"))])
        deliver = deliver_with(redis, http, config, Secrets())
        with pytest.raises(HttpError) as caught:
            await deliver("hook", event_id, job_id="mine", job_try=1)
        assert is_transient(caught.value)
        assert receiver.received == []
        # The holder itself (a rerun of the same job id after a crash) takes its claim back.
        await deliver("hook", event_id, job_id="other-job", job_try=2)
        assert len(receiver.received) == 1


async def test_unknown_sink_or_event_fails_permanently(redis: Redis, http: HttpClient) -> None:
    [event_id] = await ChangeFeed(redis, PREFIX).append([STOCK])
    config = Config(sinks=[SinkConfig(name="hook", url="http://127.0.0.1:9/")])
    deliver = deliver_with(redis, http, config, Secrets())
    with pytest.raises(LookupError, match="unknown sink 'gone'"):
        await deliver("gone", event_id, job_id="j", job_try=1)
    with pytest.raises(LookupError, match="not found"):
        await deliver("hook", "1-0", job_id="j", job_try=1)


async def test_chat_and_ntfy_formats(redis: Redis, http: HttpClient) -> None:
    [event_id] = await ChangeFeed(redis, PREFIX).append([STOCK])
    async with HttpTarget() as receiver:
        sinks = [
            SinkConfig(name="slack", kind="slack"),  # URL from the secret file
            SinkConfig(name="discord", kind="discord", url=receiver.url("/discord")),
            SinkConfig(name="ntfy", kind="ntfy", url=receiver.url("/ntfy"), headers={"X-P": "1"}),
        ]
        secrets = Secrets(sink_secrets={"slack": receiver.url("/slack"), "ntfy": "tk_123"})
        deliver = deliver_with(redis, http, Config(sinks=sinks), secrets)
        for sink in ("slack", "discord", "ntfy"):
            await deliver(sink, event_id, job_id=sink, job_try=1)
        slack, discord, ntfy = (receiver.requests_to(f"/{sink.name}")[0] for sink in sinks)
    text = "[gpu-eu] vcg-l40s-16c-180g-48vram back in stock in fra"
    assert msgspec.json.decode(slack.body) == {"text": text}
    assert msgspec.json.decode(discord.body) == {"content": text}
    assert ntfy.body == b"vcg-l40s-16c-180g-48vram back in stock in fra"
    assert ntfy.headers["Title"] == "vultr-scraper: gpu-eu"
    assert ntfy.headers["Tags"] == "package"
    assert ntfy.headers["Authorization"] == "Bearer tk_123"
    assert ntfy.headers["X-P"] == "1"


def test_discord_messages_are_truncated() -> None:
    event = msgspec.structs.replace(STOCK, id="1-0", subject="x" * 3000)
    message = compose(event, alert="a", sink="d")
    note = render(SinkConfig(name="d", kind="discord", url="http://h/"), None, message)
    assert len(msgspec.json.decode(note.body)["content"]) == 2000


async def test_a_failed_digest_queues_its_next_attempt_with_the_same_request(
    redis: Redis, http: HttpClient
) -> None:
    [event_id] = await ChangeFeed(redis, PREFIX).append([STOCK])
    request = msgspec.to_builtins(
        DigestRequest(
            key=f"digest-{event_id}",
            alerts=["gpu-eu"],
            total=1,
            counts={"stock_changed": 1},
            items=[event_id],
            after="0-0",
            until=event_id,
        )
    )
    queued: Queued = []

    async def enqueue(
        job_name: str, *args: Any, job_id: str | None = None, defer_by: float | None = None
    ) -> str | None:
        queued.append((job_name, args, job_id, defer_by))
        return job_id

    async with HttpTarget() as receiver:
        receiver.reply("/hook", Reply(status=502), Reply(status=200))
        config = Config(sinks=[SinkConfig(name="hook", url=receiver.url("/hook"))])
        ctx = make_context(
            config=config, secrets=Secrets(), redis=redis, http=http, enqueue=enqueue
        )
        first = await deliver_digest(ctx, "hook", request)
        assert (first["delivered"], first["attempt"]) == (False, 1)
        [(job, args, next_id, defer_by)] = queued
        assert (job, args) == ("deliver-digest", ("hook", request))
        assert next_id is not None
        assert next_id.startswith(f"deliver:hook:digest-{event_id}:attempt-2-")
        assert defer_by is not None and 15.0 <= defer_by <= 30.0  # the default base, 30 s
        second = await deliver_digest({**ctx, "job_id": next_id}, "hook", *args[1:])
        assert second["delivered"] is True
        ids = {request.headers["webhook-id"] for request in receiver.requests_to("/hook")}
    assert ids == {f"hook:digest-{event_id}"}
