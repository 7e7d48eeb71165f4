"""Every sink kind against a real receiver on loopback: an SMTP server (aiosmtpd) for ``email``,
HTTP receivers for Apprise's HTTP-based services; the message itself as text and HTML."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import msgspec
import pytest
from redis.asyncio import Redis
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from tests.fakes.http_targets import HttpTarget, Reply
from tests.fakes.smtp_server import SmtpReceiver
from tests.fakes.tls import HAVE_OPENSSL, self_signed, server_context
from vultr_scraper_core.config import ClientConfig, Config, Secrets, SinkConfig
from vultr_scraper_core.http import (
    HttpClient,
    PermanentHttpError,
    TransientHttpError,
    create_session,
    is_transient,
)
from vultr_scraper_core.store.changes import ChangeEvent, ChangeFeed, EventKind
from vultr_scraper_core.store.deliveries import DeliveryLedger
from vultr_scraper_jobs.context import make_context
from vultr_scraper_jobs.notify import deliver_notification
from vultr_scraper_jobs.sinks import build_sink, compose
from vultr_scraper_jobs.sinks.smtp import message_id
from vultr_scraper_jobs.sinks.web import DELIVERY_HEADER, SIGNATURE_HEADER, render, verify

PASSWORD = "s3cret pass:word/with@odd&chars"
DOWN = ChangeEvent(
    kind=EventKind.ENDPOINT_DOWN,
    at=datetime(2026, 5, 1, 12, 0, tzinfo=UTC),
    subject="shop<script>alert(1)</script>",
    id="1714564800000-0",
    old="up",
    new="down",
    detail={
        "error": "status 503 not in [200] & <b>bold</b>",
        "url": "https://shop.example/h?a=1&b=2",
    },
)


@pytest.fixture
async def http() -> AsyncIterator[HttpClient]:
    config = ClientConfig(rate_limit=0)
    async with create_session(config) as session:
        yield HttpClient(session, config)


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    if not HAVE_OPENSSL:
        pytest.skip("needs the openssl CLI to make a certificate")
    return self_signed(tmp_path_factory.mktemp("smtp-tls"), "smtp", days=30)


def email_sink(port: int, **options: Any) -> SinkConfig:
    values: dict[str, Any] = {
        "name": "mail",
        "kind": "email",
        "host": "127.0.0.1",
        "port": port,
        "sender": "vultr-scraper <alerts@example.test>",
        "recipients": ["ops@example.test", "oncall@example.test"],
        "timeout": 5.0,
    }
    values.update(options)
    return SinkConfig(**values)


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def test_message_reads_as_text_and_escapes_html() -> None:
    message = compose(DOWN, alert="shop-down", sink="mail", now=DOWN.at)
    assert message.summary.startswith("[shop-down] endpoint shop<script>")
    assert message.text.splitlines()[0] == message.summary
    assert "Error: status 503 not in [200] & <b>bold</b>" in message.text
    assert "URL: https://shop.example/h?a=1&b=2" in message.text
    parser = _Text()
    parser.feed(message.html)
    # The external text is text in the HTML too: no injected element, the words intact.
    assert "script" not in parser.tags and "b" not in parser.tags
    shown = "".join(parser.parts)
    assert "shop<script>alert(1)</script>" in shown
    assert "status 503 not in [200] & <b>bold</b>" in shown
    assert message.severity == "failure"


def test_reminder_message_says_how_long() -> None:
    later = DOWN.at + timedelta(hours=2)
    message = compose(DOWN, alert="shop-down", sink="mail", reminder=2, now=later)
    assert message.delivery == "mail:1714564800000-0:reminder-2"
    assert message.summary.startswith("[shop-down] reminder: endpoint shop<script>")
    assert "is still DOWN for 2.0 h" in message.summary
    assert "Reminder: 2 (for 2.0 h)" in message.text


@pytest.mark.parametrize("security", ["starttls", "tls"])
async def test_email_over_tls_with_login(
    tmp_path: Path, certificate: tuple[Path, Path], http: HttpClient, security: str
) -> None:
    context = server_context(*certificate)
    tls = {"starttls": context} if security == "starttls" else {"implicit_tls": context}
    async with SmtpReceiver(login=("alerts", PASSWORD), **tls) as receiver:  # type: ignore[arg-type]
        sink = email_sink(
            receiver.port, security=security, username="alerts", ca_file=str(certificate[0])
        )
        message = compose(DOWN, alert="shop-down", sink="mail")
        receipt = await build_sink(sink, Secrets(sink_secrets={"mail": PASSWORD}), http).send(
            message
        )
    assert receipt.status == 250
    assert receiver.logins == ["alerts"]
    [mail] = receiver.messages
    assert receiver.envelopes == [
        ("alerts@example.test", ["ops@example.test", "oncall@example.test"])
    ]
    assert mail["Subject"] == message.summary
    assert mail["Message-ID"] == message_id("mail:1714564800000-0")
    assert mail["X-Vultr-Scraper-Delivery"] == "mail:1714564800000-0"
    assert mail.get_content_type() == "multipart/alternative"
    plain = mail.get_body(preferencelist=("plain",))
    html = mail.get_body(preferencelist=("html",))
    assert plain is not None and html is not None
    assert plain.get_content().replace("\r\n", "\n") == message.text
    assert "&lt;script&gt;" in html.get_content() and "<script>" not in html.get_content()


async def test_email_refused_login_is_permanent(
    certificate: tuple[Path, Path], http: HttpClient
) -> None:
    async with SmtpReceiver(login=("alerts", PASSWORD), starttls=server_context(*certificate)) as r:
        sink = email_sink(r.port, username="alerts", ca_file=str(certificate[0]))
        with pytest.raises(PermanentHttpError) as caught:
            await build_sink(sink, Secrets(sink_secrets={"mail": "wrong"}), http).send(
                compose(DOWN, alert="a", sink="mail")
            )
    assert caught.value.status == 535
    assert "wrong" not in str(caught.value) and PASSWORD not in str(caught.value)
    assert r.messages == []


async def test_email_untrusted_certificate_is_refused(
    certificate: tuple[Path, Path], http: HttpClient
) -> None:
    async with SmtpReceiver(starttls=server_context(*certificate)) as receiver:
        sink = email_sink(receiver.port)  # the system CAs do not know this certificate
        with pytest.raises(TransientHttpError) as caught:
            await build_sink(sink, Secrets(), http).send(compose(DOWN, alert="a", sink="mail"))
    assert "certificate" in str(caught.value).lower()
    assert receiver.messages == []


@pytest.mark.parametrize(
    ("refusal", "transient"),
    [
        ({"refuse_data": "451 4.3.0 mailbox busy, try later"}, True),
        ({"refuse_rcpt": "550 5.1.1 no such user"}, False),
        ({"refuse_data": "554 5.7.1 rejected as spam"}, False),
    ],
)
async def test_email_refusals_are_classified(
    http: HttpClient, refusal: dict[str, str], transient: bool
) -> None:
    async with SmtpReceiver(**refusal) as receiver:  # type: ignore[arg-type]
        sink = email_sink(receiver.port, security="none")
        with pytest.raises((TransientHttpError, PermanentHttpError)) as caught:
            await build_sink(sink, Secrets(), http).send(compose(DOWN, alert="a", sink="mail"))
    assert is_transient(caught.value) is transient
    assert next(iter(refusal.values())).split()[0] in str(caught.value)


async def test_email_server_gone_is_transient(http: HttpClient) -> None:
    async with SmtpReceiver() as receiver:
        port = receiver.port
    with pytest.raises(TransientHttpError) as caught:
        await build_sink(email_sink(port, security="none"), Secrets(), http).send(
            compose(DOWN, alert="a", sink="mail")
        )
    assert "connection failed" in str(caught.value)


async def test_deliver_job_sends_email_once(redis: Redis, http: HttpClient) -> None:
    [event_id] = await ChangeFeed(redis, "vs").append([DOWN])
    async with SmtpReceiver() as receiver:
        config = Config(sinks=[email_sink(receiver.port, security="none")])
        for _ in range(2):  # a duplicated job sends nothing the second time
            ctx = make_context(
                config=config, secrets=Secrets(), redis=redis, http=http, job_id="j1"
            )
            await deliver_notification(ctx, "mail", event_id, "shop-down")
    assert len(receiver.messages) == 1
    outcomes = [record.outcome for record in await DeliveryLedger(redis, "vs").recent()]
    assert outcomes == ["skipped", "delivered"]


# -- Apprise ----------------------------------------------------------------------------------
async def test_apprise_json_service_receives_the_message(http: HttpClient) -> None:
    async with HttpTarget() as receiver:
        url = f"json://127.0.0.1:{receiver.port}/apprise-hook"
        sink = SinkConfig(name="pager", kind="apprise", secret_file="unused-here")
        message = compose(DOWN, alert="shop-down", sink="pager")
        receipt = await build_sink(sink, Secrets(sink_secrets={"pager": url}), http).send(message)
    [request] = receiver.requests_to("/apprise-hook")
    document = msgspec.json.decode(request.body)
    assert document["title"] == message.summary
    assert document["message"] == message.text.rstrip("\n")
    assert document["type"] == "failure"
    assert "1 Apprise URL" in receipt.detail


async def test_apprise_several_urls_each_receive(http: HttpClient) -> None:
    async with HttpTarget() as first, HttpTarget() as second:
        urls = f"json://127.0.0.1:{first.port}/a\n  form://127.0.0.1:{second.port}/b\n"
        sink = SinkConfig(name="pager", kind="apprise", secret_file="x")
        await build_sink(sink, Secrets(sink_secrets={"pager": urls}), http).send(
            compose(DOWN, alert="a", sink="pager")
        )
        assert len(first.requests_to("/a")) == 1
        [form] = second.requests_to("/b")
    assert b"title=" in form.body and b"message=" in form.body


async def test_apprise_failure_is_transient_and_hides_the_url(http: HttpClient) -> None:
    async with HttpTarget() as receiver:
        receiver.reply("/token-abcdefghijklmnop", Reply(status=503, body=b"busy"))
        url = f"json://127.0.0.1:{receiver.port}/token-abcdefghijklmnop"
        sink = SinkConfig(name="pager", kind="apprise", secret_file="x")
        with pytest.raises(TransientHttpError) as caught:
            await build_sink(sink, Secrets(sink_secrets={"pager": url}), http).send(
                compose(DOWN, alert="a", sink="pager")
            )
    assert "503" in str(caught.value)
    assert "token-abcdefghijklmnop" not in str(caught.value)
    assert "apprise:json://" in str(caught.value)


async def test_apprise_unknown_url_is_permanent(http: HttpClient) -> None:
    sink = SinkConfig(name="pager", kind="apprise", secret_file="x")
    with pytest.raises(PermanentHttpError) as caught:
        await build_sink(sink, Secrets(sink_secrets={"pager": "nosuch://x/y"}), http).send(
            compose(DOWN, alert="a", sink="pager")
        )
    assert "nosuch://" in str(caught.value)


def test_webhook_body_writes_times_with_z() -> None:
    from vultr_scraper_jobs.sinks.web import render

    sent = datetime(2026, 5, 1, 12, 30, 15, 250000, tzinfo=UTC)
    message = compose(DOWN, alert="shop-down", sink="hook", now=sent)
    body = msgspec.json.decode(render(SinkConfig(name="hook", url="http://h/"), None, message).body)
    assert body["sent_at"] == "2026-05-01T12:30:15.250000Z"
    assert body["event"]["at"] == "2026-05-01T12:00:00Z"


@pytest.mark.parametrize(
    ("secret", "receiver_key"),
    [
        # A Standard Webhooks secret: receivers pass it as it is.
        ("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
        # An older plain secret keys the signature with its own bytes.
        ("correct horse battery staple", b"correct horse battery staple"),
    ],
)
def test_webhooks_carry_standard_webhooks_headers(secret: str, receiver_key: str | bytes) -> None:
    message = compose(DOWN, alert="shop-down", sink="hook")
    note = render(SinkConfig(name="hook", url="http://h/"), secret, message)
    headers = note.headers
    assert headers["webhook-id"] == headers[DELIVERY_HEADER] == "hook:1714564800000-0"
    assert headers["webhook-timestamp"] == str(int(message.sent_at.timestamp()))
    assert headers["webhook-signature"].startswith("v1,")
    assert Webhook(receiver_key).verify(note.body, headers) == msgspec.json.decode(note.body)
    assert verify(secret, note.body, headers[SIGNATURE_HEADER])  # the older header stays
    with pytest.raises(WebhookVerificationError):  # a changed body no longer verifies
        Webhook(receiver_key).verify(note.body.replace(b"DOWN", b"UP"), headers)
    unsigned = render(SinkConfig(name="hook", url="http://h/"), None, message).headers
    assert "webhook-signature" not in unsigned and SIGNATURE_HEADER not in unsigned
    assert unsigned["webhook-id"] == "hook:1714564800000-0"
