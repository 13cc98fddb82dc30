"""The messages a citizen writes from the webmail: a reply to a professional, or a first message
to a pharmacy (policy P3), as complete RFC 5322 messages for the submission pipeline.

- ``From:`` the acting profile's mailbox and name (a guardian writes from the child's mailbox:
  policy P9; the pipeline checks the guardian may), ``To:`` the professional's mailbox with the
  directory name.
- A reply: ``Subject: Re: …`` (one ``Re:``, RFC 5322 §3.6.5), ``In-Reply-To`` the original's
  Message-ID and ``References`` the original's references followed by it (§3.6.4; at most
  :data:`MAX_REFERENCES`, the first one kept).
- UTF-8 text, optional attachments (at most :data:`MAX_UPLOADS`, each at most
  ``webmail.upload_size``, the whole message at most ``limits.message_size``).
- Message-ID and Date are set here (the pipeline would add them, RFC 6409 §8.3, but the webmail
  needs the identifier to show and to record).

Invalid input raises :class:`ComposeError` with a French sentence. Pure: builds bytes, sends
nothing.
"""

from __future__ import annotations

import re
import secrets
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime

from .filenames import clean_filename

#: Files attached to one message.
MAX_UPLOADS = 5
#: Characters of a message's text (a letter, not a book).
MAX_BODY_CHARS = 100_000
#: Characters of a subject (RFC 5322 §2.1.1's 78-character line advice, folded: a few lines).
MAX_SUBJECT_CHARS = 200
#: Message-IDs kept in References (as the store's cache keeps them, RFC 5537 §3.4.4 trimming).
MAX_REFERENCES = 50
_MEDIA_TYPE = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]{0,126}/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}$")
_REPLY_PREFIX = re.compile(r"^\s*(re|tr|fwd?)\s*:\s*", re.IGNORECASE)


class ComposeError(Exception):
    """``text``: French, for the citizen."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


@dataclass(frozen=True, slots=True)
class Upload:
    filename: str
    content_type: str
    data: bytes


@dataclass(frozen=True, slots=True)
class Party:
    address: str
    name: str


@dataclass(frozen=True, slots=True)
class Original:
    """What a reply needs of the message it answers."""

    message_id: str  # without angle brackets; may be empty
    references: tuple[str, ...]
    subject: str


def reply_subject(subject: str) -> str:
    """``Re: <subject>`` with a single prefix (``RE:``, ``Re :``, ``TR:`` are not stacked)."""
    stripped = subject.strip()
    while True:
        shorter = _REPLY_PREFIX.sub("", stripped, count=1)
        if shorter == stripped:
            break
        stripped = shorter
    return f"Re: {stripped}" if stripped else "Re:"


def references_for(original: Original) -> list[str]:
    chain = [*original.references, original.message_id] if original.message_id else []
    chain = [identifier for identifier in chain if identifier]
    if len(chain) > MAX_REFERENCES:
        chain = [chain[0], *chain[-(MAX_REFERENCES - 1) :]]
    return chain


def single_line(text: str, limit: int) -> str:
    """One line of printable text for a header (a subject or a name taken from a message may
    hold line breaks, controls, U+2028…: they would end or corrupt the header field)."""
    printable = "".join(
        " " if unicodedata.category(character)[0] in ("C", "Z") else character for character in text
    )
    return " ".join(printable.split())[:limit]


def build_message(
    *,
    sender: Party,
    recipient: Party,
    subject: str,
    body: str,
    now: datetime,
    hostname: str,
    original: Original | None = None,
    uploads: list[Upload] | tuple[Upload, ...] = (),
    upload_size: int,
    message_size: int,
) -> tuple[bytes, str]:
    """The message's bytes (CRLF) and its Message-ID (without angle brackets)."""
    if len(body) > MAX_BODY_CHARS:
        raise ComposeError(f"Le message est trop long (au plus {MAX_BODY_CHARS} caractères).")
    if not body.strip() and not uploads:
        raise ComposeError("Le message est vide.")
    if len(uploads) > MAX_UPLOADS:
        raise ComposeError(f"Vous pouvez joindre au plus {MAX_UPLOADS} fichiers.")
    if original is not None:
        subject = reply_subject(original.subject)
    subject = single_line(subject, MAX_SUBJECT_CHARS)
    if not subject:
        raise ComposeError("Indiquez un objet.")
    message = EmailMessage()
    message["From"] = Address(display_name=single_line(sender.name, 200), addr_spec=sender.address)
    message["To"] = Address(
        display_name=single_line(recipient.name, 200), addr_spec=recipient.address
    )
    message["Subject"] = subject
    message["Date"] = format_datetime(now)
    message_id = f"{secrets.token_hex(16)}@{hostname}"
    message["Message-ID"] = f"<{message_id}>"
    if original is not None and original.message_id:
        message["In-Reply-To"] = f"<{original.message_id}>"
        message["References"] = " ".join(f"<{ref}>" for ref in references_for(original))
    message.set_content(body.replace("\r\n", "\n"), charset="utf-8")
    for upload in uploads:
        if len(upload.data) > upload_size:
            megabytes = upload_size // (1024 * 1024)
            raise ComposeError(
                f"Le fichier « {clean_filename(upload.filename)} » dépasse {megabytes} Mo."
            )
        media = upload.content_type.lower().split(";")[0].strip()
        if not _MEDIA_TYPE.match(media) or media.startswith(("multipart/", "message/")):
            media = "application/octet-stream"
        maintype, subtype = media.split("/")
        message.add_attachment(
            upload.data,
            maintype=maintype,
            subtype=subtype,
            filename=clean_filename(upload.filename),
        )
    raw = message.as_bytes(policy=SMTP)
    if len(raw) > message_size:
        megabytes = message_size // (1024 * 1024)
        raise ComposeError(f"Le message avec ses pièces jointes dépasse {megabytes} Mo.")
    return raw, message_id
