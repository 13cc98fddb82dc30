"""String encoding of server responses (RFC 3501 §4.3, §9): atom, quoted string, literal, NIL.

- :func:`string` — quoted when every octet is 7-bit, not NUL/CR/LF and the string is at most
  :data:`MAX_QUOTED` octets; a literal ``{n}\\r\\n…`` otherwise (8-bit text, line breaks, long
  values).
- :func:`nstring` — NIL for None, else :func:`string`.
- :func:`astring` — an atom when the value is made of ASTRING-CHARs and is not ``NIL``, else
  :func:`string` (mailbox names, flags in lists).
- :func:`literal` — always a literal (message data).
- :func:`safe_text` — human-readable response text with CR, LF and NUL removed, so that nothing
  a peer sent (a mailbox name in an error) can end a response line early.

Values are ``str`` (encoded UTF-8, surrogate escapes back to their octets) or ``bytes``. The
``*_text`` forms return ``str`` so that a composite value (ENVELOPE, BODYSTRUCTURE) is built as
one string and encoded once; this module sits on the FETCH hot path.

Must not: know what the strings mean.
"""

from __future__ import annotations

import re
from typing import Final

#: Longer strings are sent as literals: cheaper for both sides than escaping, and clients
#: (Thunderbird, Apple Mail) handle either form everywhere a string is allowed.
MAX_QUOTED: Final = 1024

NIL: Final = b"NIL"
CRLF: Final = b"\r\n"

# ASTRING-CHAR: printable ASCII except ( ) { SP % * DQUOTE \ (RFC 3501 §9; "]" is allowed).
_ASTRING_ATOM: Final = re.compile(r"[\x21\x23\x24\x26\x27\x2b-\x5b\x5d-\x7a\x7c-\x7e]+")
_UNSAFE_TEXT: Final = re.compile(r"[\x00\r\n]")


def to_text(value: str | bytes) -> str:
    """Octets as ``str`` (surrogate escapes for what is not UTF-8): the inverse of
    :func:`encode_text`."""
    return value if isinstance(value, str) else value.decode("utf-8", "surrogateescape")


def encode_text(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


def string_text(value: str) -> str:
    """:func:`string` as ``str`` (to be encoded with :func:`encode_text`), so that a whole
    ENVELOPE or BODYSTRUCTURE is built as one string and encoded once. The checks are ``in``
    tests (memchr in C): on the FETCH hot path they cost less than any regex."""
    if value.isascii() and len(value) <= MAX_QUOTED:
        if not ('"' in value or "\\" in value or "\r" in value or "\n" in value or "\x00" in value):
            return '"' + value + '"'
        if not ("\r" in value or "\n" in value or "\x00" in value):
            return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return f"{{{len(encode_text(value))}}}\r\n{value}"


def nstring_text(value: str | None) -> str:
    return "NIL" if value is None else string_text(value)


def literal(data: bytes) -> bytes:
    return b"{%d}\r\n%b" % (len(data), data)


def string(value: str | bytes) -> bytes:
    """Quoted when every octet is 7-bit, not NUL/CR/LF and there are at most
    :data:`MAX_QUOTED`; a literal otherwise."""
    return encode_text(string_text(to_text(value)))


def nstring(value: str | bytes | None) -> bytes:
    return NIL if value is None else string(value)


def astring_text(value: str) -> str:
    if _ASTRING_ATOM.fullmatch(value) and value.upper() != "NIL":
        return value
    return string_text(value)


def astring(value: str | bytes) -> bytes:
    return encode_text(astring_text(to_text(value)))


def safe_text(text: str) -> bytes:
    """Response text (``resp-text``): UTF-8, with CR, LF and NUL replaced by spaces."""
    return _UNSAFE_TEXT.sub(" ", text).encode("utf-8", "replace")
