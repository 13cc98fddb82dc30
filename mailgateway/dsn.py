"""Delivery status notifications (RFC 3464 format, RFC 3461 semantics): the "accusé de
réception" of MSSanté (mssante.md §6) on success, and the report of failures and delays.

:func:`build_dsn` writes a ``multipart/report; report-type=delivery-status`` message: a
human-readable part (French, then English), the ``message/delivery-status`` part (per-message
fields, then per-recipient fields: Original-Recipient from ORCPT, Final-Recipient, Action,
Status, Remote-MTA, Diagnostic-Code, Last-Attempt-Date, Will-Retry-Until), and the original
message: whole (``message/rfc822``) only for a failure or delay with ``RET=FULL``, its header
otherwise (``text/rfc822-headers``; health data stays out of reports unless asked for).

:func:`wants_report` says whether a recipient's NOTIFY asks for a report of an action
(RFC 3461 §4.1: absent NOTIFY means FAILURE and, our choice as the RFC allows, DELAY; NEVER means
none). A DSN is never sent to the null reverse-path (RFC 3461 §6.2: that is how loops are
avoided: a DSN itself has the null sender).

Pure: builds bytes, sends nothing.
"""

from __future__ import annotations

import quopri
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.header import Header
from email.utils import format_datetime

from pli.mailbox.mime.headers import header_end

from .smtp.params import xtext_encode

#: RFC 3464 §2.3.3 Action values pli reports.
FAILED, DELAYED, DELIVERED, RELAYED = "failed", "delayed", "delivered", "relayed"
_NOTIFY_OF = {FAILED: "FAILURE", DELAYED: "DELAY", DELIVERED: "SUCCESS", RELAYED: "SUCCESS"}
#: RFC 3461 §4.1: with no NOTIFY the MTA reports failures, and may report delays.
DEFAULT_NOTIFY = ("FAILURE", "DELAY")

_SUBJECTS = {
    FAILED: "Non remis / Undelivered Mail Returned to Sender",
    DELAYED: "Remise retardée / Delayed Mail (still being retried)",
    DELIVERED: "Accusé de réception / Delivery Status Notification (Success)",
    RELAYED: "Remis au domaine destinataire / Delivery Status Notification (Relayed)",
}
_EXPLANATIONS = {
    FAILED: (
        "Votre message n'a pas pu être remis au(x) destinataire(s) ci-dessous.",
        "Your message could not be delivered to the recipient(s) below.",
    ),
    DELAYED: (
        "Votre message n'a pas encore pu être remis ; de nouvelles tentatives auront lieu.",
        "Your message has not been delivered yet; delivery will be retried.",
    ),
    DELIVERED: (
        "Votre message a été remis dans la boîte du ou des destinataire(s) ci-dessous.",
        "Your message was delivered to the mailbox of the recipient(s) below.",
    ),
    RELAYED: (
        "Votre message a été transmis au serveur du destinataire, qui ne renvoie pas "
        "d'accusé de réception.",
        "Your message was relayed to a server that does not return delivery notifications.",
    ),
}


@dataclass(frozen=True, slots=True)
class RecipientReport:
    """One recipient's outcome (RFC 3464 §2.3)."""

    address: str  # Final-Recipient
    action: str  # failed, delayed, delivered, relayed
    status: str  # enhanced status code, e.g. "5.7.1"
    diagnostic: str = ""  # the reply text, e.g. "550 5.7.1 ..." (Diagnostic-Code: smtp;)
    orcpt: str | None = None  # "rfc822;addr" from ORCPT
    remote_mta: str = ""
    last_attempt: datetime | None = None
    will_retry_until: datetime | None = None


@dataclass(frozen=True, slots=True)
class OriginalEnvelope:
    sender: str
    envid: str | None = None
    ret: str | None = None  # "FULL" or "HDRS"
    received_from: str = ""  # the client's EHLO name and address
    arrival: datetime | None = None


def wants_report(action: str, notify: Sequence[str] | None) -> bool:
    """Whether a recipient's NOTIFY asks for a report of ``action`` (RFC 3461 §4.1)."""
    wanted = DEFAULT_NOTIFY if notify is None else tuple(notify)
    return "NEVER" not in wanted and _NOTIFY_OF[action] in wanted


def _date(moment: datetime) -> str:
    return format_datetime(moment.astimezone(UTC))


