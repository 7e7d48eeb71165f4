"""A real SMTP server on loopback (aiosmtpd in the test's event loop) that keeps what it receives.

It can offer STARTTLS (``starttls``) or speak TLS from the start (``implicit_tls``), require a
login, and refuse recipients or data with a scripted reply, e.g. ``"451 4.3.0 try later"``.
"""

from __future__ import annotations

import asyncio
import ssl
import warnings
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session


@dataclass
class SmtpReceiver:
    starttls: ssl.SSLContext | None = None
    implicit_tls: ssl.SSLContext | None = None
    login: tuple[str, str] | None = None
    refuse_rcpt: str | None = None
    refuse_data: str | None = None
    messages: list[EmailMessage] = field(default_factory=list)
    envelopes: list[tuple[str, list[str]]] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)
    port: int = 0
    _server: asyncio.Server | None = None

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        if self.refuse_rcpt:
            return self.refuse_rcpt
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.refuse_data:
            return self.refuse_data
        content = envelope.original_content or b""
        mail = message_from_bytes(content, policy=policy.default)
        assert isinstance(mail, EmailMessage)
        self.messages.append(mail)
        self.envelopes.append((str(envelope.mail_from), list(envelope.rcpt_tos)))
        return "250 OK queued"

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        ok = (
            isinstance(data, LoginPassword)
            and self.login is not None
            and (data.login.decode(), data.password.decode()) == self.login
        )
        if ok:
            self.logins.append(self.login[0] if self.login else "")
        return AuthResult(success=ok, handled=False)

    def _protocol(self) -> SMTP:
        with warnings.catch_warnings():
            # Said when AUTH is required without STARTTLS, which is the implicit-TLS case here.
            warnings.filterwarnings("ignore", "Requiring AUTH while not requiring TLS")
            return self._smtp()

    def _smtp(self) -> SMTP:
        return SMTP(
            self,
            hostname="receiver.test",
            tls_context=self.starttls,
            require_starttls=self.starttls is not None,
            auth_required=self.login is not None,
            # Over implicit TLS aiosmtpd cannot tell the connection is encrypted.
            auth_require_tls=self.login is not None and self.implicit_tls is None,
            authenticator=self._authenticate if self.login is not None else None,
        )

    async def __aenter__(self) -> SmtpReceiver:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            self._protocol, "127.0.0.1", 0, ssl=self.implicit_tls
        )
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
