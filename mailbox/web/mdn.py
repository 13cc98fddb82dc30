"""Read receipts: Message Disposition Notifications (RFC 8098), as mssante.md §6 describes them.

- A message asks for one with ``Disposition-Notification-To`` (RFC 8098 §2.1). With
  ``webmail.read_receipts``:

  - ``always``: sent when the message is first displayed, ``Disposition:
    manual-action/MDN-sent-automatically; displayed``, unless the address differs from the
    ``Return-Path`` (RFC 8098 §2.1, mssante.md §6: never automatically then): the citizen is
    asked instead;
  - ``ask``: the citizen chooses; sending is ``manual-action/MDN-sent-manually; displayed``;
  - ``never``: nothing is sent, nothing asked.

- At most one per message and mailbox, sent or declined (RFC 8098 §2.1: "MDNs SHOULD NOT be
  sent automatically if the address … " and §9: at most one per disposition): the
  ``webmail_read_receipts`` row is claimed before sending, so a double click or two tabs send
  one.
- The MDN is ``multipart/report; report-type=disposition-notification`` (RFC 6522) with a
  French human-readable part and the ``message/disposition-notification`` fields
  (``Reporting-UA``, ``Original-Recipient`` when the message had one, ``Final-Recipient``,
  ``Original-Message-ID``, ``Disposition``), sent with the null envelope sender (RFC 8098 §3)
  through the submission pipeline, which asks the policy like for any other message.

What this module must not do: decide policy, or send by itself (the caller submits).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage, Message
from email.mime.multipart import MIMEMultipart
from email.mime.nonmultipart import MIMENonMultipart
from email.mime.text import MIMEText
from email.policy import SMTP
from email.utils import format_datetime

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from pli.mailbox.mime.addresses import parse_address_list
from pli.mailbox.mime.headers import HeaderSection
from pli.mailbox.store import Store

from .compose import MAX_SUBJECT_CHARS, single_line
from .tables import ReadReceiptRow

ALWAYS, ASK, NEVER = "always", "ask", "never"
SENT, DECLINED, SENDING, REFUSED = "sent", "declined", "sending", "refused"
#: RFC 8098 §3.2.6: action-mode/sending-mode; disposition-type.
DISPOSITION_AUTOMATIC = "manual-action/MDN-sent-automatically; displayed"
DISPOSITION_MANUAL = "manual-action/MDN-sent-manually; displayed"


@dataclass(frozen=True, slots=True)
class ReceiptRequest:
    """What a message asks: where to send the receipt, and whether it may go automatically."""

    address: str
    matches_return_path: bool


def first_address(value: str | None) -> str | None:
    for address in parse_address_list(value) or []:
        mailbox, host = address[2], address[3]
        if mailbox and host and host != "MISSING_DOMAIN" and mailbox != "MISSING_MAILBOX":
            return f"{mailbox}@{host}".lower()
    return None


def receipt_request(header: HeaderSection) -> ReceiptRequest | None:
    """The message's Disposition-Notification-To, if any (RFC 8098 §2.1)."""
    address = first_address(header.first("disposition-notification-to"))
    if address is None:
        return None
    return_path = first_address(header.first("return-path"))
    return ReceiptRequest(address, return_path == address)


def mode_for(setting: str, request: ReceiptRequest | None) -> str:
    """``always`` (send on display), ``ask`` or ``never`` for this message."""
    if request is None or setting == NEVER:
        return NEVER
    if setting == ALWAYS and request.matches_return_path:
        return ALWAYS
    return ASK


def message_key(message_id: str, blob_id: str) -> str:
    """What identifies "this message" for the once-only rule: its Message-ID, else its file."""
    source = f"mid:{message_id}" if message_id else f"blob:{blob_id}"
    return hashlib.sha256(source.encode("utf-8", "surrogateescape")).hexdigest()


