"""An SMTP listener as a `pli serve` service: binds, accepts, creates a session per connection,
and stops gracefully. With several processes (``workers.py``) the `pli serve` process accepts
and hands connections round-robin to its workers, which serve what they are given.

Implicit TLS (465) wraps the socket at accept; STARTTLS (25, 587) upgrades in the session. A
listener's handler (inbound MTA or submission) is given by the caller.

This module only binds and accepts; sessions speak, handlers decide.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import ssl

import structlog

from pli.config.schema import Listener

from ..asgi import bind_tcp
from .hooks import Handler
from .limits import SmtpLimits
from .session import ConnectionRegistry, SmtpSession

log = structlog.get_logger(__name__)

#: Time allowed for the TLS handshake of an implicit-TLS connection (seconds).
TLS_HANDSHAKE_TIMEOUT = 30.0
#: Pause after accept() fails (out of file descriptors…), as asyncio's own server (seconds).
ACCEPT_PAUSE = 1.0


class SmtpListener:
    """Serves one listener with ``handler``; ``tls_context`` is the server context (STARTTLS
    or implicit, as the listener says)."""

    def __init__(
        self,
        name: str,
        listener: Listener,
        handler: Handler,
        *,
        hostname: str,
        limits: SmtpLimits,
        tls_context: ssl.SSLContext | None,
        handoff: socket.socket | None = None,
    ) -> None:
        self.name = name
        self.listener = listener
        self.handler = handler
        self.hostname = hostname
        self.limits = limits
        self.tls_context = tls_context
        self.registry = ConnectionRegistry(limits)
        self._socket: socket.socket | None = None
        #: A worker process: connections come from `pli serve` through this socket.
        self._handoff = handoff
        #: Set when `pli serve` closed the hand-off socket (it stopped or died): a worker ends.
        self.handoff_closed = asyncio.Event()
        #: `pli serve` with workers: their ends of the hand-off sockets.
        self._workers: list[socket.socket] = []
        self._turn = 0
        self._accepting: asyncio.Task[None] | None = None
        self._handshakes: set[asyncio.Task[None]] = set()
        self._bound: tuple[str, int] | None = None

    def _session(self) -> SmtpSession:
        return SmtpSession(
            self.handler,
            listener=self.name,
            hostname=self.hostname,
            limits=self.limits,
            registry=self.registry,
            tls_context=self.tls_context if self.listener.tls == "starttls" else None,
        )

    def hand_off_to(self, workers: list[socket.socket]) -> None:
        """Spread the accepted connections round-robin over this process and ``workers``."""
        self._workers = workers

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        if self._handoff is not None:
            self._handoff.setblocking(False)
            loop.add_reader(self._handoff.fileno(), self._receive)
            return
        self._socket = bind_tcp(self.listener.address, self.listener.port)
        self._bound = self._socket.getsockname()[:2]
        self._accepting = asyncio.create_task(self._accept(self._socket), name=f"smtp-{self.name}")

    async def _accept(self, listening: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                connection, _ = await loop.sock_accept(listening)
            except OSError as error:  # out of descriptors, …: as asyncio's server, pause
                log.warning("smtp-accept-failed", listener=self.name, error=repr(error))
                await asyncio.sleep(ACCEPT_PAUSE)
                continue
            self._dispatch(connection)

    def _dispatch(self, connection: socket.socket) -> None:
        """Round-robin over this process and its workers. The kernel's own way (one socket per
        process with SO_REUSEPORT) spreads by a hash of the addresses: a few long connections
        from other operators could all land on one process (20 were split 7 and 13 in
        bench/smtp.py, and the busier process set the pace)."""
        turn = self._turn % (len(self._workers) + 1)
        self._turn += 1
        if turn:
            try:
                socket.send_fds(self._workers[turn - 1], [b"c"], [connection.fileno()])
            except OSError as error:  # the worker is gone or not reading: serve it here
                log.warning("smtp-handoff-failed", listener=self.name, error=repr(error))
            else:
                connection.close()  # the worker has its own descriptor now
                return
        self._serve(connection)

    def _receive(self) -> None:
        """A worker: the connections `pli serve` handed over (one per message)."""
        assert self._handoff is not None
        while True:
            try:
                message, descriptors, _, _ = socket.recv_fds(self._handoff, 16, 1)
            except BlockingIOError:
                return
            except OSError as error:
                log.warning("smtp-handoff-lost", listener=self.name, error=repr(error))
                message, descriptors = b"", []
            for descriptor in descriptors:
                self._serve(socket.socket(fileno=descriptor))
            if not message:  # `pli serve` is gone: nothing more will come
                asyncio.get_running_loop().remove_reader(self._handoff.fileno())
                log.warning("smtp-handoff-closed", listener=self.name, process=os.getpid())
                self.handoff_closed.set()
                return

    def _serve(self, connection: socket.socket) -> None:
        connection.setblocking(False)
        with contextlib.suppress(OSError):  # already reset by the peer: the session will see
            peer = connection.getpeername()
            log.info("smtp-connect", listener=self.name, peer=peer[0], process=os.getpid())
        task = asyncio.create_task(self._connected(connection))
        self._handshakes.add(task)
        task.add_done_callback(self._handshakes.discard)

    async def _connected(self, connection: socket.socket) -> None:
        implicit = self.listener.tls == "implicit"
        try:
            await asyncio.get_running_loop().connect_accepted_socket(
                self._session,
                connection,
                ssl=self.tls_context if implicit else None,
                ssl_handshake_timeout=TLS_HANDSHAKE_TIMEOUT if implicit else None,
            )
        except (OSError, TimeoutError) as error:  # ssl.SSLError is an OSError
            log.info("smtp-handshake-failed", listener=self.name, error=repr(error))
            connection.close()

    def addresses(self) -> list[tuple[str, int]]:
        return [self._bound] if self._bound is not None else []

    async def stop(self, grace: float) -> None:
        if self._handoff is not None and self._handoff.fileno() != -1:
            asyncio.get_running_loop().remove_reader(self._handoff.fileno())
        if self._accepting is not None:  # stop accepting at once
            self._accepting.cancel()
            await asyncio.gather(self._accepting, return_exceptions=True)
            self._accepting = None
            if self._socket is not None:
                self._socket.close()  # new connections are refused, not left in the backlog
        for task in self._handshakes:
            task.cancel()
        await asyncio.gather(*self._handshakes, return_exceptions=True)
        await self.registry.stop(grace)