def _address_field(name: str, address: str) -> str:
    """RFC 3464 §2.3.2: "rfc822;" and the address; a non-ASCII one as xtext (RFC 6533 needs
    message/global-delivery-status, which is not produced)."""
    shown = address if address.isascii() else xtext_encode(address)
    return f"{name}: rfc822;{shown}"


def _one_line(text: str) -> str:
    return " ".join("".join(c if " " <= c <= "~" else "?" for c in text).split())[:900]


def build_dsn(
    *,
    reporting_mta: str,
    original: OriginalEnvelope,
    recipients: Sequence[RecipientReport],
    message: bytes,
    now: datetime | None = None,
) -> bytes:
    """The DSN message (CRLF line ends) for ``recipients`` of ``message``; all share one
    action kind for the subject (the first recipient's)."""
    if not original.sender:
        raise ValueError("no DSN is ever sent to the null reverse-path (RFC 3461 §6.2)")
    if not recipients:
        raise ValueError("a DSN reports at least one recipient")
    now = now or datetime.now(UTC)
    action = recipients[0].action
    boundary = f"=_pli_dsn_{secrets.token_hex(12)}"
    message_id = f"<dsn.{secrets.token_hex(12)}@{reporting_mta}>"
    french, english = _EXPLANATIONS[action]
    human = [french, english, ""]
    for recipient in recipients:
        line = f"  <{recipient.address}>: {recipient.action} ({recipient.status})"
        if recipient.diagnostic:
            line += f" {_one_line(recipient.diagnostic)}"
        human.append(line)
    status = [f"Reporting-MTA: dns; {reporting_mta}"]
    if original.envid:
        status.append(f"Original-Envelope-Id: {xtext_encode(original.envid)}")
    if original.received_from:
        status.append(f"Received-From-MTA: dns; {_one_line(original.received_from)}")
    if original.arrival is not None:
        status.append(f"Arrival-Date: {_date(original.arrival)}")
    for recipient in recipients:
        status.append("")
        if recipient.orcpt:
            addr_type, _, address = recipient.orcpt.partition(";")
            status.append(f"Original-Recipient: {addr_type};{xtext_encode(address)}")
        status += [
            _address_field("Final-Recipient", recipient.address),
            f"Action: {recipient.action}",
            f"Status: {recipient.status}",
        ]
        if recipient.remote_mta:
            status.append(f"Remote-MTA: dns; {recipient.remote_mta}")
        if recipient.diagnostic:
            status.append(f"Diagnostic-Code: smtp; {_one_line(recipient.diagnostic)}")
        if recipient.last_attempt is not None:
            status.append(f"Last-Attempt-Date: {_date(recipient.last_attempt)}")
        if recipient.will_retry_until is not None:
            status.append(f"Will-Retry-Until: {_date(recipient.will_retry_until)}")
    full = original.ret == "FULL" and action in (FAILED, DELAYED)
    returned = message if full else message[: header_end(message, 0, len(message))]
    returned_type = "message/rfc822" if full else "text/rfc822-headers"
    head = [
        f"From: Mail Delivery System <MAILER-DAEMON@{reporting_mta}>",
        f"To: <{original.sender}>",
        f"Subject: {Header(_SUBJECTS[action], 'utf-8').encode()}",
        f"Date: {_date(now)}",
        f"Message-ID: {message_id}",
        "MIME-Version: 1.0",
        "Auto-Submitted: auto-replied",  # RFC 3834 §5
        f'Content-Type: multipart/report; report-type=delivery-status; boundary="{boundary}"',
        "",
        "This is a delivery status notification (RFC 3464).",
        "",
        f"--{boundary}",
        "Content-Type: text/plain; charset=utf-8",
        "Content-Transfer-Encoding: quoted-printable",
        "",
        _quoted_printable("\r\n".join(human)),
        "",
        f"--{boundary}",
        "Content-Type: message/delivery-status",
        "",
        *status,
        "",
        f"--{boundary}",
        f"Content-Type: {returned_type}",
        "",
    ]
    text = "\r\n".join(head).encode("utf-8") + b"\r\n"
    if returned and not returned.endswith(b"\r\n"):
        returned += b"\r\n"
    return text + returned + f"\r\n--{boundary}--\r\n".encode()


def _quoted_printable(text: str) -> str:
    """The human-readable part stays 7-bit (a DSN must reach servers without 8BITMIME)."""
    encoded = quopri.encodestring(text.replace("\r\n", "\n").encode("utf-8"))
    return encoded.decode("ascii").replace("\n", "\r\n").rstrip("\r\n")
