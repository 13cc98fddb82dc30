"""The sans-IO IMAP server connection: bytes in, typed events out, in the style of h11.

Use (the asyncio adapter and the session layer, in a loop)::

    conn = ImapConnection(limits, tls_active=False)
    write(greeting(...))
    while not conn.closed:
        event = conn.next_event()
        if event is NEED_DATA:
            conn.receive_data(await read())          # b"" at end of stream
        elif isinstance(event, (ContinuationRequest, ProtocolError, SaslCancelled)):
            write(event.data)                          # close the transport if event.fatal
        elif isinstance(event, ConnectionClosed):
            break
        else:                                          # a Command, IdleDone or SaslResponse
            ... execute, write untagged data, then write(conn.send_tagged(tag, "OK", "done"))

Commands are parsed lazily, one at a time, when :meth:`ImapConnection.next_event` is called,
so a pipelined command is checked against the state its predecessors left (RFC 3501 §5.5). A
command is *in progress* from the event until :meth:`send_tagged` answers it; asking for the
next event before that is a :class:`~.errors.ConnectionMisuse`, except where the command reads
more client lines:

- IDLE (RFC 2177): after the Idle event, answer ``send_continuation("idling")``; the next event
  is :class:`IdleDone` (``DONE``), or a :class:`ProtocolError` that already answered the IDLE
  tag with BAD (any other line), or :class:`ConnectionClosed`.
- AUTHENTICATE (RFC 3501 §6.2.2, SASL-IR RFC 4959): after the Authenticate event (its
  ``initial_response`` decoded), answer :meth:`send_sasl_challenge` or :meth:`send_tagged`; the
  next event is a :class:`SaslResponse` (decoded), :class:`SaslCancelled` (``*``, BAD already
  written into its ``data``) or a :class:`ProtocolError` (bad base64, over-long line).
- STARTTLS: from the StartTls event on, every octet the client sent after the STARTTLS line,
  in the same packet or later, is discarded (the STARTTLS command injection, CVE-2011-0411 and
  "NO STARTTLS", USENIX Security 2021; RFC 9051 §6.2.1). After ``send_tagged(tag, "OK", …)``
  the adapter runs the TLS handshake and calls :meth:`tls_established`; only what arrives
  after that is read.

Commands outside their states (:mod:`.states`), syntax errors and broken limits never reach
the session: they come out as :class:`ProtocolError` with the reply bytes ready.

Must not: do I/O, import asyncio/ssl, or know the store.
"""

from __future__ import annotations

import base64
import binascii
from enum import Enum

from . import commands as c
from . import response
from .errors import ConnectionMisuse, ParseError, Status
from .events import (
    NEED_DATA,
    ConnectionClosed,
    ContinuationRequest,
    Event,
    IdleDone,
    ProtocolError,
    SaslCancelled,
    SaslResponse,
)
from .framing import CommandFramer, Framed, LineReader, LiteralAccepted, Refused
from .limits import Limits
from .parser import parse_command, parse_tag
from .states import State, after, refusal

LITERAL_CONTINUATION = response.continuation("Ready for literal data")


class Mode(Enum):
    COMMAND = "command"
    IDLE = "idle"
    AUTHENTICATE = "authenticate"
    STARTTLS = "starttls"
    CLOSED = "closed"


