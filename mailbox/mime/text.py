"""Header text for people and for SEARCH: RFC 2047 encoded words decoded, junk made harmless.

Results are valid Unicode without NUL (PostgreSQL text refuses both lone surrogates and NUL):
undecodable bytes become U+FFFD. Never raises.
"""

from __future__ import annotations

import codecs
import email.header
import email.utils
from datetime import UTC, datetime


def clean(text: str) -> str:
    """Surrogate escapes (8-bit junk) to U+FFFD, NUL removed."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace").replace("\x00", "")


def text_codec(declared: str | None, default: str = "utf-8") -> str:
    """The codec for a declared charset when Python has it as a text encoding, else
    ``default`` (RFC 6657: UTF-8 is the sane default today). A sender's charset may be unknown,
    a bytes-to-bytes codec (``base64``), or not even a name (NUL, 8-bit junk): never raises."""
    try:
        name = codecs.lookup((declared or default).strip().lower()).name
        b"a".decode(name, "replace")  # a text encoding, not a bytes-to-bytes codec
    except (LookupError, ValueError):
        return default
    return name


def decode_header_text(value: str | None) -> str | None:
    """RFC 2047 encoded words decoded; unknown charsets and broken words left as text."""
    if value is None:
        return None
    cleaned = clean(value)
    if "=?" not in cleaned:
        return cleaned
    try:
        pieces = email.header.decode_header(cleaned)
        words = []
        for data, charset in pieces:
            if isinstance(data, bytes):
                words.append(data.decode(charset or "ascii", "replace"))
            else:
                words.append(data)
        return clean("".join(words))
    except (LookupError, ValueError, UnicodeError, AssertionError):
        return cleaned


def parse_date(value: str | None) -> datetime | None:
    """The Date: header as an aware UTC datetime, or None when absent or unparsable."""
    if not value:
        return None
    try:
        parsed = email.utils.parsedate_to_datetime(clean(value))
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if parsed is None:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except (OverflowError, ValueError):
        return None
