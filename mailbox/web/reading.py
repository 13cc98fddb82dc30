"""A stored message as the webmail shows it: decoded header fields, the text or the sanitised
HTML body, the attachments, what a reply needs, and whether a read receipt is asked.

Built from the message's bytes and its cached MIME tree; pure (no store access), never raises on
any message: a broken part gives an empty text, never an error page.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime

from pli.mailbox.mime.addresses import parse_address_list
from pli.mailbox.mime.cache import message_ids
from pli.mailbox.mime.headers import HeaderSection, parse_header
from pli.mailbox.mime.structure import Part
from pli.mailbox.mime.text import decode_header_text, parse_date

from . import htmlsafe, parts
from .compose import Original
from .mdn import ReceiptRequest, first_address, receipt_request

#: Bytes of embedded (``cid:``) images put inline into one HTML body, all together.
MAX_EMBEDDED_IMAGES_BYTES = 5 * 1024 * 1024
NO_SUBJECT = "(sans objet)"


@dataclass(frozen=True, slots=True)
class MessageView:
    subject: str
    sender_address: str
    sender_header_name: str
    date: datetime | None
    text: str | None  # the plain text body (shown on the page)
    text_truncated: bool
    has_html: bool  # an HTML body to show in the sandboxed frame
    attachments: tuple[parts.AttachmentInfo, ...]
    original: Original
    receipt: ReceiptRequest | None
    original_recipient: str | None


def _part_bytes(raw: bytes, part: Part) -> bytes:
    start, end = part["body"]
    return parts.decode_transfer(raw[start:end], part["encoding"])


def view(raw: bytes, structure: Part) -> MessageView:
    header = parse_header(raw)
    found = parts.bodies(structure)
    text = None
    truncated = False
    if found.text is not None:
        text = parts.decode_text(_part_bytes(raw, found.text), found.text)
        if len(text) > parts.MAX_TEXT_SHOWN:
            text, truncated = text[: parts.MAX_TEXT_SHOWN], True
    elif found.html is None:
        text = ""
    subject = decode_header_text(header.first("subject")) or ""
    sender = first_address(header.first("from")) or ""
    return MessageView(
        subject=" ".join(subject.split()) or NO_SUBJECT,
        sender_address=sender,
        sender_header_name=_display_name(header),
        date=parse_date(header.first("date")),
        text=text,
        text_truncated=truncated,
        has_html=found.text is None and found.html is not None,
        attachments=tuple(parts.attachment_list(structure)),
        original=Original(
            message_id=next(iter(message_ids(header.first("message-id"))), ""),
            references=tuple(message_ids(header.first("references"))),
            subject=" ".join(subject.split()),
        ),
        receipt=receipt_request(header),
        original_recipient=_original_recipient(header),
    )


def _display_name(header: HeaderSection) -> str:
    for address in parse_address_list(header.first("from")) or []:
        name = address[0]
        if isinstance(name, str):
            return decode_header_text(name) or ""
    return ""


def _original_recipient(header: HeaderSection) -> str | None:
    value = header.first("original-recipient")
    if not value:
        return None
    cleaned = " ".join(value.split())
    usable = cleaned.isascii() and cleaned.isprintable() and len(cleaned) <= 400
    return cleaned if usable else None


def html_body(raw: bytes, structure: Part) -> tuple[str, int] | None:
    """The sanitised HTML body and the number of images blocked; None without an HTML body."""
    found = parts.bodies(structure)
    if found.html is None:
        return None
    html = parts.decode_text(_part_bytes(raw, found.html), found.html)
    sections = parts.content_ids(structure)
    budget = [MAX_EMBEDDED_IMAGES_BYTES]

    def embedded(content_id: str) -> str | None:
        section = sections.get(content_id)
        part = parts.find_part(structure, section) if section else None
        if part is None:
            return None
        media = parts.content_type(part)
        data = _part_bytes(raw, part)
        if media not in parts.EMBEDDABLE_IMAGES or not parts.looks_like(media, data):
            return None
        if len(data) > budget[0]:
            return None
        budget[0] -= len(data)
        return f"data:{media};base64,{base64.b64encode(data).decode()}"

    return htmlsafe.sanitise(html, embedded)


def attachment_bytes(raw: bytes, structure: Part, section: str) -> tuple[Part, bytes] | None:
    part = parts.find_part(structure, section)
    if part is None:
        return None
    return part, _part_bytes(raw, part)
