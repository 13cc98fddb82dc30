"""Header fields removed from a message's raw bytes, every other byte kept as it was (folding,
malformed lines, the body): what a server does to fields it owns (Return-Path, RFC 5321 §4.4;
Authentication-Results claiming our name, RFC 8601 §5) without re-serialising the message.

What this module must not do: parse or decode field values (the caller's predicate decides).
"""

from __future__ import annotations

from collections.abc import Callable

#: (lower-cased field name, raw value with its folding) → drop this field?
FieldTest = Callable[[bytes, bytes], bool]


def header_size(message: bytes) -> int:
    """Where the header ends: after the CRLF that closes its last field (0 for a message that
    starts with the empty line; the whole message when there is no body)."""
    if message.startswith(b"\r\n"):
        return 0
    end = message.find(b"\r\n\r\n")
    return len(message) if end < 0 else end + 2


def drop_fields(message: bytes, names: frozenset[bytes], drop: FieldTest | None = None) -> bytes:
    """``message`` without the header fields named in ``names`` (lower case) for which ``drop``
    is true (all of them without ``drop``). A field is its first line and the continuation lines
    (starting with a space or a tab, RFC 5322 §2.2.3) that follow; lines that are not fields are
    kept. ``message`` comes back unchanged when it has no such field."""
    size = header_size(message)
    header = message[:size]
    lowered = header.lower()
    if not any(name in lowered for name in names):  # the usual case: one scan, no copy
        return message
    kept: list[bytes] = []
    field: list[bytes] = []  # the lines of the field being read

    def close() -> None:
        if field:
            name, colon, value = field[0].partition(b":")
            name = name.rstrip(b" \t").lower()
            if not (
                colon
                and name in names
                and (drop is None or drop(name, value + b"".join(field[1:])))
            ):
                kept.extend(field)
            field.clear()

    for line in header.splitlines(keepends=True):
        if line[:1] in (b" ", b"\t") and field:
            field.append(line)  # RFC 5322 §2.2.3: a continuation of the field
            continue
        close()
        field.append(line)
    close()
    return b"".join(kept) + message[size:]
