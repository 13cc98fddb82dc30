"""The SMTP session: aiosmtpd's ``SMTP`` protocol, subclassed where it falls short for pli.

Kept from aiosmtpd: the connection life cycle (StreamReaderProtocol), the STARTTLS upgrade of the
transport, the idle timer. Replaced (architecture.md § Stack):

- the command loop: our own line reader over large socket reads, per-verb line limits
  (RFC 5321 §4.5.3.1.4 and the extensions' additions), errors and junk commands counted and the
  connection closed past the limits (421), every reply with an enhanced status code (RFC 2034);
- STARTTLS: anything the client pipelined after STARTTLS is discarded before the handshake
  (RFC 3207 §4.2; CVE-2011-0411 "STARTTLS command injection"), and the session is reset after it;
- MAIL and RCPT: strict paths and the DSN parameters (RFC 3461) instead of aiosmtpd's 555;
- AUTH: asynchronous, over our SASL exchanges, offered only once TLS is active, and working on
  implicit TLS too (aiosmtpd refuses it there: ``_tls_protocol`` is None);
- DATA: read in 256 KB chunks by :class:`~pli.mailgateway.smtp.data.DataReceiver` (smuggling
  protections, size and line limits) instead of line by line;
- BDAT (CHUNKING) is not offered: a client sending it anyway is answered and disconnected, since
  its binary chunk cannot be told apart from commands.

Decisions belong to the handler (:class:`~pli.mailgateway.smtp.hooks.Handler`); this module only
speaks the protocol.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import ssl
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from aiosmtpd.smtp import SMTP

from pli.mailbox.auth.sasl import Challenge, SaslError, SaslExchange

from . import limits as L
from . import replies as R
from .data import DataReceiver
from .hooks import Connection, Handler, MailTransaction, Recipient
from .params import parse_mail, parse_rcpt
from .replies import Reply, SmtpError

log = structlog.get_logger(__name__)

#: Replies that count as client errors (RFC 5321 §4.2.2 syntax and sequence, failed AUTH);
#: policy refusals of recipients do not (a bulk mailing to some closed profiles is not abuse).
ERROR_CODES = frozenset({500, 501, 502, 503, 504, 530, 535, 538, 555})
JUNK_VERBS = frozenset({"NOOP", "RSET", "VRFY", "HELP", "EHLO", "HELO"})
_LONGEST_LINE = max(L.MAIL_LINE, L.RCPT_LINE, L.AUTH_LINE)


class _NoHooks:
    """aiosmtpd looks for ``handle_*`` hooks on its handler; ours are called directly."""


class ConnectionRegistry:
    """The sessions of one listener: connection limits (total and per peer address) and the
    graceful stop."""

    def __init__(self, limits: L.SmtpLimits) -> None:
        self.limits = limits
        self.sessions: set[SmtpSession] = set()
        self.per_peer: Counter[str] = Counter()
        self.stopping = False
        self._empty = asyncio.Event()
        self._empty.set()

    def admit(self, session: SmtpSession) -> Reply | None:
        if self.stopping:
            return R.SHUTTING_DOWN
        if len(self.sessions) >= self.limits.connections:
            return R.TOO_MANY_CONNECTIONS
        peer = session.connection.peer_host
        if self.per_peer[peer] >= self.limits.connections_per_peer:
            return R.TOO_MANY_PEER_CONNECTIONS
        self.sessions.add(session)
        self.per_peer[peer] += 1
        self._empty.clear()
        return None

    def release(self, session: SmtpSession) -> None:
        if session in self.sessions:
            self.sessions.discard(session)
            peer = session.connection.peer_host
            self.per_peer[peer] -= 1
            if self.per_peer[peer] <= 0:
                del self.per_peer[peer]
        if not self.sessions:
            self._empty.set()

    async def stop(self, grace: float) -> None:
        """Idle sessions get 421 at once; those in a transaction finish it (within ``grace``),
        then get 421; whatever remains after ``grace`` is cut."""
        self.stopping = True
        for session in list(self.sessions):
            session.request_close()
        try:
            await asyncio.wait_for(self._empty.wait(), timeout=max(grace, 0.0))
        except TimeoutError:
            for session in list(self.sessions):
                session.abort()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._empty.wait(), timeout=5.0)


class SmtpSession(SMTP):
    """One SMTP connection of a pli listener."""

    # aiosmtpd gives this to its StreamReader as buffer limit; here it only bounds how much the
    # transport buffers before pausing (our own reader enforces the line limits).
    line_length_limit = L.DATA_CHUNK

    def __init__(
        self,
        handler: Handler,
        *,
        listener: str,
        hostname: str,
        limits: L.SmtpLimits,
        registry: ConnectionRegistry,
        tls_context: ssl.SSLContext | None = None,
    ) -> None:
        super().__init__(
            _NoHooks(),
            hostname=hostname,
            ident="pli",
            tls_context=tls_context,
            data_size_limit=limits.message_size,
            enable_SMTPUTF8=True,
            timeout=limits.command_timeout,
        )
        self.handler = handler
        self.listener = listener
        self.limits = limits
        self.registry = registry
        self.connection = Connection(listener, "", 0)
        self.transaction: MailTransaction | None = None
        self._inbuf = bytearray()
        self._outbuf = bytearray()  # replies held while pipelined commands wait (RFC 2920)
        self._errors = 0
        self._junk = 0
        self._idle = False  # waiting for a command outside a transaction
        self._close_requested = False
        self._finished = False
        self._commands: dict[str, Callable[[str], Awaitable[None]]] = {
            "EHLO": self._ehlo,
            "HELO": self._helo,
            "STARTTLS": self._starttls,
            "AUTH": self._auth,
            "MAIL": self._mail,
            "RCPT": self._rcpt,
            "DATA": self._data,
            "RSET": self._rset,
            "NOOP": self._noop,
            "QUIT": self._quit,
            "VRFY": self._vrfy,
            "HELP": self._help,
            "EXPN": self._expn,
            "BDAT": self._bdat,
        }

    # -- connection life cycle ---------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        peer = transport.get_extra_info("peername")
        if isinstance(peer, tuple) and self.connection.peer_host == "":
            self.connection.peer_host, self.connection.peer_port = str(peer[0]), int(peer[1])
        super().connection_made(transport)

    def _timeout_cb(self) -> None:
        if self.transport is not None and not self._finished:
            with contextlib.suppress(Exception):
                self._writer.write(R.TIMEOUT.line.encode() + b"\r\n")
            log.info("smtp-timeout", connection=self.connection.id, peer=self.connection.peer_host)
        self._finished = True
        super()._timeout_cb()

    def request_close(self) -> None:
        """Graceful stop: close now if idle, else after the current transaction."""
        self._close_requested = True
        if self._idle and not self._finished:
            with contextlib.suppress(Exception):
                self._writer.write(R.SHUTTING_DOWN.line.encode() + b"\r\n")
            self._close_transport()

    def abort(self) -> None:
        self._finished = True
        if isinstance(self.transport, asyncio.WriteTransport):
            self.transport.abort()

    def _close_transport(self) -> None:
        self._finished = True
        if self.transport is not None:
            transport = self.transport
            if (
                self._outbuf
                and isinstance(transport, asyncio.WriteTransport)
                and not transport.is_closing()
            ):
                transport.write(bytes(self._outbuf))  # written before the close
            self._outbuf.clear()
            self.transport.close()

    async def _handle_client(self) -> None:
        refusal = self.registry.admit(self)
        if refusal is not None:
            with contextlib.suppress(Exception):
                await self._send(refusal)
            self._close_transport()
            return
        try:
            await self._serve()
        except asyncio.CancelledError:
            raise
        except (ConnectionError, ssl.SSLError, OSError) as error:
            log.info("smtp-connection-lost", connection=self.connection.id, error=repr(error))
            self._close_transport()
        except Exception:
            log.exception("smtp-session-failed", connection=self.connection.id)
            self._close_transport()
        finally:
            self.registry.release(self)

    async def _serve(self) -> None:
        assert self.transport is not None
        ssl_object = self.transport.get_extra_info("ssl_object")
        if ssl_object is not None:  # implicit TLS: the handshake is done
            await self._tls_up(ssl_object)
        await self._send(Reply(220, "", f"{self.hostname} ESMTP pli"))
        while not self._finished:
            self._idle = self.transaction is None
            if self._idle and self._close_requested:
                await self._send(R.SHUTTING_DOWN)
                break
            line = await self._read_line(_LONGEST_LINE)
            self._idle = False
            if line is None:
                break
            await self._command(line)
        self._close_transport()

    # -- reading -----------------------------------------------------------------------------

    async def _fill(self) -> bool:
        data = await self._read_chunk()
        if not data:
            return False
        self._inbuf += data
        return True

    async def _read_line(self, limit: int) -> bytes | None:
        """One line without its end (CRLF; a bare LF is tolerated outside DATA); None at EOF.
        A line longer than ``limit`` is discarded whole and reported as ``b"\\x00"``."""
        too_long = False
        while True:
            end = self._inbuf.find(b"\n")
            if end >= 0:
                line = bytes(self._inbuf[:end])
                del self._inbuf[: end + 1]
                if too_long or len(line) + 1 > limit:
                    return b"\x00"
                return line[:-1] if line.endswith(b"\r") else line
            if len(self._inbuf) > limit:
                too_long = True
                self._inbuf.clear()
            if not await self._fill():
                return None

    # -- replies -----------------------------------------------------------------------------

    async def _send(self, reply: Reply) -> None:
        await self._queue_reply(reply.line.encode("ascii") + b"\r\n")

    async def _queue_reply(self, data: bytes) -> None:
        """Send ``data``, or hold it while the client's next command is already here: the
        replies to a pipelined group go out together, in one TLS record and one write, when
        the server would otherwise wait for the client (RFC 2920 §3.2; every read flushes)."""
        self._outbuf += data
        if b"\n" not in self._inbuf:
            await self._flush()

    async def _read_chunk(self) -> bytes:
        """What the client sent next; held replies leave first (the client may wait for them)."""
        await self._flush()
        return await self._reader.read(L.DATA_CHUNK)

    async def _flush(self) -> None:
        if self._outbuf:
            self._writer.write(bytes(self._outbuf))
            self._outbuf.clear()
            await self._writer.drain()

    async def push(self, status: Any) -> None:
        """aiosmtpd's own replies: only its STARTTLS (``super().smtp_STARTTLS``) still speaks,
        with ``220 Ready to start TLS``; sent as ours, with its enhanced code (RFC 2034 §3)."""
        if status == "220 Ready to start TLS":
            await self._send(R.READY_FOR_TLS)
            return
        await super().push(status)

    async def _send_lines(self, code: int, lines: list[str]) -> None:
        text = "".join(
            f"{code}{'-' if index < len(lines) - 1 else ' '}{line}\r\n"
            for index, line in enumerate(lines)
        )
        await self._queue_reply(text.encode("ascii"))

    async def _reply(self, reply: Reply) -> None:
        """Send ``reply``; count it if it is a client error, and close past the limit."""
        if reply.code in ERROR_CODES:
            self._errors += 1
            if self._errors >= self.limits.errors_before_disconnect:
                await self._send(reply)
                await self._send(R.TOO_MANY_ERRORS)
                log.info("smtp-too-many-errors", connection=self.connection.id)
                self._close_transport()
                return
        await self._send(reply)

    # -- commands ----------------------------------------------------------------------------

    async def _command(self, line: bytes) -> None:
        if line == b"\x00":
            await self._reply(R.LINE_TOO_LONG)
            return
        verb_bytes, _, argument_bytes = line.partition(b" ")
        try:
            verb = verb_bytes.decode("ascii").upper()
            argument = argument_bytes.decode("utf-8").strip(" ")
        except UnicodeDecodeError:
            await self._reply(R.SYNTAX.with_text("Command is not valid UTF-8"))
            return
        if len(line) + 2 > L.line_limit(verb):
            await self._reply(R.LINE_TOO_LONG)
            return
        method = self._commands.get(verb)
        if method is None:
            await self._reply(R.UNKNOWN_COMMAND)
            return
        if verb in JUNK_VERBS:
            self._junk += 1
            if self._junk > self.limits.junk_commands:
                await self._send(R.TOO_MANY_JUNK)
                self._close_transport()
                return
        self._reset_timeout()
        try:
            await method(argument)
        except SmtpError as error:
            await self._reply(error.reply)
            if error.close:
                self._close_transport()
        except (asyncio.CancelledError, ConnectionError, ssl.SSLError):
            raise
        except Exception:
            log.exception("smtp-command-failed", verb=verb, connection=self.connection.id)
            await self._reply(R.SERVER_ERROR)
        if self._close_requested and self.transaction is None and not self._finished:
            await self._send(R.SHUTTING_DOWN)
            self._close_transport()

    def _reset_session(self) -> None:
        self.transaction = None

    async def _helo(self, argument: str) -> None:
        if not argument:
            raise SmtpError(R.SYNTAX.with_text("Syntax: HELO hostname"))
        self._reset_session()
        self.connection.helo, self.connection.esmtp = argument.split(" ")[0], False
        await self._send(Reply(250, "", self.hostname))

    async def _ehlo(self, argument: str) -> None:
        if not argument:
            raise SmtpError(R.SYNTAX.with_text("Syntax: EHLO hostname"))
        self._reset_session()
        self.connection.helo, self.connection.esmtp = argument.split(" ")[0], True
        lines = [
            self.hostname,
            "PIPELINING",
            f"SIZE {self.limits.message_size}",
            "8BITMIME",
            "SMTPUTF8",
            "ENHANCEDSTATUSCODES",
            "DSN",
        ]
        if self.tls_context is not None and not self.connection.tls_active:
            lines.append("STARTTLS")
        mechanisms = self.handler.auth_mechanisms(self.connection)
        if mechanisms and self.connection.tls_active:
            lines.append("AUTH " + " ".join(mechanisms))
        lines.append("HELP")
        await self._send_lines(250, lines)

    async def _starttls(self, argument: str) -> None:
        if argument:
            raise SmtpError(R.SYNTAX.with_text("Syntax: STARTTLS"))
        if self.connection.tls_active:
            raise SmtpError(R.TLS_ALREADY)
        if self.tls_context is None:
            raise SmtpError(R.TLS_NOT_AVAILABLE)
        if self._inbuf:  # RFC 3207 §4.2; CVE-2011-0411: never act on pipelined plaintext
            log.warning(
                "smtp-starttls-injection",
                connection=self.connection.id,
                discarded=len(self._inbuf),
            )
            self._inbuf.clear()
        try:
            await super().smtp_STARTTLS("")
        except Exception as error:
            log.info("smtp-tls-failed", connection=self.connection.id, error=repr(error.__cause__))
            self._close_transport()
            return
        self._inbuf.clear()
        assert self.transport is not None
        self._reset_session()
        self.connection.helo, self.connection.esmtp = "", False  # RFC 3207 §4.2
        await self._tls_up(self.transport.get_extra_info("ssl_object"))

    async def _tls_up(self, ssl_object: Any) -> None:
        self.connection.tls = ssl_object
        await self.handler.tls_established(self.connection)

    async def _auth(self, argument: str) -> None:
        mechanisms = self.handler.auth_mechanisms(self.connection)
        if not mechanisms and not self.handler.auth_required():
            raise SmtpError(R.AUTH_NOT_AVAILABLE)
        if not self.connection.esmtp:
            raise SmtpError(R.BAD_SEQUENCE.with_text("Send EHLO first"))
        if not self.connection.tls_active:
            raise SmtpError(R.AUTH_NEEDS_TLS)
        if self.connection.principal is not None:
            raise SmtpError(R.AUTH_ALREADY)
        if self.transaction is not None:
            raise SmtpError(R.BAD_SEQUENCE.with_text("AUTH not allowed during a transaction"))
        parts = argument.split(" ")
        if not argument or len(parts) > 2:
            raise SmtpError(R.SYNTAX.with_text("Syntax: AUTH mechanism [initial-response]"))
        mechanism = parts[0].upper()
        if mechanism not in mechanisms:
            raise SmtpError(R.AUTH_MECHANISM_UNKNOWN)
        exchange = SaslExchange(mechanism)
        response = _decode_initial(parts[1]) if len(parts) == 2 else None
        try:
            while True:
                step = exchange.step(response)
                if not isinstance(step, Challenge):
                    break
                response = await self._sasl_response(step.data)
        except SaslError as error:
            raise SmtpError(R.SYNTAX.with_text(str(error))) from None
        try:
            principal = await self.handler.authenticate(self.connection, step)
        except SmtpError as error:
            if mechanism == "OAUTHBEARER" and error.reply.code == 535:
                # RFC 7628 §3.2.2: the error as a challenge, the client answers ^A, then 535.
                await self._sasl_response(exchange.bearer_failure_challenge().data)
            raise
        self.connection.principal = principal
        await self._send(R.AUTH_OK)

    async def _sasl_response(self, challenge: bytes) -> bytes:
        await self._send(Reply(334, "", base64.b64encode(challenge).decode("ascii")))
        line = await self._read_line(L.AUTH_LINE)
        if line is None:
            raise ConnectionResetError("connection closed during AUTH")
        if line == b"\x00":
            raise SmtpError(R.LINE_TOO_LONG)
        if line.strip() == b"*":  # RFC 4954 §4: the client cancels
            raise SmtpError(R.AUTH_ABORTED)
        return _decode_base64(line.strip())

    async def _mail(self, argument: str) -> None:
        if not self.connection.helo:
            raise SmtpError(R.BAD_SEQUENCE.with_text("Send EHLO first"))
        if self.transaction is not None:
            raise SmtpError(R.BAD_SEQUENCE.with_text("Nested MAIL command"))
        if self.handler.auth_required() and self.connection.principal is None:
            raise SmtpError(R.AUTH_REQUIRED)
        if self.connection.messages >= self.limits.messages_per_connection:
            raise SmtpError(R.TOO_MANY_MESSAGES, close=True)
        sender, params = parse_mail(argument, dsn=self.connection.esmtp)
        if params.size is not None and params.size > self.limits.message_size:
            raise SmtpError(R.MESSAGE_TOO_BIG)  # RFC 1870 §6.2
        reply = await self.handler.mail(self.connection, sender, params)
        if reply.positive:
            self.transaction = MailTransaction(sender, params)
        await self._reply(reply)

    async def _rcpt(self, argument: str) -> None:
        transaction = self.transaction
        if transaction is None:
            raise SmtpError(R.BAD_SEQUENCE.with_text("Need MAIL command"))
        address, params = parse_rcpt(argument, smtputf8=transaction.params.smtputf8)
        if len(transaction.recipients) >= self.limits.recipients:
            raise SmtpError(R.TOO_MANY_RECIPIENTS)  # RFC 5321 §4.5.3.1.10
        recipient = Recipient(address, params)
        reply = await self.handler.rcpt(self.connection, transaction, recipient)
        if reply.positive:
            transaction.recipients.append(recipient)
        await self._reply(reply)

    async def _data(self, argument: str) -> None:
        transaction = self.transaction
        if argument:
            raise SmtpError(R.SYNTAX.with_text("Syntax: DATA"))
        if transaction is None:
            raise SmtpError(R.BAD_SEQUENCE.with_text("Need MAIL command"))
        if not transaction.recipients:
            raise SmtpError(R.NO_VALID_RECIPIENTS)  # RFC 2920 §3.1
        await self._send(R.START_DATA)
        self._reset_timeout(self.limits.data_timeout)
        receiver = DataReceiver(self.limits.message_size)
        pending, self._inbuf = bytes(self._inbuf), bytearray()
        done = receiver.feed(pending) if pending else False
        while not done:
            chunk = await self._read_chunk()  # after the 354 a client may wait for
            if not chunk:
                raise ConnectionResetError("connection closed during DATA")
            done = receiver.feed(chunk)
        self._inbuf += receiver.leftover
        self._reset_timeout()
        self.transaction = None
        if receiver.problem is not None:
            log.info(
                "smtp-data-refused",
                connection=self.connection.id,
                reply=receiver.problem.line,
                size=receiver.size,
            )
            await self._reply(receiver.problem)
            if receiver.problem is R.BARE_LINE_END:
                # As Postfix's smtpd_forbid_bare_newline: after a bare CR or LF nothing that
                # follows is trusted to be a command (SMTP smuggling); the client reconnects.
                await self._send(R.BARE_LINE_END_CLOSING)
                self._close_transport()
            return
        reply = await self.handler.data(self.connection, transaction, receiver.message())
        if reply.positive:
            self.connection.messages += 1
            self._junk = 0
        await self._reply(reply)

    async def _rset(self, argument: str) -> None:
        self.transaction = None
        await self._send(R.RESET)

    async def _noop(self, argument: str) -> None:
        await self._send(R.OK)

    async def _quit(self, argument: str) -> None:
        await self._send(R.BYE)
        self._close_transport()

    async def _vrfy(self, argument: str) -> None:
        if not argument:
            raise SmtpError(R.SYNTAX.with_text("Syntax: VRFY address"))
        await self._send(R.VRFY_CANNOT)  # RFC 5321 §3.5.3: no address harvesting

    async def _help(self, argument: str) -> None:
        await self._send(Reply(214, "2.0.0", "See RFC 5321; pli accepts mail for its domains"))

    async def _expn(self, argument: str) -> None:
        raise SmtpError(R.NOT_IMPLEMENTED)

    async def _bdat(self, argument: str) -> None:
        # Not advertised (RFC 3030 §2): the chunk that follows cannot be told from commands.
        raise SmtpError(R.NOT_IMPLEMENTED.with_text("BDAT not supported; closing"), close=True)


def _decode_base64(data: bytes) -> bytes:
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise SmtpError(R.SYNTAX.with_text("Cannot decode base64")) from None


def _decode_initial(text: str) -> bytes:
    """RFC 4954 §4: "=" is an empty initial response."""
    return b"" if text == "=" else _decode_base64(text.encode("ascii", "replace"))
