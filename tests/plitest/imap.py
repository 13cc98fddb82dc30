"""Test helpers for the IMAP server: session services over a test store, a session driven over
in-memory streams (the session tier), and a real server on 127.0.0.1 port 0 with the test PKI
(the integration tier)::

    services = imap_services(store)                      # require_otp = false, no bearer
    async with InMemoryImap.start(services) as imap:     # pretends TLS is up
        await imap.login("a@hopital-demo.mssante.fr", PASSWORD)
        reply = await imap.command("SELECT INBOX")       # Reply(lines, tagged)
        assert reply.ok and b"* 0 EXISTS" in reply.lines

    async with running_imap(store, tmp_path, tls="starttls") as server:
        server.port, server.context_for_clients()        # real sockets, real TLS

No test sleeps: readers wait on the handler's writes.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from pli.config.schema import AuthSection
from pli.mailbox.auth.service import Authenticator
from pli.mailbox.imap.limits import Limits
from pli.mailbox.imap.server import ImapConnectionHandler, ImapServer
from pli.mailbox.imap.session import SessionRegistry, SessionServices
from pli.mailbox.store import Account, AccountKind, Store
from pli.mailgateway.asgi import bind_tcp
from plitest.pki import session_pki

PASSWORD = "imap-test-password-1"
_LITERAL = re.compile(rb"\{(\d+)\+?\}\r\n$")


def imap_services(
    store: Store,
    *,
    limits: Limits | None = None,
    trust: Any = None,
    token_verifier: Any = None,
    sessions_per_account: int = 20,
) -> SessionServices:
    """Services for test sessions: passwords alone accepted (``auth.require_otp = false``)."""
    authenticator = Authenticator(
        store,
        AuthSection(require_otp=False),
        citizen_domain="patient.mssante.fr",
        token_verifier=token_verifier,
    )
    return SessionServices(
        store=store,
        authenticator=authenticator,
        limits=limits or Limits(),
        trust=trust,
        bearer_enabled=token_verifier is not None,
        registry=SessionRegistry(sessions_per_account),
    )


async def professional(
    store: Store, local: str = "a", kind: AccountKind = AccountKind.PER
) -> Account:
    """A professional account of the demo domain with :data:`PASSWORD`."""
    return await store.accounts.create(f"{local}@hopital-demo.mssante.fr", kind, password=PASSWORD)


class MemoryWriter:
    """A StreamWriter stand-in that records what the server writes."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.changed = asyncio.Event()
        self.closed = False

    def write(self, data: bytes) -> None:
        self.data += data
        self.changed.set()

    async def drain(self) -> None:
        await asyncio.sleep(0)

    def close(self) -> None:
        self.closed = True
        self.changed.set()

    def is_closing(self) -> bool:
        return self.closed

    async def wait_closed(self) -> None:
        return None

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return default


@dataclass
class Reply:
    """The responses to one command: ``lines`` (each untagged or continuation response, literals
    inline) and the ``tagged`` line."""

    lines: list[bytes]
    tagged: bytes

    @property
    def ok(self) -> bool:
        return self.tagged.split(b" ", 2)[1] == b"OK"

    @property
    def status(self) -> str:
        return self.tagged.split(b" ", 2)[1].decode()

    def untagged(self, word: bytes) -> list[bytes]:
        """Untagged responses whose second or third word is ``word`` (``EXISTS``, ``FETCH``)."""
        wanted = word.upper()
        return [
            line
            for line in self.lines
            if line.startswith(b"* ") and wanted in [w.upper() for w in line.split(b" ", 3)[1:3]]
        ]

    def text(self) -> str:
        return b"".join([*self.lines, self.tagged]).decode("utf-8", "replace")


class ImapClientBase:
    """Literal-aware response reading and command helpers over some byte source."""

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.position = 0
        self.counter = 0
        self.greeting = b""

    def send(self, data: bytes) -> None:
        raise NotImplementedError

    async def _receive(self) -> bool:
        """Wait for more octets in :attr:`buffer`; False at end of stream."""
        raise NotImplementedError

    async def read_response(self) -> bytes:
        """The next whole response (a line, with its literals)."""
        while True:
            response = self._take()
            if response is not None:
                return response
            if not await self._receive():
                raise ConnectionError("the server closed the connection")

    def _take(self) -> bytes | None:
        data = self.buffer
        start = end = self.position
        while True:
            line_end = data.find(b"\r\n", end)
            if line_end < 0:
                return None
            end = line_end + 2
            literal = _LITERAL.search(data, max(end - 20, start), end)
            if literal is None or literal.end() != end:
                break
            end += int(literal.group(1))
            if end > len(data):
                return None
        self.position = end
        return bytes(data[start:end])

    def next_tag(self) -> str:
        self.counter += 1
        return f"t{self.counter}"

    async def command(self, text: str | bytes, *, tag: str | None = None) -> Reply:
        """Send ``tag text`` and collect the responses up to the tagged one; synchronizing
        literals in ``text`` must be sent with :meth:`send` and :meth:`read_response`."""
        tag = tag or self.next_tag()
        raw = text.encode() if isinstance(text, str) else text
        self.send(tag.encode() + b" " + raw + b"\r\n")
        return await self.until_tagged(tag)

    async def until_tagged(self, tag: str) -> Reply:
        lines: list[bytes] = []
        prefix = tag.encode() + b" "
        while True:
            response = await self.read_response()
            if response.startswith(prefix):
                return Reply(lines, response)
            lines.append(response)

    async def login(self, user: str, password: str = PASSWORD) -> Reply:
        reply = await self.command(f'LOGIN "{user}" "{password}"')
        assert reply.ok, reply.text()
        return reply

    async def append(self, mailbox: str, message: bytes, flags: str = "") -> Reply:
        """APPEND with a non-synchronizing literal (LITERAL+)."""
        flag_part = f" ({flags})" if flags else ""
        return await self.command(
            f"APPEND {mailbox}{flag_part} {{{len(message)}+}}\r\n".encode() + message
        )


