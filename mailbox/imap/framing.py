"""Framing: octets to whole commands (lines and literals), with every size limit applied.

:class:`CommandFramer` consumes a connection's receive buffer and returns, one at a time:

- :class:`Framed` — a complete command as segments ``[text0, literal0, text1, …]``: each text
  segment but the last ends with the marker ``{n}``, ``{n+}`` or ``~{n}`` of the literal that
  follows it (RFC 3501 §4.3, RFC 7888, RFC 3516); CRLF (or a bare LF, as Dovecot accepts) removed;
- :class:`LiteralAccepted` — a synchronizing literal fits the limits: the client waits for
  ``+`` before sending it (RFC 3501 §7.5);
- :class:`Refused` — the command broke a limit. It is reported only once the whole command has
  gone by, so that the next command starts at a command boundary: an over-long line is dropped
  up to its end, a non-synchronizing literal over its limit is read and dropped (RFC 7888
  allows reading and ignoring it, or closing), a synchronizing one is refused before the client
  sends it. ``fatal`` when resynchronising is impossible or not worth it (a malformed literal
  marker, whose octets would otherwise run as commands; a literal over
  :data:`~.limits.MAX_DISCARDED_LITERAL`): the connection sends ``* BYE`` and closes.

Memory: a refused line or literal is discarded as it arrives; what is kept is at most the line
budget plus the literals that fit their limits.

:class:`LineReader` reads the single lines of IDLE (``DONE``) and AUTHENTICATE exchanges, with
the same discard-until-end-of-line rule for over-long lines.

Must not: parse arguments (that is :mod:`.parser`) or know states.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from .errors import Status
from .limits import Limits
from .reader import TAG

#: How much of a discarded line is kept to recognise a literal marker at its end.
_TAIL: Final = 32
_MARKER: Final = re.compile(rb"\{([0-9]{1,20})(\+?)\}")
_COMMAND_WORD: Final = re.compile(rb" ([A-Za-z]+)")


@dataclass(frozen=True, slots=True)
class Framed:
    segments: list[bytes]


@dataclass(frozen=True, slots=True)
class LiteralAccepted:
    size: int


@dataclass(frozen=True, slots=True)
class Refused:
    tag: str | None
    status: Status
    text: str
    code: str | None = None
    fatal: bool = False


FrameResult = Framed | LiteralAccepted | Refused

_MALFORMED: Final = -1


def literal_marker(line: bytes) -> tuple[int, bool] | int | None:
    """(size, synchronizing) when ``line`` ends with a literal marker, :data:`_MALFORMED` when
    it ends with something brace-enclosed that is not one (``{x}``, ``{}``), else None."""
    if not line.endswith(b"}"):
        return None
    brace = line.rfind(b"{")
    if brace < 0:
        return None
    marker = _MARKER.fullmatch(line, brace)
    if marker is not None:
        return int(marker.group(1)), not marker.group(2)
    if b" " in line[brace:] or b'"' in line[brace:]:
        return None
    return _MALFORMED


class CommandFramer:
    """Frames one command at a time out of a connection's buffer (see the module docstring)."""

    def __init__(self, limits: Limits) -> None:
        self._limits = limits
        #: Whether APPEND's message literal may use ``message_size`` (set by the connection:
        #: only once authenticated, so that an anonymous peer cannot make us buffer megabytes).
        self.append_allowed = True
        self.reset()

    def reset(self) -> None:
        self._segments: list[bytes] = []
        self._text_total = 0
        self._literal_total = 0
        self._scan = 0
        self._literal_size: int | None = None
        self._discard = 0
        self._discarding_line = False
        self._tail = b""
        self._refusal: Refused | None = None
        self._tag: str | None = None
        self._append = False

    @property
    def busy(self) -> bool:
        """A command has started and is not complete."""
        return bool(self._segments) or self._refusal is not None or self._literal_size is not None

    def next(self, buffer: bytearray) -> FrameResult | None:
        """The next result, consuming ``buffer`` from the front; None until more data comes."""
        while True:
            if self._discard:
                dropped = min(len(buffer), self._discard)
                del buffer[:dropped]
                self._discard -= dropped
                if self._discard:
                    return None
                self._discarding_line = True  # the rest of the command's line goes too
                continue
            if self._literal_size is not None:
                size = self._literal_size
                if len(buffer) < size:
                    return None
                self._segments.append(bytes(buffer[:size]))
                del buffer[:size]
                self._literal_size = None
                continue
            newline = buffer.find(b"\n", self._scan)
            if newline < 0:
                self._no_line_yet(buffer)
                return None
            line = bytes(buffer[:newline])
            del buffer[: newline + 1]
            self._scan = 0
            if line.endswith(b"\r"):
                line = line[:-1]
            result = self._line(line)
            if result is not None:
                return result

    def _no_line_yet(self, buffer: bytearray) -> None:
        if self._discarding_line:
            self._tail = (self._tail + bytes(buffer[-_TAIL:]))[-_TAIL:]
            del buffer[:]
            self._scan = 0
        elif self._text_total + len(buffer) > self._limits.line_length + 1:  # + its CR
            if not self._segments:
                self._peek_tag(bytes(buffer[:256]))
            self._refuse(Refused(self._tag, "BAD", "Command line too long"))
            self._discarding_line = True
            self._tail = bytes(buffer[-_TAIL:])
            del buffer[:]
            self._scan = 0
        else:
            self._scan = len(buffer)

    def _line(self, line: bytes) -> FrameResult | None:
        if self._discarding_line:
            return self._end_of_discarded_line((self._tail + line)[-_TAIL:])
        if not self._segments and not line.strip():
            return None  # an empty line between commands: ignored (some clients send one)
        if not self._segments:
            self._peek_tag(line)
        self._text_total += len(line)
        if self._text_total > self._limits.line_length:
            self._refuse(Refused(self._tag, "BAD", "Command line too long"))
            return self._end_of_discarded_line(line[-_TAIL:])
        marker = literal_marker(line)
        if marker is None:
            self._segments.append(line)
            framed = Framed(self._segments)
            self.reset()
            return framed
        if not isinstance(marker, tuple):
            return self._fatal("Invalid literal")
        size, synchronizing = marker
        refusal = self._check_literal(size)
        if refusal is not None:
            self._refuse(refusal)
            return self._end_of_discarded_line(line[-_TAIL:])
        self._segments.append(line)
        self._literal_size = size
        return LiteralAccepted(size) if synchronizing else None

    def _check_literal(self, size: int) -> Refused | None:
        limits = self._limits
        if self._append:
            self._literal_total += size
            if size > limits.message_size or self._literal_total > (
                limits.message_size + limits.argument_literals_total
            ):
                # APPENDLIMIT (RFC 7889): a message over the limit is NO [TOOBIG] (RFC 4469).
                return Refused(self._tag, "NO", "Message too large", "TOOBIG")
            return None
        self._literal_total += size
        if size > limits.argument_literal or self._literal_total > limits.argument_literals_total:
            return Refused(self._tag, "BAD", "Literal too large")
        return None

    def _end_of_discarded_line(self, tail: bytes) -> FrameResult | None:
        """The line of a refused command ended: drop its non-synchronizing literal and go on,
        or report the refusal (no literal, or a synchronizing one the client will not send)."""
        self._discarding_line = False
        self._tail = b""
        marker = literal_marker(tail)
        if isinstance(marker, tuple):
            size, synchronizing = marker
            if not synchronizing:
                if size > self._limits.discarded_literal:
                    return self._fatal("Literal too large")
                self._discard = size
                return None
        elif marker == _MALFORMED:
            return self._fatal("Invalid literal")
        refusal = self._refusal
        self.reset()
        return refusal

    def _refuse(self, refusal: Refused) -> None:
        if self._refusal is None:
            self._refusal = refusal
        self._segments = []

    def _fatal(self, text: str) -> Refused:
        tag = self._tag
        self.reset()
        return Refused(tag, "BYE", text, fatal=True)

    def _peek_tag(self, first: bytes) -> None:
        """The tag and command word of a command's first line, for limits and error replies."""
        if self._tag is not None:
            return
        match = TAG.match(first)
        if match is None or not first.startswith(b" ", match.end()):
            return
        self._tag = match.group().decode("ascii")
        word = _COMMAND_WORD.match(first, match.end())
        self._append = (
            self.append_allowed and word is not None and word.group(1).upper() == b"APPEND"
        )


class TooLong:
    """A line over the limit, dropped."""

    __slots__ = ()


TOO_LONG: Final = TooLong()


class LineReader:
    """Single lines (IDLE's DONE, SASL responses) of at most ``limit`` octets, CRLF removed."""

    def __init__(self) -> None:
        self._discarding = False
        self._scan = 0

    def next(self, buffer: bytearray, limit: int) -> bytes | TooLong | None:
        while True:
            newline = buffer.find(b"\n", self._scan)
            if newline < 0:
                if self._discarding or len(buffer) > limit + 1:  # + its CR
                    self._discarding = True
                    del buffer[:]
                    self._scan = 0
                else:
                    self._scan = len(buffer)
                return None
            line = bytes(buffer[:newline])
            del buffer[: newline + 1]
            self._scan = 0
            if self._discarding or len(line) > limit + 1:
                self._discarding = False
                return TOO_LONG
            return line[:-1] if line.endswith(b"\r") else line
