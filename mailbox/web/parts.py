"""The parts of a stored message as a person reads them: which part is the text, which are
attachments, their decoded bytes, and whether an attachment may be shown in the browser.

Inline display is allowed for PDF, plain text and JPEG only (mssante.md §4: Mon espace santé
shows ``.txt``, ``.pdf``, ``.jpeg``/``.jpg``; everything else is downloaded), and only when the
bytes agree with the declared type (a "PDF" that does not start like one is downloaded, never
shown), so that no declared type makes the browser render something else.

Pure functions over bytes and the cached MIME tree (:mod:`pli.mailbox.mime.structure`); never
raise on any message.
"""

from __future__ import annotations

import base64
import binascii
import quopri
from dataclasses import dataclass

from pli.mailbox.mime.params import display_filename, param
from pli.mailbox.mime.structure import Part, iter_parts
from pli.mailbox.mime.text import text_codec

#: Types shown in the browser (mssante.md §4), with the check their bytes must pass.
INLINE_TYPES = ("application/pdf", "text/plain", "image/jpeg")
#: A PDF's header may follow up to 1024 bytes of junk (ISO 32000-1 §7.5.2, implementation note).
PDF_HEADER_WINDOW = 1024
#: Characters of a text body shown on the page; longer ones are cut with a notice.
MAX_TEXT_SHOWN = 1_000_000
#: Images inside an HTML body (``cid:``) served per message at most (a hostile body may name
#: thousands).
MAX_INLINE_IMAGES = 100
#: Types an HTML body may embed by ``cid:`` (never SVG: it can carry script).
EMBEDDABLE_IMAGES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})


@dataclass(frozen=True, slots=True)
class AttachmentInfo:
    section: str
    filename: str  # for display (may be anything: escaped when shown)
    content_type: str
    size: int  # encoded size in the message (what the person downloads is about 3/4 of base64)


@dataclass(frozen=True, slots=True)
class Bodies:
    text: Part | None
    html: Part | None
    text_section: str | None
    html_section: str | None


def content_type(part: Part) -> str:
    return f"{part['type']}/{part['subtype']}"


def _is_attachment(part: Part) -> bool:
    disposition = part["disposition"][0] if part.get("disposition") else None
    if disposition == "attachment":
        return True
    params = part["disposition"][1] if part.get("disposition") else []
    if display_filename(params) or display_filename(part["params"]):
        return part["type"] != "text" or disposition != "inline"
    return part["type"] not in ("text", "multipart", "message") and not part.get("id")


def leaves(structure: Part) -> list[tuple[str, Part]]:
    """The leaf parts with their IMAP section numbers (the root's body of a single-part message
    is section "1")."""
    return [
        (section, part)
        for section, part in iter_parts(structure)
        if section and "parts" not in part and "message" not in part
    ]


def bodies(structure: Part) -> Bodies:
    """The first text/plain and text/html parts that are not attachments."""
    text = html = None
    text_section = html_section = None
    for section, part in leaves(structure):
        if _is_attachment(part) or part["type"] != "text":
            continue
        if part["subtype"] == "plain" and text is None:
            text, text_section = part, section
        elif part["subtype"] == "html" and html is None:
            html, html_section = part, section
    return Bodies(text, html, text_section, html_section)


def attachment_list(structure: Part) -> list[AttachmentInfo]:
    found = []
    for section, part in leaves(structure):
        if not _is_attachment(part):
            continue
        params = part["disposition"][1] if part.get("disposition") else []
        name = display_filename(params) or display_filename(part["params"])
        found.append(
            AttachmentInfo(
                section=section,
                filename=name or f"piece-jointe-{section}",
                content_type=content_type(part),
                size=int(part["size"]),
            )
        )
    return found


def find_part(structure: Part, section: str) -> Part | None:
    for found, part in leaves(structure):
        if found == section:
            return part
    return None


def content_ids(structure: Part) -> dict[str, str]:
    """``Content-ID`` (without angle brackets) → section, for ``cid:`` images of HTML bodies."""
    found: dict[str, str] = {}
    for section, part in leaves(structure):
        identifier = part.get("id")
        if identifier and len(found) < MAX_INLINE_IMAGES:
            found.setdefault(identifier.strip().strip("<>"), section)
    return found


def decode_transfer(data: bytes, encoding: str) -> bytes:
    """The body without its Content-Transfer-Encoding (RFC 2045 §6); junk is skipped, never
    fatal."""
    encoding = encoding.upper()
    if encoding == "BASE64":
        compact = b"".join(data.split())
        compact = bytes(byte for byte in compact if byte in _BASE64_ALPHABET)
        compact = compact[: len(compact) - len(compact) % 4]
        try:
            return base64.b64decode(compact)
        except (binascii.Error, ValueError):
            return b""
    if encoding == "QUOTED-PRINTABLE":
        return quopri.decodestring(data)
    return data


_BASE64_ALPHABET = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=")


def charset_name(part: Part) -> str:
    """The declared charset if Python knows it as a text encoding, else UTF-8."""
    return text_codec(param(part["params"], "charset"))


def decode_text(data: bytes, part: Part) -> str:
    text = data.decode(charset_name(part), "replace").replace("\x00", "")
    return text.replace("\r\n", "\n").replace("\r", "\n")


def looks_like(content_type_: str, data: bytes) -> bool:
    """The bytes agree with a type shown inline."""
    if content_type_ == "application/pdf":
        return b"%PDF-" in data[:PDF_HEADER_WINDOW]
    if content_type_ == "image/jpeg":
        return data[:3] == b"\xff\xd8\xff"
    if content_type_ == "text/plain":
        return b"\x00" not in data[:8192]
    if content_type_ in EMBEDDABLE_IMAGES:
        signatures = {
            "image/png": (b"\x89PNG\r\n\x1a\n",),
            "image/gif": (b"GIF87a", b"GIF89a"),
            "image/webp": (b"RIFF",),
        }
        return data.startswith(signatures.get(content_type_, (b"\xff\xd8\xff",)))
    return False


def inline_type(declared: str, filename: str) -> str | None:
    """The type an attachment is shown as inline, or None (download only). A file named
    ``.pdf``/``.txt``/``.jpg``/``.jpeg`` sent as application/octet-stream is shown too."""
    if declared in INLINE_TYPES:
        return declared
    if declared == "application/octet-stream":
        lowered = filename.lower()
        for suffixes, type_ in (
            ((".pdf",), "application/pdf"),
            ((".txt",), "text/plain"),
            ((".jpg", ".jpeg"), "image/jpeg"),
        ):
            if lowered.endswith(suffixes):
                return type_
    return None