@dataclass(frozen=True, slots=True)
class Receipt:
    sender_address: str  # the citizen's mailbox (From:)
    sender_name: str
    to: str  # the Disposition-Notification-To address
    original_message_id: str  # without angle brackets
    original_recipient: str | None  # the Original-Recipient field of the message, if any
    subject: str  # of the original, decoded
    displayed_at: datetime
    automatic: bool


def build_mdn(receipt: Receipt, *, hostname: str) -> bytes:
    """The MDN's bytes (CRLF)."""
    subject = single_line(receipt.subject, MAX_SUBJECT_CHARS)
    report = MIMEMultipart("report", report_type="disposition-notification")
    human = (
        f"Votre message « {subject} » a été affiché par son destinataire le "
        f"{receipt.displayed_at.strftime('%d/%m/%Y à %H:%M')} (UTC).\n\n"
        "Cet accusé de lecture indique seulement que le message a été affiché ; il ne signifie "
        "pas qu'il a été lu ni compris.\n"
    )
    report.attach(MIMEText(human, "plain", "utf-8"))
    fields = [f"Reporting-UA: {hostname}; pli webmail"]
    if receipt.original_recipient:
        fields.append(f"Original-Recipient: {receipt.original_recipient}")
    fields += [
        f"Final-Recipient: rfc822;{receipt.sender_address}",
    ]
    if receipt.original_message_id:
        fields.append(f"Original-Message-ID: <{receipt.original_message_id}>")
    fields.append(
        f"Disposition: {DISPOSITION_AUTOMATIC if receipt.automatic else DISPOSITION_MANUAL}"
    )
    notification = MIMENonMultipart("message", "disposition-notification")
    notification.set_payload("\r\n".join(fields) + "\r\n")
    report.attach(notification)
    outer = EmailMessage()
    outer["From"] = Address(
        display_name=single_line(receipt.sender_name, MAX_SUBJECT_CHARS),
        addr_spec=receipt.sender_address,
    )
    outer["To"] = receipt.to
    outer["Subject"] = single_line(f"Accusé de lecture : {subject}", MAX_SUBJECT_CHARS)
    outer["Date"] = format_datetime(receipt.displayed_at)
    outer["Message-ID"] = f"<{secrets.token_hex(16)}@{hostname}>"
    if receipt.automatic:
        outer["Auto-Submitted"] = "auto-replied"  # RFC 3834 §5
    head = outer.as_bytes(policy=SMTP).split(b"\r\n\r\n", 1)[0]
    body: Message = report
    return head + b"\r\n" + body.as_bytes(policy=SMTP)


class ReceiptBook:
    """The once-only record (``webmail_read_receipts``)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def state(self, account_id: int, key: str) -> str | None:
        async with self.store.db.read() as conn:
            found = await conn.scalar(
                select(ReadReceiptRow.state).where(
                    ReadReceiptRow.account_id == account_id, ReadReceiptRow.message_key == key
                )
            )
        return str(found) if found is not None else None

    async def claim(
        self, account_id: int, key: str, state: str, *, actor: str, at: datetime
    ) -> bool:
        """Record ``state`` (sending or declined) unless a decision exists; True if claimed."""
        try:
            async with self.store.transaction() as tx:
                await tx.conn.execute(
                    insert(ReadReceiptRow).values(
                        account_id=account_id, message_key=key, state=state, actor=actor, at=at
                    )
                )
        except IntegrityError:
            return False
        return True

    async def settle(self, account_id: int, key: str, state: str | None) -> None:
        """After a send: ``sent``, ``refused`` (the policy said no: not asked again), or None
        to release the claim (it failed for now: the citizen may try again)."""
        condition = (ReadReceiptRow.account_id == account_id) & (ReadReceiptRow.message_key == key)
        async with self.store.transaction() as tx:
            if state is None:
                await tx.conn.execute(delete(ReadReceiptRow).where(condition))
            else:
                await tx.conn.execute(update(ReadReceiptRow).where(condition).values(state=state))
