"""The alert storm guard: more matches for one sink in one dispatch run than its
``storm_limit`` are told in one digest; other sinks are unaffected."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import pytest
from arq.jobs import Job
from redis.asyncio import Redis

from tests.fakes.http_targets import HttpTarget
from tests.jobs.test_alerts import Queue
from tests.worker.processes import WAIT, WorkerProcess, eventually, queue_for, worker_env, workers
from vultr_scraper_core.config import (
    AlertConfig,
    ClientConfig,
    Config,
    ConfigError,
    HttpConfig,
    Secrets,
    SinkConfig,
    load_config,
)
from vultr_scraper_core.http import HttpClient, create_session
from vultr_scraper_core.store.changes import ChangeEvent, ChangeFeed, EventKind
from vultr_scraper_core.store.deliveries import DeliveryLedger
from vultr_scraper_jobs.alerts import dispatch_alerts
from vultr_scraper_jobs.context import make_context
from vultr_scraper_jobs.sinks.message import Digest, compose_digest
from vultr_scraper_jobs.sinks.web import EVENT_HEADER, render
from vultr_scraper_jobs.storm import DIGEST_ITEMS, Planned, feed_link, split_storms
from vultr_scraper_worker.enqueue import enqueue_job
from vultr_scraper_worker.serialization import deserialize

PREFIX = "vs"


def stock_event(plan: str, new: bool, *, event_id: str = "", region: str = "fra") -> ChangeEvent:
    return ChangeEvent(
        kind=EventKind.STOCK_CHANGED,
        at=datetime(2026, 3, 1, 12, tzinfo=UTC),
        id=event_id,
        subject=plan,
        region=region,
        field="in_stock",
        old=not new,
        new=new,
    )


def price_event(plan: str, event_id: str) -> ChangeEvent:
    return ChangeEvent(
        kind=EventKind.PRICE_CHANGED,
        at=datetime(2026, 3, 1, 12, tzinfo=UTC),
        id=event_id,
        subject=plan,
        field="monthly_cost",
        old="5",
        new="6",
    )


# -- planning ---------------------------------------------------------------------------------


def test_only_the_flooded_sink_gets_a_digest_and_the_others_keep_their_order() -> None:
    config = Config(
        sinks=[
            SinkConfig(name="pager", url="http://p/", storm_limit=3),
            SinkConfig(name="archive", url="http://a/", storm_limit=0),  # never a digest
            SinkConfig(name="chat", url="http://c/"),  # default limit (20)
        ]
    )
    events = [stock_event(f"plan-{n}", False, event_id=f"1-{n}") for n in range(4)]
    events.append(price_event("plan-9", "1-4"))
    planned = [Planned("pager", event, "sold-out") for event in events]
    planned += [Planned("archive", event, "everything") for event in events]
    planned.insert(1, Planned("chat", events[0], "sold-out"))

    single, digests = split_storms(planned, config, after="0-9", until="1-4")

    assert [(item.sink, item.event.id) for item in single] == [
        ("archive" if item.sink == "archive" else "chat", item.event.id)
        for item in planned
        if item.sink != "pager"
    ]
    assert list(digests) == ["pager"]
    digest = digests["pager"]
    assert digest.key == "digest-1-0"
    assert (digest.total, digest.counts) == (5, {"stock_changed": 4, "price_changed": 1})
    assert digest.items == [event.id for event in events]
    assert (digest.after, digest.until, digest.alerts) == ("0-9", "1-4", ["sold-out"])


def test_exactly_the_limit_is_no_storm() -> None:
    config = Config(sinks=[SinkConfig(name="hook", url="http://h/", storm_limit=2)])
    two = [Planned("hook", stock_event(f"p{n}", True, event_id=f"1-{n}"), "a") for n in range(2)]
    assert split_storms(two, config, after="0-0", until="1-1") == (two, {})
    three = [*two, Planned("hook", stock_event("p2", True, event_id="1-2"), "b")]
    single, digests = split_storms(three, config, after="0-0", until="1-2")
    assert single == [] and digests["hook"].alerts == ["a", "b"]
    assert len(digests["hook"].items) == 3


# -- what the digest says ------------------------------------------------------------------


LINK = "https://vs.example/api/v1/changes?after=0-1"


def a_digest(total: int, link: str | None = LINK) -> Digest:
    items = [stock_event(f"<b>plan-{n}</b>", False, event_id=f"1-{n}") for n in range(total)]
    return Digest(
        total=total,
        counts={"stock_changed": total - 1, "price_changed": 1},
        items=items[:DIGEST_ITEMS],
        after="0-1",
        until=f"1-{total - 1}",
        link=link,
    )


def test_a_digest_counts_by_kind_shows_the_first_items_and_links_to_the_feed() -> None:
    message = compose_digest(a_digest(2400), alert="sold-out", sink="hook", key="digest-1-0")
    assert message.summary == (
        "[sold-out] 2400 matching events in one run (2399 stock_changed, 1 price_changed)"
    )
    assert message.kind == "digest" and message.severity == "warning"
    assert message.delivery == "hook:digest-1-0"
    text = message.text
    assert "Events: stock_changed: 2399" in text and "Events: price_changed: 1" in text
    assert text.count("<b>plan-") == DIGEST_ITEMS  # the first few, one line each
    assert "... and 2390 more" in text
    assert "All of them: https://vs.example/api/v1/changes?after=0-1" in text
    assert "vultr-scraper changes --after 0-1" in text
    assert "<b>plan-" not in message.html and "&lt;b&gt;plan-0&lt;/b&gt;" in message.html


def test_a_webhook_digest_carries_the_digest_instead_of_an_event() -> None:
    sink = SinkConfig(name="hook", url="http://h/")
    message = compose_digest(a_digest(12, link=None), alert="a", sink="hook", key="digest-1-0")
    note = render(sink, None, message)
    document = msgspec.json.decode(note.body)
    assert "event" not in document
    assert document["digest"]["total"] == 12
    assert len(document["digest"]["items"]) == DIGEST_ITEMS
    assert note.headers[EVENT_HEADER] == "digest"
    assert "All of them" not in message.text  # no link when the server has no address


@pytest.mark.parametrize(
    ("http", "link"),
    [
        (
            HttpConfig(public_url="https://vs.example/"),
            "https://vs.example/api/v1/changes?after=1-2",
        ),
        (  # the link goes to chats and mailboxes: never with the password
            HttpConfig(public_url="https://bob:pw1234@vs.example/"),
            "https://bob:***@vs.example/api/v1/changes?after=1-2",
        ),
        (HttpConfig(listen="127.0.0.1:8080"), "http://127.0.0.1:8080/api/v1/changes?after=1-2"),
        (HttpConfig(listen=":9000"), "http://localhost:9000/api/v1/changes?after=1-2"),
        (HttpConfig(listen="[::1]:9000"), "http://[::1]:9000/api/v1/changes?after=1-2"),
        (HttpConfig(listen="unix:/run/vs.sock"), None),
        (HttpConfig(listen=""), None),
    ],
)
def test_the_feed_link(http: HttpConfig, link: str | None) -> None:
    assert feed_link(Config(http=http), "1-2") == link


@pytest.mark.parametrize(
    ("toml", "key"),
    [
        ('[[sinks]]\nname = "h"\nurl = "http://h/"\nstorm_limit = -1\n', "sinks[0].storm_limit"),
        ('[http]\npublic_url = "vs.example"\n', "http.public_url"),
    ],
)
def test_bad_storm_settings_are_named(tmp_path: Path, toml: str, key: str) -> None:
    path = tmp_path / "config.toml"
    path.write_text(toml)
    with pytest.raises(ConfigError, match=key.replace("[", r"\[").replace("]", r"\]")):
        load_config(path)


# -- the dispatcher on a real Redis -----------------------------------------------------------


@pytest.fixture
async def dispatcher(redis: Redis) -> AsyncIterator[tuple[dict[str, Any], Queue]]:
    queue = Queue()
    config = Config(
        alerts=[AlertConfig(name="stock", kinds=["stock_changed"], sinks=["pager", "archive"])],
        sinks=[
            SinkConfig(name="pager", url="http://p/", storm_limit=5),
            SinkConfig(name="archive", url="http://a/", storm_limit=0),
        ],
    )
    async with create_session(ClientConfig(rate_limit=0)) as session:
        ctx = make_context(
            config=config,
            secrets=Secrets(),
            redis=redis,
            http=HttpClient(session, config.client),
            enqueue=queue,
        )
        yield ctx, queue


async def test_dispatch_queues_one_digest_for_the_flooded_sink(
    dispatcher: tuple[dict[str, Any], Queue],
) -> None:
    ctx, queue = dispatcher
    feed = ChangeFeed(ctx["redis"], PREFIX)
    await feed.append([stock_event("baseline", True)])
    assert (await dispatch_alerts(ctx))["baseline"] is not None
    cursor = await DeliveryLedger(ctx["redis"], PREFIX).cursor()

    ids = await feed.append([stock_event(f"plan-{n}", False) for n in range(30)])
    result = await dispatch_alerts(ctx)

    assert (result["events"], result["enqueued"], result["digests"]) == (30, 31, {"pager": 30})
    digests = [job for job in queue.order if job.startswith("deliver:pager:")]
    assert digests == [f"deliver:pager:digest-{ids[0]}"]
    name, (sink, request) = queue.jobs[digests[0]]
    assert (name, sink) == ("deliver-digest", "pager")
    assert request["total"] == 30 and request["counts"] == {"stock_changed": 30}
    assert request["items"] == ids[:DIGEST_ITEMS]
    assert (request["after"], request["until"]) == (cursor, ids[-1])
    archive = [job for job in queue.order if job.startswith("deliver:archive:")]
    assert archive == [f"deliver:archive:{event_id}" for event_id in ids]  # one each, in order

    again = await dispatch_alerts(ctx)
    assert (again["events"], again["enqueued"]) == (0, 0)


# -- end to end: a real worker and a real receiver ---------------------------------------------


def worker_config(tmp_path: Path, hook_url: str) -> Path:
    schedules = "\n".join(
        f"[schedules.{name}]\nenabled = false"
        for name in (
            "scrape_catalog",
            "scrape_availability",
            "check_health",
            "dispatch_alerts",
            "prune",
        )
    )
    path = tmp_path / "config.toml"
    path.write_text(
        f"""
