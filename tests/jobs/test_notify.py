"""deliver-notification against real loopback receivers: retries, signature, never twice."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest
from redis.asyncio import Redis

from tests.fakes.http_targets import HttpTarget, Reply
from vultr_scraper_core.config import ClientConfig, Config, Secrets, SinkConfig, WorkerConfig
from vultr_scraper_core.http import HttpClient, HttpError, create_session, is_transient
from vultr_scraper_core.store.changes import ChangeEvent, ChangeFeed, EventKind
from vultr_scraper_core.store.deliveries import DeliveryLedger
from vultr_scraper_jobs.context import make_context
from vultr_scraper_jobs.notify import (
    DELIVERY_HEADER,
    SIGNATURE_HEADER,
    deliver_notification,
    verify,
)
from vultr_scraper_jobs.sinks import compose
from vultr_scraper_jobs.sinks.web import render

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


def deliver_with(redis: Redis, http: HttpClient, config: Config, secrets: Secrets) -> Any:
    async def deliver(sink: str, event_id: str, *, job_id: str, job_try: int) -> dict[str, Any]:
        ctx = make_context(
            config=config, secrets=secrets, redis=redis, http=http, job_id=job_id, job_try=job_try
        )
        return await deliver_notification(ctx, sink, event_id, "gpu-eu")

    return deliver


async def test_retried_delivery_arrives_once_signed(redis: Redis, http: HttpClient) -> None:
    [event_id] = await ChangeFeed(redis, PREFIX).append([STOCK])
    async with HttpTarget() as receiver:
        receiver.reply("/hook", Reply(status=500), Reply(status=500), Reply(status=200))
        config = Config(
            sinks=[SinkConfig(name="hook", url=receiver.url("/hook"))],
            worker=WorkerConfig(max_tries=3),
        )
        deliver = deliver_with(redis, http, config, Secrets(sink_secrets={"hook": SECRET}))
        job_id = f"deliver:hook:{event_id}"
        errors = []
        for job_try in (1, 2):
            with pytest.raises(HttpError) as caught:
                await deliver("hook", event_id, job_id=job_id, job_try=job_try)
            errors.append(caught.value)
        # The worker turns exactly these into Retry with backoff.
        assert all(is_transient(error) and error.status == 500 for error in errors)
        result = await deliver("hook", event_id, job_id=job_id, job_try=3)
        assert result == {
            "status": "success",
            "sink": "hook",
            "event": event_id,
            "alert": "gpu-eu",
            "delivered": True,
            "http_status": 200,
        }
        # A second run (a re-enqueued or duplicated job) sends nothing.
        again = await deliver("hook", event_id, job_id="another-run", job_try=1)
        assert again["delivered"] is False
        requests = receiver.requests_to("/hook")

    assert len(requests) == 3  # two refused, one accepted: the event arrived once
    for request in requests:
        assert verify(SECRET, request.body, request.headers[SIGNATURE_HEADER])
        assert not verify("wrong secret", request.body, request.headers[SIGNATURE_HEADER])
        assert request.headers[DELIVERY_HEADER] == f"hook:{event_id}"
    document = msgspec.json.decode(requests[-1].body)
    assert document["event"]["id"] == event_id
    assert document["event"]["subject"] == STOCK.subject
    assert document["text"] == "[gpu-eu] vcg-l40s-16c-180g-48vram back in stock in fra"
    outcomes = [record.outcome for record in await DeliveryLedger(redis, PREFIX).recent()]
    assert outcomes == ["skipped", "delivered", "retrying", "retrying"]


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
