"""One delivery attempt to one host: SMTP over STARTTLS with our operator certificate as client
certificate, the server's certificate verified (chain, revocation) and its DN checked against the
whitelist for the recipient domain, then MAIL, one RCPT per recipient (with the DSN parameters
when the server offers DSN, RFC 3461 §5.1), DATA.

Result per recipient: the reply it got (RCPT, or DATA for those accepted). A failure before the
transaction (connection refused, TLS or trust refused, timeout) applies to every recipient and
is temporary: the caller tries the next host, then retries later.

Built on aiosmtplib (keyword-only arguments). This module does not touch the database.
"""

from __future__ import annotations

import contextlib
import re
import ssl
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import aiosmtplib
import structlog

from pli.mailgateway.routing import Hop
from pli.mailgateway.smtp.params import xtext_encode

log = structlog.get_logger(__name__)

_ENHANCED = re.compile(r"^([245])\.(\d{1,3})\.(\d{1,3})\b")

#: Checks the server's certificate after STARTTLS: None when trusted, else why not.
PeerCheck = Callable[[ssl.SSLObject | None], Awaitable[str | None]]


@dataclass(frozen=True, slots=True)
class Reply:
    code: int
    text: str

    @property
    def enhanced(self) -> str:
        """The enhanced status code of the reply text (RFC 3463), or one derived from the basic
        code when the server gave none."""
        match = _ENHANCED.match(self.text)
        if match:
            return match.group(0)
        return {2: "2.0.0", 4: "4.0.0", 5: "5.0.0"}.get(self.code // 100, "4.0.0")

    @property
    def line(self) -> str:
        return f"{self.code} {' '.join(self.text.split())}"[:900]

    @property
    def positive(self) -> bool:
        return 200 <= self.code < 300

    @property
    def permanent(self) -> bool:
        return self.code >= 500


@dataclass(frozen=True, slots=True)
class OutgoingRecipient:
    id: int
    address: str
    notify: tuple[str, ...] | None = None
    orcpt: str | None = None


@dataclass
class Attempt:
    """What happened: ``failure`` (the whole attempt failed before a transaction) or a reply
    per recipient id."""

    host: str
    failure: Reply | None = None
    replies: dict[int, Reply] = field(default_factory=dict)
    dsn_offered: bool = False


def _failure(host: str, code: int, text: str) -> Attempt:
    return Attempt(host, failure=Reply(code, text))


@dataclass(frozen=True, slots=True)
class Outgoing:
    """What one attempt sends: the envelope (with its DSN parameters) and the message."""

    sender: str
    recipients: Sequence[OutgoingRecipient]
    message: bytes
    envid: str | None = None
    ret: str | None = None
    eight_bit: bool = False
    smtputf8: bool = False


@dataclass(frozen=True, slots=True)
class Security:
    """How the connection is protected: our client context, the check of the server's
    certificate, and whether STARTTLS is required."""

    tls_context: ssl.SSLContext
    check_peer: PeerCheck
    require_tls: bool = True


async def transfer(
    hop: Hop,
    outgoing: Outgoing,
    security: Security,
    *,
    local_hostname: str,
    command_timeout: float = 300.0,
    connect_timeout: float = 30.0,
) -> Attempt:
    client = aiosmtplib.SMTP(
        hostname=hop.address,
        port=hop.port,
        local_hostname=local_hostname,
        timeout=command_timeout,
        start_tls=False,
        tls_context=security.tls_context,
    )
    try:
        await client.connect(timeout=connect_timeout)
    except (aiosmtplib.SMTPException, OSError) as error:
        reason = type(error).__name__
        return _failure(hop.host, 421, f"4.4.1 cannot connect to {hop.host}: {reason}")
    try:
        return await _session(client, hop, outgoing, security, command_timeout)
    except aiosmtplib.SMTPResponseException as error:
        return _failure(hop.host, error.code, error.message)
    except (aiosmtplib.SMTPException, OSError, ssl.SSLError) as error:
        reason = type(error).__name__
        return _failure(hop.host, 421, f"4.4.2 connection with {hop.host} failed: {reason}")
    finally:
        client.close()


async def _session(
    client: aiosmtplib.SMTP,
    hop: Hop,
    outgoing: Outgoing,
    security: Security,
    command_timeout: float,
) -> Attempt:
    recipients, message = outgoing.recipients, outgoing.message
    await client.ehlo()
    if client.supports_extension("starttls"):
        await client.starttls(tls_context=security.tls_context, server_hostname=hop.host)
        refusal = await security.check_peer(client.get_transport_info("ssl_object"))
        if refusal is not None:
            with contextlib.suppress(aiosmtplib.SMTPException, OSError):
                await client.quit()
            return _failure(hop.host, 454, f"4.7.5 {refusal}")
    elif security.require_tls:  # MSSanté: never in clear between operators
        return _failure(hop.host, 454, f"4.7.10 {hop.host} does not offer STARTTLS")
    await client.ehlo()
    if outgoing.smtputf8 and not client.supports_extension("smtputf8"):
        reply = Reply(553, f"5.6.7 {hop.host} does not support SMTPUTF8")
        return Attempt(hop.host, replies={r.id: reply for r in recipients})
    dsn = client.supports_extension("dsn")
    options = [f"SIZE={len(message)}"] if client.supports_extension("size") else []
    if outgoing.eight_bit and client.supports_extension("8bitmime"):
        options.append("BODY=8BITMIME")
    if outgoing.smtputf8:
        options.append("SMTPUTF8")
    if dsn and outgoing.ret:
        options.append(f"RET={outgoing.ret}")
    if dsn and outgoing.envid:
        options.append(f"ENVID={xtext_encode(outgoing.envid)}")
    try:
        await client.mail(outgoing.sender, options=options, encoding="utf-8")
    except aiosmtplib.SMTPSenderRefused as error:
        reply = Reply(error.code, error.message)
        return Attempt(hop.host, replies={r.id: reply for r in recipients}, dsn_offered=dsn)
    attempt = Attempt(hop.host, dsn_offered=dsn)
    accepted: list[OutgoingRecipient] = []
    for recipient in recipients:
        rcpt_options = []
        if dsn and recipient.notify:
            rcpt_options.append(f"NOTIFY={','.join(recipient.notify)}")
        if dsn and recipient.orcpt:
            addr_type, _, address = recipient.orcpt.partition(";")
            rcpt_options.append(f"ORCPT={addr_type};{xtext_encode(address)}")
        try:
            response = await client.rcpt(recipient.address, options=rcpt_options, encoding="utf-8")
        except aiosmtplib.SMTPRecipientRefused as error:
            attempt.replies[recipient.id] = Reply(error.code, error.message)
            continue
        attempt.replies[recipient.id] = Reply(response.code, response.message)
        accepted.append(recipient)
    if not accepted:
        with contextlib.suppress(aiosmtplib.SMTPException, OSError):
            await client.rset()
            await client.quit()
        return attempt
    try:
        response = await client.data(message, timeout=2 * command_timeout)  # RFC 5321 §4.5.3.2.6
        final = Reply(response.code, response.message)
    except aiosmtplib.SMTPDataError as error:
        final = Reply(error.code, error.message)
    for recipient in accepted:
        attempt.replies[recipient.id] = final
    with contextlib.suppress(aiosmtplib.SMTPException, OSError):
        await client.quit()
    return attempt
