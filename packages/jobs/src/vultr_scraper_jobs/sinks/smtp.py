"""The ``email`` sink: one message over SMTP, as plain text with an HTML alternative.

``security = "starttls"`` (port 587 by default) upgrades the connection after EHLO and refuses
to go on without TLS; ``"tls"`` (port 465) speaks TLS from the first byte; ``"none"`` (port 25)
sends in the clear and is meant for a relay on the same host. The certificate is verified
against the system CAs, or only against ``ca_file``. The password comes from ``secret_file``.

Why not Apprise's ``mailto://``: it derives the plain-text part from the HTML (or sends one of
the two), keeps the password inside the URL (so it must be URL-encoded and is harder to hand
over as a systemd credential), cannot trust a private CA, and only says "failed", so a
refused login (retrying will not help) cannot be told from a server that is down for a minute.

Errors are classified like HTTP ones: an SMTP 4xx reply, a timeout or a lost connection is
transient; a 5xx reply (a refused login, an unknown recipient) is permanent.
"""

from __future__ import annotations

import hashlib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import format_datetime

import aiosmtplib

from vultr_scraper_core.config import SinkConfig, smtp_port
from vultr_scraper_core.http import PermanentHttpError, TransientHttpError
from vultr_scraper_jobs.sinks.base import Receipt
from vultr_scraper_jobs.sinks.message import Message
from vultr_scraper_jobs.sinks.web import DELIVERY_HEADER, EVENT_HEADER

SUBJECT_LIMIT = 200


def message_id(delivery: str) -> str:
    """A stable ``Message-ID`` per delivery: a retried send is recognisably the same mail."""
    digest = hashlib.sha256(delivery.encode()).hexdigest()[:32]
    return f"<{digest}@vultr-scraper.invalid>"


def build_mail(sink: SinkConfig, message: Message) -> EmailMessage:
    mail = EmailMessage()
    subject = message.summary
    mail["Subject"] = subject if len(subject) <= SUBJECT_LIMIT else subject[:197] + "..."
    mail["From"] = sink.sender
    mail["To"] = ", ".join(sink.recipients)
    mail["Date"] = format_datetime(message.sent_at)
    mail["Message-ID"] = message_id(message.delivery)
    if message.reminder:
        # Mail clients thread a condition's reminders under its first notice.
        opening = message_id(message.delivery.rsplit(":reminder-", 1)[0])
        mail["In-Reply-To"] = opening
        mail["References"] = opening
    mail[DELIVERY_HEADER] = message.delivery
    mail[EVENT_HEADER] = message.kind
    for name, value in sink.headers.items():
        mail[name] = value
    mail.set_content(message.text)
    mail.add_alternative(message.html, subtype="html")
    return mail


@dataclass(frozen=True)
class EmailSink:
    config: SinkConfig
    password: str | None

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def address(self) -> str:
        return f"smtp://{self.config.host}:{smtp_port(self.config)}"

    async def send(self, message: Message) -> Receipt:
        sink = self.config
        context = (
            ssl.create_default_context(cafile=sink.ca_file or None)
            if sink.security != "none"
            else None
        )
        try:
            _, reply = await aiosmtplib.send(
                build_mail(sink, message),
                hostname=sink.host,
                port=smtp_port(sink),
                username=sink.username or None,
                password=self.password if sink.username else None,
                use_tls=sink.security == "tls",
                start_tls=True if sink.security == "starttls" else False,
                tls_context=context,
                timeout=sink.timeout,
            )
        except aiosmtplib.SMTPResponseException as error:
            reason = f"SMTP {error.code} {error.message}"
            raise (TransientHttpError if 400 <= error.code < 500 else PermanentHttpError)(
                reason, url=self.address, status=error.code
            ) from None
        except aiosmtplib.SMTPRecipientsRefused as error:
            codes = [refused.code for refused in error.recipients]
            transient = all(400 <= code < 500 for code in codes)
            reason = "; ".join(f"{r.recipient}: {r.code} {r.message}" for r in error.recipients)
            raise (TransientHttpError if transient else PermanentHttpError)(
                f"recipients refused: {reason}", url=self.address
            ) from None
        except (aiosmtplib.SMTPTimeoutError, TimeoutError) as error:
            raise TransientHttpError(f"timed out: {error}", url=self.address) from None
        except (aiosmtplib.SMTPConnectError, aiosmtplib.SMTPServerDisconnected, OSError) as error:
            raise TransientHttpError(f"connection failed: {error}", url=self.address) from None
        except aiosmtplib.SMTPException as error:  # e.g. no STARTTLS offered, no AUTH method
            raise PermanentHttpError(str(error), url=self.address) from None
        return Receipt(status=250, detail=reply.strip())
