"""What the SMTP session and its handlers share: the state of one connection, the mail
transaction, and the handler interface (one handler for the inbound MTA, one for submission).

The session (``session.py``) speaks the wire: reading commands, framing replies, TLS, SASL
challenges, DATA. A handler decides: it gets parsed commands and returns replies (or raises
:class:`~pli.mailgateway.smtp.replies.SmtpError`). Handlers never touch the transport.
"""

from __future__ import annotations

import secrets
import ssl
from dataclasses import dataclass, field
from typing import Any, Protocol

from pli.certs.refusals import CertificateRefused
from pli.certs.verify import VerifiedPeer
from pli.mailbox.auth.sasl import Credentials

from .params import MailParams, RcptParams
from .replies import Reply


@dataclass
class Connection:
    """One client connection, as handlers see it."""

    listener: str
    peer_host: str
    peer_port: int
    id: str = field(default_factory=lambda: secrets.token_hex(6))
    helo: str = ""
    esmtp: bool = False
    tls: ssl.SSLObject | None = None  # set once TLS is active (STARTTLS or implicit)
    #: The client certificate, verified (None: none presented or not checked yet).
    client_certificate: VerifiedPeer | None = None
    #: Why the client certificate was refused, when it was.
    certificate_refusal: CertificateRefused | None = None
    principal: Any = None  # submission: pli.mailbox.auth.service.Principal once authenticated
    messages: int = 0  # messages accepted on this connection

    @property
    def tls_active(self) -> bool:
        return self.tls is not None

    @property
    def tls_description(self) -> str:
        """For Received: (RFC 8314 §4.3 style) "version cipher"."""
        if self.tls is None:
            return ""
        cipher = self.tls.cipher()
        return f"{self.tls.version()} {cipher[0] if cipher else ''}".strip()


@dataclass
class Recipient:
    address: str
    params: RcptParams
    decision: Any = None  # what the handler decided at RCPT (facts, policy decision, target)


@dataclass
class MailTransaction:
    sender: str  # "" for the null reverse-path
    params: MailParams
    recipients: list[Recipient] = field(default_factory=list)
    id: str = field(default_factory=lambda: secrets.token_hex(8))


class Handler(Protocol):
    """The decisions of one kind of listener."""

    def auth_mechanisms(self, connection: Connection) -> list[str]:
        """SASL mechanisms offered now (empty: AUTH is not offered)."""

    def auth_required(self) -> bool:
        """MAIL needs a successful AUTH first (submission)."""

    async def tls_established(self, connection: Connection) -> None:
        """TLS is up (after STARTTLS or at connect): check the client certificate."""

    async def authenticate(self, connection: Connection, credentials: Credentials) -> Any:
        """The principal for these credentials, or raise SmtpError."""

    async def mail(self, connection: Connection, sender: str, params: MailParams) -> Reply:
        """MAIL FROM; raise SmtpError to refuse."""

    async def rcpt(
        self, connection: Connection, transaction: MailTransaction, recipient: Recipient
    ) -> Reply:
        """RCPT TO; may set ``recipient.decision``. A positive reply adds the recipient."""

    async def data(
        self, connection: Connection, transaction: MailTransaction, message: bytes
    ) -> Reply:
        """The message of an accepted transaction: deliver it and return the final reply
        (250 only once it is committed)."""
