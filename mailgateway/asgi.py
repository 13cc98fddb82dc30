"""An ASGI application (FastAPI) served by uvicorn inside pli's own event loop, as a service.

We bind the socket ourselves (port 0 works, the real port is known) and keep signal handling in
`pli serve`: uvicorn's own handlers would fight ours.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from collections.abc import Generator
from typing import Any

import uvicorn

from pli.config.schema import Listener


class _EmbeddedServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield  # `pli serve` owns SIGTERM/SIGINT


def bind_tcp(address: str, port: int) -> socket.socket:
    """A listening, non-blocking TCP socket on ``address:port`` (IPv4 or IPv6 literal)."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY on accepted sockets only when the
    # listening socket's proto says TCP; with proto 0, Nagle + delayed ACK add ~40 ms to
    # every HTTP response written in two parts (headers, then body).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((address, port))
        sock.listen(512)
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


class AsgiService:
    """Serves ``app`` on the listener's address; TLS when the listener asks for it."""

    def __init__(
        self, name: str, listener: Listener, app: Any, ssl_context: ssl.SSLContext | None = None
    ) -> None:
        self.name = name
        self._listener = listener
        self._app = app
        self._ssl_context = ssl_context
        self._socket: socket.socket | None = None
        self._server: _EmbeddedServer | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._socket = bind_tcp(self._listener.address, self._listener.port)
        context = self._ssl_context
        config = uvicorn.Config(
            self._app,
            log_config=None,
            access_log=False,
            lifespan="off",
            server_header=False,
            proxy_headers=False,
            # uvicorn builds its context from files; hand it ours (the MSSanté TLS profile).
            ssl_context_factory=None if context is None else (lambda _config, _default: context),
        )
        self._server = _EmbeddedServer(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[self._socket]))
        while not self._server.started:
            if self._task.done():
                self._task.result()  # raises the startup error
                raise RuntimeError(f"{self.name}: HTTP server stopped during start-up")
            await asyncio.sleep(0.01)

    def addresses(self) -> list[tuple[str, int]]:
        if self._socket is None:
            return []
        host, port = self._socket.getsockname()[:2]
        return [(host, port)]

    async def stop(self, grace: float) -> None:
        if self._server is None or self._task is None:
            return
        if self._server.should_exit or grace <= 0:  # asked again: cut the grace short
            self._server.force_exit = True
        self._server.config.timeout_graceful_shutdown = max(int(grace), 1)
        self._server.should_exit = True
        await self._task
        if self._socket is not None:
            self._socket.close()