[vultr]
base_url = "http://127.0.0.1:9/v2"

[http]
listen = ""
public_url = "https://vs.example"

[health]
check_vultr_api = false

{schedules}

[[sinks]]
name = "hook"
url = "{hook_url}"
storm_limit = 5

[[alerts]]
name = "sold-out"
kinds = ["out_of_stock"]
sinks = ["hook"]
"""
    )
    return path


@pytest.mark.slow
async def test_a_storm_reaches_a_real_receiver_as_exactly_one_digest(
    redis_url: str, tmp_path: Path
) -> None:
    async with HttpTarget() as receiver, queue_for(redis_url) as queue:
        env = worker_env(
            redis_url,
            tmp_path / "state",
            VULTR_SCRAPER_CONFIG=str(worker_config(tmp_path, receiver.url("/hook"))),
        )
        feed = ChangeFeed(queue, PREFIX)
        with workers(WorkerProcess(env, tmp_path, jobs_module=None)) as (worker,):
            await worker.wait_ready()

            async def dispatch() -> dict[str, Any]:
                job_id = await enqueue_job(queue, "dispatch-alerts")
                assert job_id is not None
                job = Job(job_id, queue, _deserializer=deserialize)
                result: dict[str, Any] = await job.result(timeout=WAIT)
                return result

            await feed.append([stock_event("baseline", True)])
            after = (await dispatch())["baseline"]
            # A whole region sells out at once: 200 matches for one sink.
            ids = await feed.append([stock_event(f"plan-{n:03d}", False) for n in range(200)])
            await feed.append([stock_event("back", True)])  # not watched
            result = await dispatch()
            assert (result["events"], result["enqueued"], result["digests"]) == (
                201,
                1,
                {"hook": 200},
            )

            async def sent() -> bool:
                return await DeliveryLedger(queue, PREFIX).is_delivered("hook", f"digest-{ids[0]}")

            await eventually(sent, message=worker.output)

            async def idle() -> bool:
                return int(await queue.zcard("arq:queue")) == 0

            await eventually(idle, message=worker.output)

        [request] = receiver.requests_to("/hook")
        assert request.headers[EVENT_HEADER] == "digest"
        document = msgspec.json.decode(request.body)
        digest = document["digest"]
        assert digest["total"] == 200 and digest["counts"] == {"stock_changed": 200}
        assert [item["id"] for item in digest["items"]] == ids[:DIGEST_ITEMS]
        assert digest["link"] == f"https://vs.example/api/v1/changes?after={after}"
        assert document["text"].startswith("[sold-out] 200 matching events in one run")
