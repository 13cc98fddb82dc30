"""The trace fields (RFC 5321 §4.4): ``Received:``, which a server prepends to every message it
accepts, with the protocol type of RFC 3848 (ESMTP, ESMTPS over TLS, ESMTPSA authenticated) and
the TLS version and cipher (as Postfix writes them); ``Return-Path:``, which the server making
the final delivery inserts with the envelope's reverse-path (``<>`` for the null one), any
Return-Path already in the message removed first (as Postfix's ``message_drop_headers`` does:
only the delivering server knows the envelope).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from email.utils import format_datetime

from ..fields import drop_fields
from .hooks import Connection

_RETURN_PATH = frozenset({b"return-path"})

_SAFE = re.compile(r"[^A-Za-z0-9.\-:\[\]_]")


def _clean(text: str) -> str:
    return _SAFE.sub("?", text)[:255]


def received_header(
    connection: Connection, hostname: str, *, queue_id: str, now: datetime | None = None
) -> bytes:
    """``Received: from HELO ([IP]) by HOST with ESMTPS (TLS) id ID; DATE`` with CRLF."""
    protocol = "ESMTP" if connection.esmtp else "SMTP"
    if connection.tls_active:
        protocol += "S"
    if connection.principal is not None:
        protocol += "A"
    described = " ".join(_clean(part) for part in connection.tls_description.split())
    tls = f" ({described})" if connection.tls_active else ""
    date = format_datetime((now or datetime.now(UTC)).astimezone(UTC))
    helo = _clean(connection.helo) or "unknown"
    text = (
        f"Received: from {helo} ([{_clean(connection.peer_host)}])\r\n"
        f"\tby {hostname} with {protocol}{tls}\r\n\tid {queue_id}; {date}\r\n"
    )
    return text.encode("ascii")


def with_return_path(message: bytes, sender: str) -> bytes:
    """``message`` as delivered into a mailbox: ``Return-Path: <sender>`` first (RFC 5321
    §4.4), the message's own Return-Path fields removed. ``sender`` is the envelope's
    reverse-path as parsed (UTF-8 with SMTPUTF8, RFC 6531 §3.7.3); "" is the null one."""
    if any(ord(char) < 0x20 or ord(char) == 0x7F for char in sender):
        raise ValueError("control character in a reverse-path")  # the parsers refuse them
    return f"Return-Path: <{sender}>\r\n".encode() + drop_fields(message, _RETURN_PATH)
