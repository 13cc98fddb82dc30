"""Receiving a message after DATA: the end marker, dot-unstuffing, and the checks that stop
SMTP smuggling, read in large chunks (sans-IO: bytes in, message out).

Only ``<CRLF>.<CRLF>`` ends the data (RFC 5321 §4.1.1.4); the data's first line may be the lone
dot (an empty message). A bare LF or a bare CR anywhere in the data refuses the message
(RFC 5321 §2.3.8: they "MUST NOT" be sent; CVE-2023-51764 family, "SMTP smuggling"): so
``\\n.\\n``, ``\\r.\\r\\n``, ``\\n.\\r\\n`` and ``\\r\\n.\\n`` never end the data, and a message
containing them is refused whole once the real end arrives, so that nothing hidden behind them
can pass as a second message. A line longer than 998 octets (RFC 5321 §4.5.3.1.6, plus the
transparency dot) and a message larger than the limit (RFC 1870) are refused as well, after the
end, keeping the session in step; memory stays bounded by the limit (the excess is discarded).

Work happens per chunk with bytes methods (find, count, replace, one regular expression): no
Python loop per line.
"""

from __future__ import annotations

import re

from . import limits
from .replies import BARE_LINE_END, DATA_LINE_TOO_LONG, MESSAGE_TOO_BIG, Reply

# A line whose text exceeds 998 octets once unstuffed: 999 after a transparency dot, else 998.
_LONG_LINE = re.compile(
    rb"(?m)^(?:\.[^\r\n]{%d}|[^.\r\n][^\r\n]{%d})" % (limits.TEXT_LINE + 1, limits.TEXT_LINE)
)
_END_AT_START = b".\r\n"
_END = b"\r\n.\r\n"


def _has_line_longer_than(content: bytes, limit: int) -> bool:
    """Whether a line of ``content`` (whole CRLF-terminated lines) has more than ``limit``
    octets before its CRLF: one backward search per ``limit`` octets, where splitting the
    lines cost five times as much (210 us per 100 KB)."""
    start, size = 0, len(content)
    while size - start > limit:  # ``start`` begins a line
        last = content.rfind(b"\r\n", start, start + limit + 2)
        if last < 0:  # no line ends within limit octets of ``start``
            return True
        start = last + 2  # every line up to here was short enough
    return False


class DataReceiver:
    """Feed it what the socket gives; :meth:`feed` returns True once the end marker was seen.
    Then :attr:`problem` is None and :meth:`message` the message, or :attr:`problem` is the
    refusal; :attr:`leftover` holds the bytes received after the end marker (pipelined commands).
    """

    def __init__(self, max_size: int) -> None:
        self.max_size = max_size
        self.size = 0  # octets of the message (after unstuffing), counted even past the limit
        self.problem: Reply | None = None
        self.leftover = b""
        self.done = False
        self._pending = bytearray()
        self._parts: list[bytes] = []
        self._mid_line = False  # the pending bytes do not start a line (a long line was cut)

    def feed(self, data: bytes) -> bool:
        if self.done:
            self.leftover += data
            return True
        self._pending += data
        last = self._pending.rfind(b"\r\n")
        if last < 0:
            self._bound_pending()
            return False
        block = bytes(self._pending[: last + 2])
        del self._pending[: last + 2]
        end = self._end_in(block)
        if end >= 0:
            self.leftover = block[end + len(_END_AT_START) :] + bytes(self._pending)
            self._pending.clear()
            self._take(block[:end])
            self.done = True
            return True
        self._take(block)
        self._mid_line = False
        self._bound_pending()
        return False

    def _end_in(self, block: bytes) -> int:
        """Offset of the lone-dot line ending the data in ``block`` (which ends with CRLF and
        starts a line unless ``_mid_line``), or -1."""
        if not self._mid_line and block.startswith(_END_AT_START):
            return 0
        found = block.find(_END)
        return found + 2 if found >= 0 else -1

    def _take(self, content: bytes) -> None:
        """Check and keep ``content``: whole lines (CRLF included), or nothing."""
        if not content:
            return
        crlf = content.count(b"\r\n")
        if content.count(b"\n") != crlf or content.count(b"\r") != crlf:
            self._refuse(BARE_LINE_END)
        elif _has_line_longer_than(content, limits.TEXT_LINE) and _LONG_LINE.search(content):
            # the regular expression tries every offset: only when a line may be too long
            self._refuse(DATA_LINE_TOO_LONG)
        unstuffed = content.replace(b"\r\n.", b"\r\n")
        if not self._mid_line and unstuffed.startswith(b"."):
            unstuffed = unstuffed[1:]
        self.size += len(unstuffed)
        if self.size > self.max_size:
            self._refuse(MESSAGE_TOO_BIG)
        if self.problem is None:
            self._parts.append(unstuffed)

    def _bound_pending(self) -> None:
        """A line that is already too long is cut (its end is kept for the CRLF to come)."""
        if len(self._pending) > limits.DATA_LINE + 2:
            if b"\n" in self._pending or b"\r" in self._pending[:-1]:
                self._refuse(BARE_LINE_END)
            else:
                self._refuse(DATA_LINE_TOO_LONG)
            self.size += len(self._pending) - 1
            del self._pending[:-1]
            self._mid_line = True

    def _refuse(self, reply: Reply) -> None:
        if self.problem is None:
            self.problem = reply
        self._parts.clear()

    def message(self) -> bytes:
        """The received message (only when :attr:`problem` is None)."""
        assert self.done and self.problem is None
        return b"".join(self._parts)
