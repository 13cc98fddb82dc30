"""What a filing reads from the message: the part, its bytes decoded, its name and type, and the
facts of the message header (sender, subject, date, X-MSS-* headers).

Works on the message's raw bytes and the MIME tree of ``mailbox/mime`` (offsets into the raw
bytes): nothing here touches the database or the network. Never raises on any bytes except the
one error it names (:class:`UndecodableBody`).
"""

from __future__ import annotations

import binascii
import re
from dataclasses import dataclass
from datetime import datetime

from pli.mailbox.mime.addresses import parse_address_list
from pli.mailbox.mime.headers import parse_header
from pli.mailbox.mime.params import display_filename
from pli.mailbox.mime.structure import Part, iter_parts
from pli.mailbox.mime.text import decode_header_text, parse_date

#: The name MSSanté gives the IHE XDM archive attached to a message (mssante.md §5, IHE ITI-32
#: media "IHE_XDM.zip"); compared without case.
XDM_FILENAME = "ihe_xdm.zip"
#: Content-Transfer-Encodings taken as they are (RFC 2045 §6.2: identity encodings).
IDENTITY_ENCODINGS = frozenset({"7BIT", "8BIT", "BINARY", ""})
_BASE64_JUNK = re.compile(rb"[^A-Za-z0-9+/=]")  # RFC 2045 §6.8: ignored
_BASE64_RUN = re.compile(rb"[A-Za-z0-9+/]+=*")


class UndecodableBody(Exception):
    """The part's Content-Transfer-Encoding is not one of RFC 2045's (x-uuencode, …)."""


@dataclass(frozen=True, slots=True)
class MessageFacts:
    """What the filing takes from the message's own header."""

    sender: str  # the From: address, lowercased ("" when there is none)
    sender_name: str | None  # its display name, decoded
    subject: str
    sent_at: datetime | None
    codecda: str | None  # X-MSS-CODECDA (mssante.md §5)
    ins_flag: str | None  # X-MSS-INS

    @property
    def sender_domain(self) -> str:
        return self.sender.rpartition("@")[2]


def message_facts(raw: bytes) -> MessageFacts:
    """The facts of the message's top-level header."""
    header = parse_header(raw)
    sender, name = "", None
    for address in parse_address_list(header.first("from")) or []:
        display, _adl, mailbox, host = address
        if mailbox is not None and host is not None:
            sender = f"{mailbox}@{host}".lower()
            name = decode_header_text(display) if display else None
            break
    return MessageFacts(
        sender=sender,
        sender_name=name or None,
        subject=decode_header_text(header.first("subject")) or "",
        sent_at=parse_date(header.first("date")),
        codecda=header.first("x-mss-codecda"),
        ins_flag=header.first("x-mss-ins"),
    )


def leaf_at(structure: Part, section: str) -> Part | None:
    """The part of IMAP section number ``section`` when it is a leaf (a body a person could call
    an attachment), else None."""
    for found_section, part in iter_parts(structure):
        if found_section == section and section:
            if "parts" in part or "message" in part:
                return None
            return part
    return None


def filename_of(part: Part) -> str | None:
    """The part's file name for people (Content-Disposition filename, else Content-Type name)."""
    disposition = part.get("disposition")
    if disposition:
        name = display_filename(disposition[1])
        if name:
            return name
    return display_filename(part["params"])


def media_type_of(part: Part) -> str:
    return f"{part['type']}/{part['subtype']}"


def is_xdm(part: Part) -> bool:
    """An IHE_XDM.zip attachment: known by its name (the media type varies between senders)."""
    name = filename_of(part)
    return name is not None and name.strip().lower() == XDM_FILENAME


def part_body(raw: bytes, part: Part) -> bytes:
    """The part's body as it is in the message (still transfer-encoded)."""
    start, end = part["body"]
    return raw[start:end]


def decode_body(data: bytes, encoding: str) -> bytes:
    """The body decoded from its Content-Transfer-Encoding (RFC 2045 §6), leniently: base64
    ignores characters outside its alphabet (RFC 2045 §6.8 says to) and quoted-printable keeps
    malformed escapes as they are."""
    name = encoding.strip().upper()
    if name in IDENTITY_ENCODINGS:
        return data
    if name == "BASE64":
        return _base64(data)
    if name == "QUOTED-PRINTABLE":
        return binascii.a2b_qp(data)
    raise UndecodableBody(f"Content-Transfer-Encoding {encoding[:40]!r} is not supported")


def _base64(data: bytes) -> bytes:
    """Each run of base64 letters up to its padding decoded, the runs joined: two encodings
    glued together (padding in the middle) decode to both; a last letter that cannot make a
    byte is dropped."""
    decoded = []
    for run in _BASE64_RUN.findall(_BASE64_JUNK.sub(b"", data)):
        letters = run.rstrip(b"=")
        if len(letters) % 4 == 1:
            letters = letters[:-1]
        decoded.append(binascii.a2b_base64(letters + b"=" * (-len(letters) % 4)))
    return b"".join(decoded)
