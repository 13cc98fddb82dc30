"""An SMTP listener as a `pli serve` service: binds (SO_REUSEPORT when several processes share
the port), creates a session per connection, and stops gracefully.

Implicit TLS (465) wraps the socket at accept; STARTTLS (25, 587) upgrades in the session. A
listener's handler (inbound MTA or submission) is given by the caller.

This module only binds and accepts; sessions speak, handlers decide.
"""

from __future__ import annotations

import asyncio
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
        sock: socket.socket | None = None,
    ) -> None:
        self.name = name
        self.listener = listener
        self.handler = handler
        self.hostname = hostname
        self.limits = limits
        self.tls_context = tls_context
        self.registry = ConnectionRegistry(limits)
        self._socket = sock
        self._server: asyncio.Server | None = None

    def _session(self) -> SmtpSession:
        return SmtpSession(
            self.handler,
            listener=self.name,
            hostname=self.hostname,
            limits=self.limits,
            registry=self.registry,
            tls_context=self.tls_context if self.listener.tls == "starttls" else None,
        )

    async def start(self) -> None:
        if self._socket is None:
            self._socket = bind_tcp(
                self.listener.address, self.listener.port, reuse_port=self.listener.processes > 1
            )
        implicit = self.listener.tls == "implicit"
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            self._session,
            sock=self._socket,
            ssl=self.tls_context if implicit else None,
            ssl_handshake_timeout=TLS_HANDSHAKE_TIMEOUT if implicit else None,
        )

    def addresses(self) -> list[tuple[str, int]]:
        if self._socket is None:
            return []
        host, port = self._socket.getsockname()[:2]
        return [(host, port)]

    async def stop(self, grace: float) -> None:
        if self._server is not None:
            self._server.close()  # stop accepting at once
        await self.registry.stop(grace)
        if self._server is not None:
            await self._server.wait_closed()
