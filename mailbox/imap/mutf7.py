"""Modified UTF-7 mailbox names (RFC 3501 §5.1.3): the wire form of every mailbox name.

Printable US-ASCII (0x20-0x7E) stands for itself, ``&`` is written ``&-``, anything else is
UTF-16BE in base64 (``,`` instead of ``/``, no padding) between ``&`` and ``-``.

:func:`decode` is strict: it refuses 8-bit and control octets, unterminated or empty-looking
shifts, bad base64, odd UTF-16 lengths, lone surrogates, and any non-canonical spelling (ASCII
encoded in base64, two adjacent shifts, non-zero padding bits) — everything the RFC says a name
MUST NOT contain — by checking that the result encodes back to the very same name. Two spellings
of one name would otherwise open two mailboxes that look the same. Errors are
:class:`~.errors.MailboxNameError` (the caller answers NO).

Must not: normalise INBOX or apply any mailbox naming policy (that is the store's).
"""

from __future__ import annotations

import base64
import binascii
import re

from .errors import MailboxNameError

_DIRECT = re.compile(r"[\x20-\x25\x27-\x7e]*")  # printable ASCII except "&"
_SHIFT_ALPHABET = re.compile(r"[A-Za-z0-9+,]*")
_INVALID = "mailbox name is not valid modified UTF-7 (RFC 3501 §5.1.3)"


def encode(name: str) -> str:
    """The modified UTF-7 wire form of a Unicode mailbox name."""
    if _DIRECT.fullmatch(name):
        return name
    out: list[str] = []
    pending: list[str] = []
    for char in name:
        if "\x20" <= char <= "\x7e":
            if pending:
                out.append(_shift("".join(pending)))
                pending.clear()
            out.append("&-" if char == "&" else char)
        else:
            pending.append(char)
    if pending:
        out.append(_shift("".join(pending)))
    return "".join(out)


def _shift(text: str) -> str:
    try:
        utf16 = text.encode("utf-16-be")
    except UnicodeEncodeError:
        raise MailboxNameError("mailbox name contains an unpaired surrogate") from None
    encoded = base64.b64encode(utf16).rstrip(b"=").replace(b"/", b",")
    return "&" + encoded.decode("ascii") + "-"


def decode(wire: str) -> str:
    """The Unicode mailbox name of a wire name; :class:`MailboxNameError` if it is not valid."""
    if _DIRECT.fullmatch(wire):
        return wire
    out: list[str] = []
    index = 0
    length = len(wire)
    while index < length:
        char = wire[index]
        if char != "&":
            if not "\x20" <= char <= "\x7e":
                raise MailboxNameError(_INVALID + ": 8-bit or control character")
            out.append(char)
            index += 1
            continue
        end = wire.find("-", index + 1)
        if end < 0:
            raise MailboxNameError(_INVALID + ": unterminated &-shift")
        if end == index + 1:
            out.append("&")
        else:
            out.append(_unshift(wire[index + 1 : end]))
        index = end + 1
    name = "".join(out)
    if encode(name) != wire:
        raise MailboxNameError(_INVALID + ": not in canonical form")
    return name


def _unshift(chunk: str) -> str:
    if not _SHIFT_ALPHABET.fullmatch(chunk) or len(chunk) % 4 == 1:
        raise MailboxNameError(_INVALID + ": bad base64")
    padded = chunk.replace(",", "/") + "=" * (-len(chunk) % 4)
    try:
        utf16 = base64.b64decode(padded, validate=True)
        if len(utf16) % 2:
            raise MailboxNameError(_INVALID + ": odd UTF-16 length")
        return utf16.decode("utf-16-be")
    except (binascii.Error, UnicodeDecodeError):
        raise MailboxNameError(_INVALID + ": bad UTF-16") from None


def is_valid(wire: str) -> bool:
    try:
        decode(wire)
    except MailboxNameError:
        return False
    return True
