"""Header sections: where they end, and their fields, from raw bytes with byte offsets.

A header section runs from a part's first byte to the empty line that ends it (included, as
BODY[HEADER] and BODY[1.MIME] include it: RFC 3501 §6.4.5); the body starts after that line. Line
ends may be CRLF or bare LF (messages are stored as received). Lines that are not fields (no
colon, a name with spaces or control characters) are skipped, not fatal.

Values are the unfolded raw text (RFC 5322 §2.2.3), decoded from bytes as UTF-8 with
``surrogateescape`` so that ``value.encode("utf-8", "surrogateescape")`` gives the original bytes
back (8-bit junk included). Encoded words (RFC 2047) are left as they are.

Pure functions over bytes; must not raise on any input.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

#: Fields kept per header section; the rest are ignored by the cache (hostile messages may carry
#: hundreds of thousands; Dovecot and Postfix cap them too). BODY[HEADER] still returns them all.
MAX_HEADER_FIELDS = 1000
#: Characters kept of one field value in the cache (a 10 MB Subject must not bloat every FETCH
#: ENVELOPE); the raw bytes stay available through BODY[HEADER].
MAX_FIELD_CHARS = 16384

_BLANK_LINE = re.compile(rb"\n\r?\n")
_FOLD = re.compile(r"\r?\n(?=[ \t])")
_LINE_END = re.compile(r"\r?\n")
_FIELD_NAME = re.compile(r"^[!-9;-~]+$")  # RFC 5322 §3.6.8 ftext: printable ASCII except ':'


@dataclass(frozen=True, slots=True)
class HeaderSection:
    """A header section's extent and fields: ``fields`` maps a lowercased name to the values of
    its occurrences, in order."""

    start: int
    body_start: int
    fields: dict[str, list[str]]

    def first(self, name: str) -> str | None:
        values = self.fields.get(name)
        return values[0] if values else None


def header_end(raw: bytes, start: int, end: int) -> int:
    """Offset of the first body byte of the part ``raw[start:end]`` (``end`` if no empty line)."""
    if raw.startswith(b"\r\n", start) and start + 2 <= end:
        return start + 2
    if raw.startswith(b"\n", start) and start + 1 <= end:
        return start + 1
    match = _BLANK_LINE.search(raw, start, end)
    return match.end() if match else end


def parse_header(raw: bytes, start: int = 0, end: int | None = None) -> HeaderSection:
    """The header section of the part ``raw[start:end]`` (the whole of ``raw`` by default)."""
    end = len(raw) if end is None else end
    body_start = header_end(raw, start, end)
    text = raw[start:body_start].decode("utf-8", "surrogateescape")
    fields: dict[str, list[str]] = {}
    count = 0
    for logical in _logical_lines(text):
        name, colon, value = logical.partition(":")
        name = name.rstrip(" \t")
        if not colon or not _FIELD_NAME.match(name):
            continue
        count += 1
        if count > MAX_HEADER_FIELDS:
            break
        if "\n" in value:
            value = _FOLD.sub("", value)
        value = value.strip(" \t\r\n")
        fields.setdefault(name.lower(), []).append(value[:MAX_FIELD_CHARS])
    return HeaderSection(start, body_start, fields)


def _logical_lines(text: str) -> list[str]:
    """Physical lines joined with their continuation lines (folding kept for the caller to
    remove: a continuation starts with a space or a tab)."""
    lines: list[str] = []
    for line in _LINE_END.split(text):
        if line[:1] in (" ", "\t") and lines:
            lines[-1] += "\n" + line
        elif line:
            lines.append(line)
    return lines
