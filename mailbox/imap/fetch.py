"""FETCH attributes (RFC 3501 §6.4.5, RFC 7162 MODSEQ): their types and their grammar.

- :class:`FetchItem` — the simple attributes (FLAGS, UID, ENVELOPE, …).
- :class:`FetchBody` — ``BODY[section]<partial>``, ``BODY.PEEK[…]`` and the RFC822, RFC822.HEADER
  and RFC822.TEXT forms, which are BODY[], BODY.PEEK[HEADER] and BODY[TEXT] answered under their
  own names (§6.4.5). :attr:`FetchBody.sets_seen` says whether the implicit ``\\Seen`` applies,
  :meth:`FetchBody.label` gives the response item name and :meth:`FetchBody.cut` applies the
  partial range.
- :func:`parse_fetch_attributes` — ``ALL``/``FAST``/``FULL`` macros, one attribute, or a list.
- :func:`header_fields` — the HEADER.FIELDS(.NOT) subset of a header section.

Must not: read messages (the session slices message bytes with the section's offsets).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Final, Literal, cast

from .errors import ParseError
from .reader import Reader
from .wire import astring

SectionText = Literal["", "HEADER", "HEADER.FIELDS", "HEADER.FIELDS.NOT", "TEXT", "MIME"]
Rfc822Form = Literal["RFC822", "RFC822.HEADER", "RFC822.TEXT"]

_NAME: Final = re.compile(rb"[A-Za-z0-9.]+")
_SECTION_WORD: Final = re.compile(rb"[A-Za-z.]+")
_SECTION_TEXTS: Final = {"HEADER", "HEADER.FIELDS", "HEADER.FIELDS.NOT", "TEXT", "MIME"}


class FetchItem(StrEnum):
    FLAGS = "FLAGS"
    INTERNALDATE = "INTERNALDATE"
    RFC822_SIZE = "RFC822.SIZE"
    ENVELOPE = "ENVELOPE"
    BODY = "BODY"  # the non-extensible BODYSTRUCTURE
    BODYSTRUCTURE = "BODYSTRUCTURE"
    UID = "UID"
    MODSEQ = "MODSEQ"  # RFC 7162 §3.1.4


@dataclass(frozen=True, slots=True)
class Section:
    """``part`` = the part number (empty: the whole message); ``text`` = the section text;
    ``fields`` = the HEADER.FIELDS(.NOT) names as the client wrote them."""

    part: tuple[int, ...] = ()
    text: SectionText = ""
    fields: tuple[str, ...] = ()

    def __str__(self) -> str:
        spec = ".".join(str(number) for number in self.part)
        if self.text:
            spec = f"{spec}.{self.text}" if spec else self.text
        if self.fields:
            spec += " (" + " ".join(_field_text(field) for field in self.fields) + ")"
        return spec


def _field_text(field: str) -> str:
    return astring(field).decode("utf-8", "surrogateescape")


@dataclass(frozen=True, slots=True)
class FetchBody:
    """``BODY[section]<partial>`` and its forms; ``binary`` for RFC 3516 ``BINARY[part]``
    (the part's content with its transfer encoding undone)."""

    section: Section = Section()
    peek: bool = False
    partial: tuple[int, int] | None = None  # (origin octet, octet count)
    rfc822: Rfc822Form | None = None
    binary: bool = False

    @property
    def sets_seen(self) -> bool:
        """RFC 3501 §6.4.5: BODY[…] and RFC822(.TEXT) set \\Seen; .PEEK and RFC822.HEADER don't."""
        return not self.peek

    def label(self) -> bytes:
        """The response item name: ``BODY[1.MIME]``, ``BODY[TEXT]<0>``, ``RFC822.HEADER``."""
        if self.rfc822 is not None:
            return self.rfc822.encode("ascii")
        name = f"{'BINARY' if self.binary else 'BODY'}[{self.section}]"
        if self.partial is not None:
            name += f"<{self.partial[0]}>"
        return name.encode("utf-8", "surrogateescape")

    def cut(self, data: bytes) -> bytes:
        """``data`` limited to the partial range (RFC 3501 §6.4.5: an origin past the end gives
        the empty string)."""
        if self.partial is None:
            return data
        origin, count = self.partial
        return data[origin : origin + count]


@dataclass(frozen=True, slots=True)
class FetchBinarySize:
    """RFC 3516 ``BINARY.SIZE[part]``: the size of the part's decoded content."""

    section: Section = Section()

    def label(self) -> bytes:
        return f"BINARY.SIZE[{self.section}]".encode("ascii")


FetchAttribute = FetchItem | FetchBody | FetchBinarySize

_SIMPLE: Final[dict[str, FetchAttribute]] = {
    "FLAGS": FetchItem.FLAGS,
    "INTERNALDATE": FetchItem.INTERNALDATE,
    "RFC822.SIZE": FetchItem.RFC822_SIZE,
    "ENVELOPE": FetchItem.ENVELOPE,
    "BODY": FetchItem.BODY,
    "BODYSTRUCTURE": FetchItem.BODYSTRUCTURE,
    "UID": FetchItem.UID,
    "MODSEQ": FetchItem.MODSEQ,
    "RFC822": FetchBody(rfc822="RFC822"),
    "RFC822.HEADER": FetchBody(Section(text="HEADER"), peek=True, rfc822="RFC822.HEADER"),
    "RFC822.TEXT": FetchBody(Section(text="TEXT"), rfc822="RFC822.TEXT"),
}
_FAST = (FetchItem.FLAGS, FetchItem.INTERNALDATE, FetchItem.RFC822_SIZE)
_ALL = (*_FAST, FetchItem.ENVELOPE)
# RFC 3501 §6.4.5: macros, valid only alone, never inside a list.
_MACROS: Final[dict[str, tuple[FetchAttribute, ...]]] = {
    "FAST": _FAST,
    "ALL": _ALL,
    "FULL": (*_ALL, FetchItem.BODY),
}


def parse_fetch_attributes(reader: Reader) -> list[FetchAttribute]:
    """``"ALL" / "FULL" / "FAST" / fetch-att / "(" fetch-att *(SP fetch-att) ")"``, duplicates
    removed, request order kept."""
    if reader.peek() == 0x28:
        found = reader.list_of(lambda: _attribute(reader), "FETCH attributes", allow_empty=False)
    else:
        macro = _MACROS.get(reader.peek_word().decode("ascii"))
        if macro is not None:
            reader.atom()
            return list(macro)
        found = [_attribute(reader)]
    return list(dict.fromkeys(found))


def _attribute(reader: Reader) -> FetchAttribute:
    name = reader.token(_NAME, "a FETCH attribute").decode("ascii").upper()
    if reader.peek() == 0x5B:  # "["
        if name in ("BINARY", "BINARY.PEEK", "BINARY.SIZE"):  # RFC 3516
            section = _section(reader)
            if section.text:
                raise ParseError("BINARY sections are part numbers only (RFC 3516)")
            if name == "BINARY.SIZE":
                return FetchBinarySize(section)
            return FetchBody(
                section, peek=name == "BINARY.PEEK", partial=_partial(reader), binary=True
            )
        if name not in ("BODY", "BODY.PEEK"):
            raise ParseError(f"unknown FETCH attribute {name}[")
        section = _section(reader)
        partial = _partial(reader)
        return FetchBody(section, peek=name == "BODY.PEEK", partial=partial)
    attribute = _SIMPLE.get(name)
    if attribute is None:
        raise ParseError(f"unknown FETCH attribute {name}")
    return attribute


def _section(reader: Reader) -> Section:
    reader.expect(b"[")
    part: list[int] = []
    word = ""
    if reader.peek() in range(0x30, 0x3A):
        part.append(reader.nz_number())
        while reader.maybe(b"."):
            if reader.peek() in range(0x30, 0x3A):
                part.append(reader.nz_number())
            else:
                word = _section_word(reader)
                break
    elif reader.peek() != 0x5D:
        word = _section_word(reader)
    if word == "MIME" and not part:
        raise ParseError("MIME needs a part number (RFC 3501 §6.4.5)")
    fields: list[str] = []
    if word in ("HEADER.FIELDS", "HEADER.FIELDS.NOT"):
        reader.sp()
        fields = reader.list_of(reader.astring, "header field names", allow_empty=False)
    reader.expect(b"]")
    return Section(tuple(part), cast(SectionText, word), tuple(fields))


def _section_word(reader: Reader) -> str:
    word = reader.token(_SECTION_WORD, "a section name").decode("ascii").upper()
    if word not in _SECTION_TEXTS:
        raise ParseError(f"unknown section {word}")
    return word


def _partial(reader: Reader) -> tuple[int, int] | None:
    if not reader.maybe(b"<"):
        return None
    origin = reader.number()
    reader.expect(b".")
    count = reader.nz_number()
    reader.expect(b">")
    return origin, count


def header_fields(header: bytes, names: tuple[str, ...], exclude: bool = False) -> bytes:
    """RFC 3501 §6.4.5 HEADER.FIELDS (``exclude``: HEADER.FIELDS.NOT) of ``header``, a header
    section as stored (its blank line included): the fields whose name matches one of ``names``
    (case-insensitively, otherwise exactly), continuation lines kept with their field, then the
    blank line, which subsetting never removes (none when the message has none)."""
    wanted = {name.lower().encode("utf-8", "surrogateescape") for name in names}
    kept: list[bytes] = []
    keep = False
    start = 0
    length = len(header)
    while start < length:
        end = header.find(b"\n", start)
        end = length if end < 0 else end + 1
        line = header[start:end]
        start = end
        if line in (b"\r\n", b"\n"):  # the blank line ending the header
            kept.append(line)
            break
        if line[:1] in (b" ", b"\t"):  # a continuation line: goes with its field
            if keep:
                kept.append(line)
            continue
        keep = (line.split(b":", 1)[0].strip().lower() in wanted) != exclude
        if keep:
            kept.append(line)
    return b"".join(kept)