class ImapConnection:
    """One server-side IMAP connection's protocol state (see the module docstring)."""

    def __init__(
        self,
        limits: Limits | None = None,
        *,
        tls_active: bool = False,
        state: State = State.NOT_AUTHENTICATED,
    ) -> None:
        self.limits = limits or Limits()
        self.state = state
        self.tls_active = tls_active
        self.mode = Mode.COMMAND
        self.in_progress: c.Command | None = None
        #: Octets dropped after STARTTLS (the injection defence), for logs and tests.
        self.discarded_after_starttls = 0
        self._buffer = bytearray()
        self._framer = CommandFramer(self.limits)
        self._lines = LineReader()
        self._eof = False
        self._client_turn = False  # AUTHENTICATE: a challenge was sent, a response is due
        self._tls_pending = False

    @property
    def closed(self) -> bool:
        """True once BYE was sent, LOGOUT completed or a fatal error occurred: stop reading,
        write what is pending, close the transport."""
        return self.mode is Mode.CLOSED

    # --- input -------------------------------------------------------------------------------

    def receive_data(self, data: bytes) -> None:
        """Octets read from the transport; ``b""`` when the peer closed its side."""
        if self.mode is Mode.CLOSED or self._eof:
            return
        if not data:
            self._eof = True
        elif self.mode is Mode.STARTTLS:
            self.discarded_after_starttls += len(data)
        else:
            self._buffer += data

    def next_event(self) -> Event:
        """The next event, or :data:`NEED_DATA`."""
        if self.mode is Mode.CLOSED:
            return ConnectionClosed()
        if self.mode is Mode.IDLE:
            return self._idle_event()
        if self.mode is Mode.AUTHENTICATE:
            return self._sasl_event()
        if self.in_progress is not None:
            raise ConnectionMisuse(f"{self.in_progress.name} {self.in_progress.tag} not answered")
        if self.mode is Mode.STARTTLS:
            return self._end_of_input(False)
        self._framer.append_allowed = self.state in (State.AUTHENTICATED, State.SELECTED)
        result = self._framer.next(self._buffer)
        if result is None:
            return self._end_of_input(self._framer.busy)
        if isinstance(result, LiteralAccepted):
            return ContinuationRequest(LITERAL_CONTINUATION)
        if isinstance(result, Refused):
            return self._error(result.tag, result.status, result.text, result.code, result.fatal)
        return self._command(result)

    def _end_of_input(self, incomplete: bool) -> Event:
        if self._eof:
            self.mode = Mode.CLOSED
            return ConnectionClosed(incomplete or bool(self._buffer.strip()))
        return NEED_DATA

    def _command(self, framed: Framed) -> Event:
        tag = parse_tag(framed.segments)
        if tag is None:
            return self._error(None, "BAD", "Invalid tag or missing command")
        try:
            command = parse_command(framed.segments)
        except ParseError as error:
            return self._error(tag, error.status, error.text, error.code)
        refused = refusal(self.state, command.name)
        if refused is not None:
            return self._error(tag, refused[0], refused[1])
        if isinstance(command, c.StartTls):
            if self.tls_active:
                return self._error(tag, "BAD", "TLS is already active")
            self.mode = Mode.STARTTLS
            self.discarded_after_starttls += len(self._buffer)
            self._buffer.clear()
        elif isinstance(command, c.Idle):
            self.mode = Mode.IDLE
            self._lines = LineReader()
        elif isinstance(command, c.Authenticate):
            self.mode = Mode.AUTHENTICATE
            self._lines = LineReader()
            self._client_turn = False
        self.in_progress = command
        return command

    def _error(
        self,
        tag: str | None,
        status: Status,
        text: str,
        code: str | None = None,
        fatal: bool = False,
    ) -> ProtocolError:
        if fatal:
            self.mode = Mode.CLOSED
            data = response.bye(text)
        elif tag is None:
            data = response.untagged(status, text, code)
        else:
            data = response.tagged(tag, status, text, code)
        return ProtocolError(tag, "BYE" if fatal else status, text, data, code, fatal)

    def _idle_event(self) -> Event:
        command = self.in_progress
        assert command is not None
        line = self._lines.next(self._buffer, self.limits.line_length)
        if line is None:
            return self._end_of_input(True)
        self.mode = Mode.COMMAND
        if isinstance(line, bytes) and line.upper() == b"DONE":
            return IdleDone(command.tag)
        self._complete(command, "BAD")  # RFC 2177 §3: only DONE may follow IDLE
        return self._error(command.tag, "BAD", "Expected DONE to end IDLE")

    def _sasl_event(self) -> Event:
        command = self.in_progress
        assert command is not None
        if not self._client_turn:
            raise ConnectionMisuse("AUTHENTICATE: send a challenge or a tagged response first")
        line = self._lines.next(self._buffer, self.limits.sasl_line)
        if line is None:
            return self._end_of_input(True)
        self._client_turn = False
        if not isinstance(line, bytes):
            self._complete(command, "BAD")
            return self._error(command.tag, "BAD", "Authentication response too long")
        if line == b"*":  # RFC 3501 §6.2.2: the client cancels, the server answers BAD
            data = self.send_tagged(command.tag, "BAD", "Authentication cancelled")
            return SaslCancelled(command.tag, data)
        try:
            decoded = base64.b64decode(line, validate=True)
        except binascii.Error:
            self._complete(command, "BAD")
            return self._error(command.tag, "BAD", "Invalid base64 in authentication response")
        return SaslResponse(command.tag, decoded)

    # --- output ------------------------------------------------------------------------------

    def send_tagged(self, tag: str, status: Status, text: str, code: str | None = None) -> bytes:
        """The tagged response that completes the command in progress (RFC 3501 §7.1); the state
        moves as :mod:`.states` says."""
        command = self.in_progress
        if command is None or command.tag != tag:
            raise ConnectionMisuse(f"no command in progress with tag {tag!r}")
        self._complete(command, status)
        return response.tagged(tag, status, text, code)

    def _complete(self, command: c.Command, status: Status) -> None:
        self.in_progress = None
        self.state = after(self.state, command.name, status)
        if isinstance(command, c.StartTls) and status == "OK":
            self._tls_pending = True  # stays in STARTTLS mode until the handshake is done
        elif self.mode is not Mode.CLOSED:
            self.mode = Mode.COMMAND
        if self.state is State.LOGOUT:
            self.mode = Mode.CLOSED

    def send_continuation(self, text: str = "") -> bytes:
        """``+ text``: the IDLE acknowledgement (``idling``) or any other continuation."""
        if self.in_progress is None:
            raise ConnectionMisuse("a continuation needs a command in progress")
        return response.continuation(text)

    def send_sasl_challenge(self, challenge: bytes) -> bytes:
        """``+ base64(challenge)`` in an AUTHENTICATE exchange; a client response is then due."""
        if self.mode is not Mode.AUTHENTICATE or self._client_turn:
            raise ConnectionMisuse("no AUTHENTICATE step is waiting for a challenge")
        self._client_turn = True
        return b"+ " + base64.b64encode(challenge) + b"\r\n"

    def send_bye(self, text: str) -> bytes:
        """``* BYE text`` (LOGOUT, shutdown, idle timeout); the connection is closed after it.
        A LOGOUT in progress may still be answered with :meth:`send_tagged`."""
        self.mode = Mode.CLOSED
        return response.bye(text)

    def tls_established(self) -> None:
        """The TLS handshake after STARTTLS's OK completed: read commands again, from scratch
        (nothing received before the handshake is kept)."""
        if not self._tls_pending:
            raise ConnectionMisuse("tls_established() without an accepted STARTTLS")
        self._tls_pending = False
        self.tls_active = True
        self._buffer.clear()
        self._framer.reset()
        self.mode = Mode.COMMAND
