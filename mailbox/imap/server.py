"""The asyncio adapter of the IMAP server: sockets and TLS around the sans-IO core and the
session (hypercorn's TCPServer is the model: read, feed, write).

- :class:`ImapConnectionHandler` drives one connection over asyncio streams (real sockets, or
  in-memory streams in the session tests): reads with the idle timeout (``limits.
  imap_idle_timeout`` once authenticated, :data:`PREAUTH_TIMEOUT` before), feeds
  :class:`~.connection.ImapConnection`, paces commands with the core's
  :class:`~.limits.CommandRateLimiter`, hands commands to :class:`~.session.ImapSession`, runs
  STARTTLS (``StreamWriter.start_tls``) and IDLE (reading the client while the change feed may
  wake the session), and says ``* BYE`` on timeout and shutdown.
- :class:`ImapServer` listens on a bound socket (implicit TLS on the accept, or plain for
  STARTTLS), counts sessions per account, and stops gracefully: accepting ends at once,
  connections waiting for a command get ``* BYE`` at once, commands in progress may finish
  within the grace period.

Must not: interpret commands (the session does) or parse bytes (the core does).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import time
from collections.abc import Awaitable, Callable
from typing import Any, Final

import structlog

from . import commands as c
from .connection import ImapConnection
from .events import NEED_DATA, ConnectionClosed, ContinuationRequest, ProtocolError, SaslCancelled
from .limits import CommandRateLimiter
from .session import ImapSession, SessionServices

log = structlog.get_logger(__name__)

#: Octets read from the socket at a time.
READ_SIZE: Final = 65536
#: Before authentication a silent client is dropped sooner (RFC 9051 §5.4's 30-minute minimum
#: applies to authenticated sessions only; Dovecot's login processes allow 60 s too).
PREAUTH_TIMEOUT: Final = 60.0
#: Time allowed for a TLS handshake (implicit, or after STARTTLS).
TLS_HANDSHAKE_TIMEOUT: Final = 30.0

_SHUTDOWN: Final = "Server shutting down"
_AUTOLOGOUT: Final = "Autologout; idle for too long"


#: Responses are gathered up to this many octets before they reach the transport: a TLS
#: transport encrypts each write as its own record, and a 10,000-line FETCH written line by
#: line cost more in TLS records than in building the lines.
WRITE_BUFFER: Final = 65536


class _StreamOutput:
    """The session's Output over an asyncio StreamWriter, buffered: what is written reaches the
    transport at :data:`WRITE_BUFFER` octets or at :meth:`drain` (called before every read)."""

    def __init__(self, writer: Any) -> None:
        self.writer = writer
        self._buffer = bytearray()

    def write(self, data: bytes) -> None:
        self._buffer += data
        if len(self._buffer) >= WRITE_BUFFER:
            self.flush()

    def flush(self) -> None:
        if self._buffer:
            self.writer.write(bytes(self._buffer))
            self._buffer.clear()

    async def drain(self) -> None:
        self.flush()
        await self.writer.drain()


def discard_buffered(reader: asyncio.StreamReader) -> int:
    """Drop what the client sent after STARTTLS and before the handshake: plaintext a legitimate
    client never sends (CVE-2011-0411 class; the core drops what it already read). asyncio
    offers no public way to empty a StreamReader's buffer."""
    buffer: bytearray = reader._buffer  # type: ignore[attr-defined]
    dropped = len(buffer)
    buffer.clear()
    return dropped


