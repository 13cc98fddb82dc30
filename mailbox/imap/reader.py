"""The token reader of the command parser: RFC 3501 §9 lexical rules over a framed command.

A framed command is a list of segments, text and literal alternating: ``[text0, literal0, text1,
…, textN]``; each text segment but the last ends with the literal marker ``{n}``, ``{n+}`` or
``~{n}`` that announced the next literal (see :mod:`.framing`). The reader walks the segments and
returns literals where the grammar allows a string.

Every method raises :class:`~.errors.ParseError` on input that does not match; nothing else
escapes.

Must not: know commands (that is :mod:`.parser`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Final, TypeVar

from .errors import ParseError
from .limits import MAX_LIST_ITEMS, MAX_NESTING, MAX_NUMBER

# RFC 3501 §9: ATOM-CHAR = any CHAR except atom-specials: "(" ")" "{" SP CTL "%" "*" DQUOTE "\" "]"
_ATOM: Final = re.compile(rb"[^(){ %*\"\\\]\x00-\x1f\x7f-\xff]+")
# ASTRING-CHAR = ATOM-CHAR / resp-specials ("]")
_ASTRING_ATOM: Final = re.compile(rb"[^(){ %*\"\\\x00-\x1f\x7f-\xff]+")
# list-char = ATOM-CHAR / list-wildcards / resp-specials
_LIST_CHARS: Final = re.compile(rb"[^(){ \"\\\x00-\x1f\x7f-\xff]+")
#: RFC 3501 §9: tag = 1*<any ASTRING-CHAR except "+">
TAG: Final = re.compile(rb"[\x21\x23\x24\x26\x27\x2c-\x5b\x5d-\x7a\x7c-\x7e]+")
_LITERAL_MARKER: Final = re.compile(rb"(~?)\{([0-9]+)\+?\}")
_DIGITS: Final = re.compile(rb"[0-9]+")
_QUOTED_RUN: Final = re.compile(rb'[^"\\\x00]*')

T = TypeVar("T")

SP: Final = 0x20
LPAREN: Final = 0x28
RPAREN: Final = 0x29


def text(raw: bytes) -> str:
    """Octets as ``str``: UTF-8, other octets kept as surrogate escapes (they round-trip)."""
    return raw.decode("utf-8", "surrogateescape")


class Reader:
    """A cursor over the segments of one command."""

    __slots__ = ("_index", "_pos", "_segments", "_text", "depth")

    def __init__(self, segments: list[bytes]) -> None:
        self._segments = segments
        self._index = 0
        self._text = segments[0]
        self._pos = 0
        self.depth = 0

    # --- position ----------------------------------------------------------------------------

    def at_end(self) -> bool:
        return self._pos >= len(self._text) and self._index == len(self._segments) - 1

    def peek(self) -> int | None:
        """The next octet of the current text segment, or None at its end."""
        return self._text[self._pos] if self._pos < len(self._text) else None

    def peek_word(self) -> bytes:
        """The next run of atom characters, upper-cased, without consuming it."""
        match = _ATOM.match(self._text, self._pos)
        return match.group().upper() if match else b""

    def end(self) -> None:
        if not self.at_end():
            raise ParseError("unexpected characters at end of command")

    def sp(self) -> None:
        if self.peek() != SP:
            raise ParseError("expected a space")
        self._pos += 1

    def maybe_sp(self) -> bool:
        if self.peek() == SP:
            self._pos += 1
            return True
        return False

    def expect(self, char: bytes) -> None:
        if not self._text.startswith(char, self._pos):
            raise ParseError(f"expected {char.decode('ascii')!r}")
        self._pos += len(char)

    def maybe(self, char: bytes) -> bool:
        if self._text.startswith(char, self._pos):
            self._pos += len(char)
            return True
        return False

    def enter(self) -> None:
        """Opening parenthesis of a nested construct: counted against :data:`MAX_NESTING`."""
        self.expect(b"(")
        self.depth += 1
        if self.depth > MAX_NESTING:
            raise ParseError(f"parentheses nested deeper than {MAX_NESTING}")

    def leave(self) -> None:
        self.expect(b")")
        self.depth -= 1

    # --- tokens ------------------------------------------------------------------------------

    def token(self, pattern: re.Pattern[bytes], what: str) -> bytes:
        """The run ``pattern`` matches here (ParseError naming ``what`` when none)."""
        match = pattern.match(self._text, self._pos)
        if match is None:
            raise ParseError(f"expected {what}")
        self._pos = match.end()
        return match.group()

    def atom(self) -> str:
        return self.token(_ATOM, "an atom").decode("ascii")

    def word(self) -> str:
        """An atom upper-cased: a keyword of the grammar."""
        return self.atom().upper()

    def raw_until_space(self, what: str) -> str:
        """Atom characters plus ``]``, ``%`` and ``*`` (sequence sets, list patterns)."""
        return self.token(_LIST_CHARS, what).decode("ascii")

    def number(self, maximum: int = MAX_NUMBER) -> int:
        digits = self.token(_DIGITS, "a number")
        if len(digits) > 20 or int(digits) > maximum:
            raise ParseError("number out of range")
        return int(digits)

    def nz_number(self, maximum: int = MAX_NUMBER) -> int:
        value = self.number(maximum)
        if value == 0:
            raise ParseError("expected a non-zero number")
        return value

    def quoted(self) -> bytes:
        self.expect(b'"')
        parts: list[bytes] = []
        while True:
            run = _QUOTED_RUN.match(self._text, self._pos)
            assert run is not None  # the pattern matches the empty string
            parts.append(run.group())
            self._pos = run.end()
            char = self.peek()
            if char == 0x22:  # closing DQUOTE
                self._pos += 1
                return b"".join(parts)
            if char == 0x5C:  # backslash: only quoted-specials may follow
                following = self._text[self._pos + 1 : self._pos + 2]
                if following not in (b'"', b"\\"):
                    raise ParseError("invalid escape in quoted string")
                parts.append(following)
                self._pos += 2
                continue
            raise ParseError("unterminated quoted string" if char is None else "NUL in string")

    def literal_ahead(self) -> bool:
        char = self.peek()
        return char == 0x7B or (char == 0x7E and self._text.startswith(b"~{", self._pos))

    def literal(self, *, allow_binary: bool = False, allow_nul: bool = False) -> tuple[bytes, bool]:
        """The literal announced here, and whether it was a ``~{n}`` literal8 (RFC 3516)."""
        marker = _LITERAL_MARKER.match(self._text, self._pos)
        if marker is None or marker.end() != len(self._text):
            raise ParseError("invalid literal")
        binary = bool(marker.group(1))
        if binary and not allow_binary:
            raise ParseError("literal8 (~{n}) is not allowed here")
        if self._index + 2 >= len(self._segments):
            raise ParseError("invalid literal")  # the framer always adds the literal: defensive
        value = self._segments[self._index + 1]
        if b"\x00" in value and not (allow_nul or binary):
            raise ParseError("NUL in literal")
        self._index += 2
        self._text = self._segments[self._index]
        self._pos = 0
        return value, binary

    def string(self) -> bytes:
        """RFC 3501 ``string``: quoted or literal."""
        if self.peek() == 0x22:
            return self.quoted()
        if self.literal_ahead():
            return self.literal()[0]
        raise ParseError("expected a string")

    def astring_bytes(self) -> bytes:
        char = self.peek()
        if char == 0x22 or char == 0x7B:
            return self.string()
        return self.token(_ASTRING_ATOM, "a string")

    def astring(self) -> str:
        return text(self.astring_bytes())

    def nstring(self) -> str | None:
        if self.peek_word() == b"NIL" and self._is_nil():
            self._pos += 3
            return None
        return text(self.string())

    def _is_nil(self) -> bool:
        after = self._pos + 3
        return after >= len(self._text) or self._text[after] in (SP, RPAREN)

    def list_mailbox(self) -> str:
        """RFC 3501 ``list-mailbox``: 1*list-char or string (wildcards kept)."""
        char = self.peek()
        if char == 0x22 or char == 0x7B:
            return text(self.string())
        return self.raw_until_space("a mailbox pattern")

    def list_of(self, item: Callable[[], T], what: str, allow_empty: bool = True) -> list[T]:
        """``"(" [item *(SP item)] ")"`` — at least one item unless ``allow_empty``, at most
        :data:`MAX_LIST_ITEMS`."""
        self.enter()
        items: list[T] = []
        while self.peek() != RPAREN:
            if self.peek() is None:
                raise ParseError("expected ')'")
            if items:
                self.sp()
            items.append(item())
            if len(items) > MAX_LIST_ITEMS:
                raise ParseError(f"more than {MAX_LIST_ITEMS} {what}")
        if not items and not allow_empty:
            raise ParseError(f"expected {what}")
        self.leave()
        return items

    def spaced(self, item: Callable[[], T], what: str) -> list[T]:
        """``item *(SP item)`` up to what is not a space, at most :data:`MAX_LIST_ITEMS`."""
        items = [item()]
        while self.maybe_sp():
            items.append(item())
            if len(items) > MAX_LIST_ITEMS:
                raise ParseError(f"more than {MAX_LIST_ITEMS} {what}")
        return items

    def parenthesised(self) -> list[str]:
        """``"(" [atom *(SP atom)] ")"`` upper-cased (option lists)."""
        return self.list_of(self.word, "items")
