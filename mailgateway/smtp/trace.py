"""The Received: trace field a server prepends to every message it accepts (RFC 5321 §4.4), with
the protocol type of RFC 3848 (ESMTP, ESMTPS over TLS, ESMTPSA authenticated) and the TLS
version and cipher (as Postfix writes them).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from email.utils import format_datetime

from .hooks import Connection

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