class InMemoryImap(ImapClientBase):
    """One session over in-memory streams, driven like a client."""

    def __init__(
        self,
        handler: ImapConnectionHandler,
        reader: asyncio.StreamReader,
        writer: MemoryWriter,
        task: asyncio.Task[None],
    ) -> None:
        super().__init__()
        self.handler = handler
        self.reader = reader
        self.writer = writer
        self.task = task
        self.buffer = writer.data

    @classmethod
    @contextlib.asynccontextmanager
    async def start(
        cls, services: SessionServices, *, tls_active: bool = True, **options: Any
    ) -> AsyncIterator[InMemoryImap]:
        """``options``: ImapConnectionHandler keywords (``clock``, ``sleep``)."""
        reader = asyncio.StreamReader()
        writer = MemoryWriter()
        handler = ImapConnectionHandler(
            services, reader, writer, tls_active=tls_active, remote="memory", **options
        )
        task = asyncio.create_task(handler.run())
        imap = cls(handler, reader, writer, task)
        imap.greeting = await imap.read_response()
        try:
            yield imap
        finally:
            if not task.done():
                reader.feed_eof()
            await task

    def send(self, data: bytes) -> None:
        self.reader.feed_data(data)

    async def _receive(self) -> bool:
        if self.task.done():
            return False
        self.writer.changed.clear()
        waiter = asyncio.ensure_future(self.writer.changed.wait())
        await asyncio.wait({waiter, self.task}, return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        return True

    async def closed(self) -> bool:
        await self.task
        return True


class SocketImap(ImapClientBase):
    """A raw client over a real socket (plain, implicit TLS, or upgraded with STARTTLS)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        super().__init__()
        self.reader = reader
        self.writer = writer

    @classmethod
    async def connect(cls, port: int, context: ssl.SSLContext | None = None) -> SocketImap:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context)
        client = cls(reader, writer)
        client.greeting = await client.read_response()
        return client

    def send(self, data: bytes) -> None:
        self.writer.write(data)

    async def _receive(self) -> bool:
        data = await self.reader.read(65536)
        self.buffer += data
        return bool(data)

    async def starttls(self, context: ssl.SSLContext, *, inject: bytes = b"") -> Reply:
        """STARTTLS, then the handshake; ``inject`` is sent in the same packet as the command
        (the command-injection attack)."""
        tag = self.next_tag()
        self.send(tag.encode() + b" STARTTLS\r\n" + inject)
        reply = await self.until_tagged(tag)
        if reply.ok:
            await self.writer.start_tls(context)
        return reply

    def ssl_object(self) -> Any:
        return self.writer.get_extra_info("ssl_object")

    async def closed(self) -> bool:
        """True once the server closed the connection (whatever it sent first is kept)."""
        while await self._receive():
            pass
        return True

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(Exception):
            await self.writer.wait_closed()


@dataclass
class RunningImap:
    server: ImapServer
    port: int
    host: str = "127.0.0.1"

    @staticmethod
    def client_context(*, with_certificate: Any = None) -> ssl.SSLContext:
        """A client context trusting the test PKI (presenting ``with_certificate`` if given)."""
        pki = session_pki()
        if with_certificate is None:
            return pki.client_context(with_client_cert=False)
        return pki.client_context(with_certificate)


@contextlib.asynccontextmanager
async def running_imap(
    services: SessionServices, *, implicit_tls: bool = False
) -> AsyncIterator[RunningImap]:
    """A real IMAP server on 127.0.0.1 port 0 with the test PKI's server certificate (client
    certificates asked for, optional)."""
    pki = session_pki()
    context = pki.server_context(client_cert="optional")
    server = ImapServer(services, tls_context=context, implicit_tls=implicit_tls)
    sock = bind_tcp("127.0.0.1", 0)
    await server.start(sock)
    try:
        yield RunningImap(server, sock.getsockname()[1])
    finally:
        await server.stop(grace=1.0)
