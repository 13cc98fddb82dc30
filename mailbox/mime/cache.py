"""One parse per message: ENVELOPE, MIME tree and SEARCH fields, ready to store in its row.

``parse_message(raw)`` is called once at delivery and APPEND; the result's JSON goes into the
message row (``envelope_json``, ``structure_json``) and its search fields into indexed columns,
so that FETCH and SEARCH never parse again. Never raises on any bytes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .envelope import Envelope, build_envelope, envelope_field
from .headers import HeaderSection, parse_header
from .params import display_filename, param
from .structure import Part, iter_parts, parse_structure
from .text import clean, decode_header_text, parse_date

#: Characters of a decoded header kept for SEARCH (a substring search over more is pointless).
MAX_SEARCH_CHARS = 4096
#: Message-IDs kept from References for threading (RFC 5322 §3.6.4; a long thread keeps its
#: first and last ones, as the RFC 5537 §3.4.4 trimming of News does).
MAX_REFERENCES = 50


@dataclass(frozen=True, slots=True)
class SearchFields:
    """Decoded, lowercased header text for SEARCH (RFC 3501 §6.4.4: case-insensitive
    substring), and the threading identifiers."""

    subject: str
    from_: str
    to: str
    cc: str
    bcc: str
    message_id: str
    in_reply_to: str
    references: tuple[str, ...]
    sent_at: datetime | None


@dataclass(frozen=True, slots=True)
class MessageCache:
    envelope: Envelope
    structure: Part
    search: SearchFields
    #: The top header section, for what else reads the message at delivery (the policy's
    #: traits); not stored.
    header: HeaderSection = field(compare=False, repr=False)

    def envelope_json(self) -> str:
        return json.dumps(self.envelope, ensure_ascii=True, separators=(",", ":"))

    def structure_json(self) -> str:
        return json.dumps(self.structure, ensure_ascii=True, separators=(",", ":"))


@dataclass(frozen=True, slots=True)
class Attachment:
    """A part a person would call an attachment (for the webmail's list)."""

    section: str
    filename: str | None
    content_type: str
    size: int
    disposition: str | None


def parse_message(raw: bytes) -> MessageCache:
    header = parse_header(raw)
    envelope = build_envelope(header)
    structure = parse_structure(raw, header)

    def text(name: str) -> str:
        decoded = decode_header_text(header.first(name)) or ""
        return decoded[:MAX_SEARCH_CHARS].lower()

    def addresses(name: str, parsed: list[Any] | None) -> str:
        """The header's text, then each address as ``name <mailbox@host>`` (``parsed``: the
        envelope's list of the field): a search for ``user@domain`` finds ``<user (comment)@
        domain>`` too (Dovecot searches the parsed addresses)."""
        normal = " ".join(
            f"{decode_header_text(display) or ''} <{mailbox}@{host}>"
            for display, _, mailbox, host in parsed or ()
            if mailbox is not None and host is not None
        )
        return (text(name) + "\n" + normal.lower())[:MAX_SEARCH_CHARS] if normal else text(name)

    search = SearchFields(
        subject=text("subject"),
        from_=addresses("from", envelope_field(envelope, "from")),
        to=addresses("to", envelope_field(envelope, "to")),
        cc=addresses("cc", envelope_field(envelope, "cc")),
        bcc=addresses("bcc", envelope_field(envelope, "bcc")),
        message_id=(message_ids(header.first("message-id")) or [""])[0],
        in_reply_to=(message_ids(header.first("in-reply-to")) or [""])[0],
        references=tuple(_trim(message_ids(header.first("references")))),
        sent_at=parse_date(header.first("date")),
    )
    return MessageCache(envelope, structure, search, header)


def message_ids(value: str | None) -> list[str]:
    """The ``<…>`` identifiers of a Message-ID, In-Reply-To or References value, in order
    (without the angle brackets; a bare id without brackets is accepted)."""
    if not value:
        return []
    text = clean(value)
    found = []
    position = 0
    while True:
        opening = text.find("<", position)
        if opening < 0:
            break
        closing = text.find(">", opening)
        if closing < 0:
            break
        identifier = text[opening + 1 : closing].strip()
        if identifier:
            found.append(identifier[:998])  # RFC 5322 §2.1.1 line length
        position = closing + 1
    if not found and text.strip() and " " not in text.strip():
        found.append(text.strip()[:998])
    return found


def _trim(ids: list[str]) -> list[str]:
    if len(ids) <= MAX_REFERENCES:
        return ids
    return [ids[0], *ids[-(MAX_REFERENCES - 1) :]]


def attachments(structure: Part) -> list[Attachment]:
    """Leaves with a file name or an ``attachment`` disposition, and non-text leaves inside a
    multipart (what a mail reader shows as attachments)."""
    found = []
    for section, part in iter_parts(structure):
        if not section or "parts" in part or ("message" in part and section != "1"):
            continue
        single_text_body = section == "1" and part is structure and part["type"] == "text"
        if single_text_body and part.get("disposition") is None:
            continue
        disposition = part["disposition"][0] if part.get("disposition") else None
        params = part["disposition"][1] if part.get("disposition") else []
        filename = display_filename(params) or display_filename(part["params"])
        is_attachment = (
            disposition == "attachment"
            or filename is not None
            or (part["type"] not in ("text", "multipart") and disposition != "inline")
        )
        if not is_attachment:
            continue
        found.append(
            Attachment(
                section=section,
                filename=filename,
                content_type=f"{part['type']}/{part['subtype']}",
                size=part["size"],
                disposition=disposition,
            )
        )
    return found


def charset_of(part: Part) -> str | None:
    return param(part["params"], "charset")
