"""BODY[section] octets (RFC 3501 §6.4.5) from a message's bytes and the store's MIME tree.

Part numbers: the children of a multipart are numbered from 1; a message (or an encapsulated
message/rfc822) whose body is not multipart has a single part 1, its body; the parts of an
encapsulated message continue the number of the message/rfc822 part (``2.1``, ``2.2``).

- ``BODY[]`` the whole message; ``BODY[HEADER]``/``BODY[TEXT]`` its header (blank line included)
  and body; ``HEADER.FIELDS (…)``/``.NOT`` a subset of the header (:func:`..fetch.header_fields`);
- ``BODY[n]`` the body of part n (for a message/rfc822 part: the whole encapsulated message);
  ``BODY[n.MIME]`` its MIME header; ``BODY[n.HEADER]``, ``BODY[n.TEXT]``,
  ``BODY[n.HEADER.FIELDS …]`` the header and body of the message encapsulated in part n.

A section that names no part of this message gives None (answered NIL, as Dovecot does).

Must not: read files or decide \\Seen (the FETCH executor does).
"""

from __future__ import annotations

import binascii
import re
from typing import Any

from pli.mailbox.mime.headers import header_end

from ..fetch import Section, header_fields

Part = dict[str, Any]


def _children(node: Part) -> list[Part]:
    """The numbered sub-parts of a message's root or of an encapsulated message."""
    parts = node.get("parts")
    return list(parts) if parts else [node]


def find_part(root: Part, numbers: tuple[int, ...]) -> Part | None:
    """The part a section's part number names (None when there is none)."""
    node = root
    children = _children(root)
    for index, number in enumerate(numbers):
        if not 1 <= number <= len(children):
            return None
        node = children[number - 1]
        if index + 1 < len(numbers):
            if node.get("parts"):
                children = list(node["parts"])
            elif node.get("message") is not None:
                children = _children(node["message"])
            else:
                return None
    return node


def _span(raw: bytes, bounds: list[int]) -> bytes:
    return raw[bounds[0] : bounds[1]]


def root_header_end(raw: bytes) -> int:
    """Where the message's header ends (its blank line included)."""
    return header_end(raw, 0, len(raw))


def extract(raw: bytes, structure: Part | None, section: Section) -> bytes | None:
    """The octets of ``section`` (before any partial range); ``structure`` may be None when the
    section has no part number (the root's header and body are found in ``raw``)."""
    text = section.text
    if not section.part:
        if text == "":
            return raw
        end = root_header_end(raw)
        header, body = raw[:end], raw[end:]
        return _header_or_text(header, body, section)
    if structure is None:
        raise ValueError("a section with a part number needs the MIME tree")
    part = find_part(structure, section.part)
    if part is None:
        return None
    if text == "":
        return _span(raw, part["body"])
    if text == "MIME":
        return _span(raw, part["header"])
    inner = part.get("message")
    if inner is None:  # HEADER/TEXT of a part that encapsulates no message
        return None
    return _header_or_text(_span(raw, inner["header"]), _span(raw, inner["body"]), section)


class UnknownEncoding(Exception):
    """A part's Content-Transfer-Encoding that BINARY cannot undo (RFC 3516: NO [UNKNOWN-CTE])."""


def decoded(raw: bytes, structure: Part | None, section: Section) -> bytes | None:
    """RFC 3516 ``BINARY[part]``: the part's body with its transfer encoding undone (base64,
    quoted-printable; 7bit, 8bit and binary as they are); ``BINARY[]`` is the whole message.
    None when the part does not exist."""
    if not section.part:
        return raw
    if structure is None:
        raise ValueError("a section with a part number needs the MIME tree")
    part = find_part(structure, section.part)
    if part is None:
        return None
    body = _span(raw, part["body"])
    encoding = str(part.get("encoding") or "7BIT").upper()
    if part.get("parts") or part.get("message") is not None or encoding in _IDENTITY:
        return body
    if encoding == "BASE64":
        return base64_content(body)
    if encoding == "QUOTED-PRINTABLE":
        return quoted_printable(body)
    raise UnknownEncoding(encoding)


_IDENTITY = ("7BIT", "8BIT", "BINARY")
_NOT_BASE64 = re.compile(rb"[^A-Za-z0-9+/=]")
_QP_ESCAPE = re.compile(rb"=([0-9A-Fa-f]{2})")


def base64_content(body: bytes) -> bytes:
    """Base64 decoded leniently, as mail readers do: characters outside the alphabet and
    misplaced padding skipped, a last lone character (it carries no octet) dropped."""
    data = _NOT_BASE64.sub(b"", body).replace(b"=", b"")
    if len(data) % 4 == 1:
        data = data[:-1]
    return binascii.a2b_base64(data + b"=" * (-len(data) % 4))


def quoted_printable(body: bytes) -> bytes:
    """RFC 2045 §6.7: trailing white space of each line is transport padding (removed), a line
    ending with ``=`` continues on the next (soft line break), ``=XX`` is an octet; anything
    else is kept as it is."""
    lines = body.split(b"\n")
    out = bytearray()
    for index, line in enumerate(lines):
        stripped = line.rstrip(b"\r").rstrip(b" \t")
        soft = stripped.endswith(b"=")
        out += _QP_ESCAPE.sub(
            lambda m: bytes([int(m.group(1), 16)]), stripped[:-1] if soft else stripped
        )
        if not soft and index < len(lines) - 1:
            out += b"\r\n"
    return bytes(out)


def _header_or_text(header: bytes, body: bytes, section: Section) -> bytes:
    if section.text == "TEXT":
        return body
    if section.text == "HEADER":
        return header
    return header_fields(header, section.fields, exclude=section.text == "HEADER.FIELDS.NOT")


def needs_structure(section: Section) -> bool:
    return bool(section.part)


def header_only(section: Section) -> bool:
    """Whether the section lies in the message's own header (read its first octets only)."""
    return not section.part and section.text in ("HEADER", "HEADER.FIELDS", "HEADER.FIELDS.NOT")