class ImapConnectionHandler:
    def __init__(
        self,
        services: SessionServices,
        reader: asyncio.StreamReader,
        writer: Any,
        *,
        tls_active: bool,
        starttls_context: ssl.SSLContext | None = None,
        remote: str = "",
        stopping: asyncio.Event | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.services = services
        self.sleep = sleep
        self.reader = reader
        self.writer = writer
        self.out = _StreamOutput(writer)
        self.starttls_context = starttls_context
        self.remote = remote
        self.stopping = stopping or asyncio.Event()
        self.clock = clock
        self.conn = ImapConnection(services.limits, tls_active=tls_active)
        self.session = ImapSession(
            services,
            self.conn,
            self.out,
            remote=remote,
            starttls_available=starttls_context is not None,
        )
        self.limiter = CommandRateLimiter(services.limits.commands_per_second)
        self.busy = False  # a command is being executed (shutdown lets it finish)
        if tls_active:
            self.session.tls_started(writer.get_extra_info("ssl_object"))

    async def run(self) -> None:
        """Serve the connection until LOGOUT, BYE, end of stream or a transport error."""
        try:
            self.out.write(self.session.greeting())
            await self._serve()
        except (ConnectionError, TimeoutError, ssl.SSLError) as error:
            log.info("imap-connection-lost", remote=self.remote, error=type(error).__name__)
        finally:
            self.session.close()
            await self._close()

    async def _serve(self) -> None:
        conn = self.conn
        while not conn.closed:
            event = conn.next_event()
            if event is NEED_DATA:
                await self.out.drain()
                data = await self._read()
                if data is None:
                    break
                conn.receive_data(data)
            elif isinstance(event, ContinuationRequest | ProtocolError | SaslCancelled):
                self.session.idling = False  # a line other than DONE ended IDLE (BAD written)
                self.out.write(event.data)
            elif isinstance(event, ConnectionClosed):
                break
            elif isinstance(event, c.StartTls):
                await self._starttls(event)
            else:
                if isinstance(event, c.Command):
                    delay = self.limiter.delay(self.clock())
                    if delay > 0:  # paced, not refused (limits.imap_commands_per_second)
                        await self.sleep(delay)
                self.busy = True
                try:
                    await self.session.execute(event)
                finally:
                    self.busy = False
                if self.stopping.is_set() and not self.session.idling:
                    self.session.bye(_SHUTDOWN)
        await self.out.drain()

    async def _read(self) -> bytes | None:
        """The next octets from the client (``b""`` at end of stream), or None when the session
        ended meanwhile (idle timeout, shutdown: BYE written). While IDLE, changes the feed
        announces are pushed as they come."""
        authenticated = self.session.account_id is not None
        timeout = self.services.limits.idle_timeout if authenticated else PREAUTH_TIMEOUT
        deadline = self.clock() + timeout
        read = asyncio.ensure_future(self.reader.read(READ_SIZE))
        stop = asyncio.ensure_future(self.stopping.wait())
        try:
            while True:
                waiters: set[asyncio.Future[Any]] = {read, stop}
                idle = None
                if self.session.idling:
                    idle = asyncio.ensure_future(self.session.idle_wait())
                    waiters.add(idle)
                remaining = max(deadline - self.clock(), 0.0)
                done, _ = await asyncio.wait(
                    waiters, timeout=remaining, return_when=asyncio.FIRST_COMPLETED
                )
                if idle is not None:
                    if idle in done:
                        await self.session.idle_push()
                        await self.out.drain()
                    else:
                        idle.cancel()
                if read in done:
                    return read.result()
                if stop in done:
                    self.session.bye(_SHUTDOWN)
                    return None
                if not done:
                    self.session.bye(_AUTOLOGOUT)
                    return None
                if self.conn.closed:  # the session ended while IDLE (mailbox deleted)
                    return None
        finally:
            for task in (read, stop):
                if not task.done():
                    task.cancel()

    async def _starttls(self, command: c.StartTls) -> None:
        if self.starttls_context is None:  # a plain listener without TLS material: not offered
            self.out.write(self.conn.send_tagged(command.tag, "BAD", "STARTTLS not available"))
            return
        self.out.write(self.conn.send_tagged(command.tag, "OK", "Begin TLS negotiation now"))
        await self.out.drain()
        dropped = discard_buffered(self.reader)
        if dropped:
            log.warning("imap-starttls-injection-dropped", remote=self.remote, octets=dropped)
        await self.writer.start_tls(
            self.starttls_context, ssl_handshake_timeout=TLS_HANDSHAKE_TIMEOUT
        )
        self.conn.tls_established()
        self.session.tls_started(self.writer.get_extra_info("ssl_object"))

    async def _close(self) -> None:
        with contextlib.suppress(Exception):
            await self.out.drain()
        self.writer.close()
        with contextlib.suppress(Exception):
            await self.writer.wait_closed()

    def stop_now(self) -> None:
        """Shutdown: a connection waiting for the client is told BYE by its read loop."""
        self.stopping.set()


class ImapServer:
    """Listens on a bound socket; one :class:`ImapConnectionHandler` per client."""

    def __init__(
        self,
        services: SessionServices,
        *,
        tls_context: ssl.SSLContext,
        implicit_tls: bool,
    ) -> None:
        self.services = services
        self.tls_context = tls_context
        self.implicit_tls = implicit_tls
        self._server: asyncio.Server | None = None
        self._sockets: list[socket.socket] = []
        self._handlers: dict[asyncio.Task[None], ImapConnectionHandler] = {}
        self._stopping = asyncio.Event()

    async def start(self, sock: socket.socket) -> None:
        self._sockets = [sock]
        self._server = await asyncio.start_server(
            self._accept,
            sock=sock,
            ssl=self.tls_context if self.implicit_tls else None,
            ssl_handshake_timeout=TLS_HANDSHAKE_TIMEOUT if self.implicit_tls else None,
            limit=READ_SIZE,
        )

    def addresses(self) -> list[tuple[str, int]]:
        return [sock.getsockname()[:2] for sock in self._sockets]

    @property
    def connections(self) -> int:
        return len(self._handlers)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        remote = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else ""
        handler = ImapConnectionHandler(
            self.services,
            reader,
            writer,
            tls_active=self.implicit_tls,
            starttls_context=None if self.implicit_tls else self.tls_context,
            remote=remote,
            stopping=self._stopping,
        )
        task = asyncio.current_task()
        assert task is not None
        self._handlers[task] = handler
        try:
            await handler.run()
        except asyncio.CancelledError:
            pass  # stop() ran out of grace
        except Exception:
            log.exception("imap-connection-failed", remote=remote)
        finally:
            self._handlers.pop(task, None)

    async def stop(self, grace: float) -> None:
        """Stop accepting; BYE to the idle; commands in progress get ``grace`` seconds."""
        if self._server is None:
            return
        self._server.close()
        self._stopping.set()
        pending = set(self._handlers)
        if pending and grace > 0:
            await asyncio.wait(pending, timeout=grace)
        for task in list(self._handlers):
            task.cancel()
        if self._handlers:
            await asyncio.wait(set(self._handlers), timeout=5)
        with contextlib.suppress(Exception):
            await self._server.wait_closed()
        self._server = None
