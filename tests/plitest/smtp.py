"""A running pli SMTP stack for tests: real listeners on 127.0.0.1 port 0 (inbound MTA with
STARTTLS, submission with STARTTLS, submissions with implicit TLS), a real store (SQLite file, or
a fresh PostgreSQL schema), the test PKI, a whitelist, DKIM keys, a fake DNS (never the
internet), and the queue runner driven by the test.

    async with smtp_stack(tmp_path, database_url) as stack:
        peer = stack.peer                                # another operator's client certificate
        async with stack.mta_client(peer) as client:     # aiosmtplib, STARTTLS done
            await client.sendmail(...)
        await stack.run_queue()                          # one round of the queue runner

Demo accounts (``plitest.store.demo``) live in ``hopital-demo.mssante.fr``; the other operator
(``PEER_DOMAIN``) is listed in the whitelist with ``stack.peer``'s DN.
"""

from __future__ import annotations

import contextlib
import json
import ssl
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiosmtplib

from pli.config.loading import load_settings
from pli.config.schema import Listener, Settings
from pli.mailbox.auth.totp import totp
from pli.mailbox.store import Store
from pli.mailbox.store.demo import DEMO_DOMAIN, DEMO_PASSWORD, DemoAccounts
from pli.mailgateway.dkim import dns_record, generate_key, load_key
from pli.mailgateway.gateway import Gateway
from pli.mailgateway.queue.runner import QueueRunner
from pli.mailgateway.routing import NoSuchDomain
from pli.mailgateway.smtp.server import SmtpListener
from plitest.pki import Credential, SessionPki, session_pki
from plitest.store import demo, open_test_store

PEER_DOMAIN = "clinique-demo.mssante.fr"
PEER_HOST = "mx.clinique-demo.mssante.fr"
CITIZEN_DOMAIN = "patient.mssante.fr"
DKIM_SELECTOR = "pli"


class FakeResolver:
    """Routing DNS from dicts: ``mx`` domain → [(preference, host)] (absent: no MX; None: the
    domain does not exist), ``hosts`` name → [addresses]."""

    def __init__(
        self,
        mx: Mapping[str, list[tuple[int, str]] | None] | None = None,
        hosts: Mapping[str, list[str]] | None = None,
    ) -> None:
        self.mx_records: dict[str, list[tuple[int, str]] | None] = dict(mx or {})
        self.hosts: dict[str, list[str]] = dict(hosts or {})
        self.questions: list[str] = []

    async def mx(self, domain: str) -> list[tuple[int, str]] | None:
        self.questions.append(f"MX {domain}")
        if domain in self.mx_records:
            records = self.mx_records[domain]
            if records is None:
                raise NoSuchDomain(domain)
            return records
        return None

    async def addresses(self, host: str) -> list[str]:
        self.questions.append(f"A {host}")
        return self.hosts.get(host, [])


class FakeDkimDns:
    """TXT records for DKIM keys: name (``sel._domainkey.domain.``) → value."""

    def __init__(self) -> None:
        self.records: dict[str, bytes] = {}

    def publish(self, selector: str, domain: str, value: str) -> None:
        self.records[f"{selector}._domainkey.{domain}."] = value.encode()

    def __call__(self, name: bytes, timeout: float = 5.0) -> bytes | None:
        return self.records.get(name.decode())


def _toml(value: Any) -> str:
    return json.dumps(str(value) if isinstance(value, Path) else value)


def write_settings(
    directory: Path,
    pki: SessionPki,
    *,
    sections: Mapping[str, Mapping[str, Any]] | None = None,
    tls: Mapping[str, Any] | None = None,
) -> Settings:
    """Settings for a test stack in ``directory`` (a TOML file, loaded as `pli` would)."""
    directory.mkdir(parents=True, exist_ok=True)
    base: dict[str, dict[str, Any]] = {
        "server": {"hostname": "localhost", "data_dir": ".", "shutdown_grace": 5},
        "domains": {"professional": [DEMO_DOMAIN], "citizen": CITIZEN_DOMAIN},
        "auth": {"require_otp": False},
        "smtp": {"group_commit_window": 0.001},
        "queue": {"retry_schedule": [60, 300], "delay_warning": 3600, "max_lifetime": 86400},
        "dkim": {"key": "dkim/private.pem", "selector": DKIM_SELECTOR},
        "whitelist": {"refresh_interval": 0},
    }
    for name, values in (sections or {}).items():
        base.setdefault(name, {}).update(values)
    base["tls"] = {**pki.tls_settings().model_dump(mode="json"), **(tls or {})}
    lines = []
    for name, values in base.items():
        lines.append(f"[{name}]")
        for key, value in values.items():
            if isinstance(value, dict):
                continue
            lines.append(f"{key} = {_toml(value)}")
        for key, value in values.items():
            if isinstance(value, dict):
                lines.append(f"[{name}.{key}]")
                lines += [f"{k!r} = {_toml(v)}".replace("'", '"') for k, v in value.items()]
    path = directory / "pli.toml"
    path.write_text("\n".join(lines) + "\n")
    return load_settings(path, environ={})


@dataclass
class SmtpStack:
    settings: Settings
    store: Store
    gateway: Gateway
    accounts: DemoAccounts
    pki: SessionPki
    peer: Credential
    resolver: FakeResolver
    dkim_dns: FakeDkimDns
    runner: QueueRunner
    listeners: dict[str, SmtpListener] = field(default_factory=dict)

    def address(self, name: str) -> tuple[str, int]:
        return self.listeners[name].addresses()[0]

    def client_context(
        self, credential: Credential | None = None, **options: Any
    ) -> ssl.SSLContext:
        """An MSSanté client context presenting ``credential`` (the other operator's by
        default; ``with_client_cert=False``: none)."""
        return self.pki.client_context(credential or self.peer, **options)

    @contextlib.asynccontextmanager
    async def mta_client(
        self, credential: Credential | None = None, *, starttls: bool = True, **options: Any
    ) -> AsyncIterator[aiosmtplib.SMTP]:
        """An aiosmtplib client connected to the inbound MTA (STARTTLS done unless told)."""
        host, port = self.address("mta")
        client = aiosmtplib.SMTP(
            hostname=host,
            port=port,
            start_tls=False,
            tls_context=self.client_context(credential, **options),
            local_hostname=PEER_HOST,
            timeout=30,
        )
        await client.connect()
        if starttls:
            await client.starttls()
        try:
            yield client
        finally:
            client.close()

    @contextlib.asynccontextmanager
    async def submission_client(
        self, name: str = "submission", credential: Credential | None = None, **options: Any
    ) -> AsyncIterator[aiosmtplib.SMTP]:
        """An aiosmtplib client on a submission listener, TLS up (STARTTLS or implicit),
        presenting ``credential`` when given."""
        host, port = self.address(name)
        implicit = self.listeners[name].listener.tls == "implicit"
        context = self.pki.client_context(
            credential, with_client_cert=credential is not None, **options
        )
        client = aiosmtplib.SMTP(
            hostname=host,
            port=port,
            use_tls=implicit,
            start_tls=False,
            tls_context=context,
            local_hostname="poste.hopital-demo.mssante.fr",
            timeout=30,
        )
        await client.connect()
        if not implicit:
            await client.starttls()
        try:
            yield client
        finally:
            client.close()

    async def run_queue(self) -> int:
        """One round of the queue runner, waited for; returns how many messages it tried."""
        count = await self.runner.run_once()
        await self.runner.drain()
        return count

    async def enable_otp(self, address: str) -> str:
        account = await self.store.accounts.by_address(address)
        return await self.store.accounts.enable_totp(account.id)

    def password_with_otp(self, secret: str) -> str:
        return DEMO_PASSWORD + totp(secret)


def listener_table(pki: SessionPki) -> dict[str, Listener]:
    return {
        "mta": Listener(protocol="smtp", port=0, tls="starttls"),
        "submission": Listener(protocol="submission", port=0, tls="starttls"),
        "submissions": Listener(protocol="submission", port=0, tls="implicit"),
    }


@contextlib.asynccontextmanager
async def smtp_stack(
    tmp_path: Path,
    database_url: str,
    *,
    sections: Mapping[str, Mapping[str, Any]] | None = None,
    tls: Mapping[str, Any] | None = None,
    whitelist: Mapping[str, Iterable[Credential | str]] | None = None,
    listeners: Iterable[str] = ("mta", "submission", "submissions"),
    clock: Any = None,
    start_runner: bool = False,
) -> AsyncIterator[SmtpStack]:
    """A stack (see the module docstring); ``whitelist`` replaces the default listing (our
    domains with our operator DN, ``PEER_DOMAIN`` with the peer's)."""
    pki = session_pki()
    peer = pki.issue_operator(PEER_HOST)
    settings = write_settings(tmp_path, pki, sections=sections, tls=tls)
    listing = whitelist or {
        DEMO_DOMAIN: [pki.operator],
        CITIZEN_DOMAIN: [pki.operator],
        PEER_DOMAIN: [peer],
    }
    settings.whitelist.path.parent.mkdir(parents=True, exist_ok=True)
    settings.whitelist.path.write_bytes(pki.whitelist_xml(listing))
    generate_key(settings.dkim.key, settings.dkim.algorithm)
    dkim_dns = FakeDkimDns()
    dkim_dns.publish(DKIM_SELECTOR, DEMO_DOMAIN, dns_record(load_key(settings.dkim.key)))
    resolver = FakeResolver()
    async with open_test_store(database_url, tmp_path) as store:
        accounts = await demo(store)
        gateway = Gateway.build(
            settings,
            store,
            resolver=resolver,
            dkim_dns=dkim_dns,
            clock=clock or (lambda: datetime.now(UTC)),
            fsync=False,
        )
        gateway.start()
        table = listener_table(pki)
        started: dict[str, SmtpListener] = {}
        runner = gateway.queue_runner()
        try:
            for name in listeners:
                service = gateway.listener(name, table[name])
                await service.start()
                started[name] = service
            if start_runner:
                await runner.start()
            yield SmtpStack(
                settings, store, gateway, accounts, pki, peer, resolver, dkim_dns, runner, started
            )
        finally:
            if start_runner:
                await runner.stop(5)
            for service in started.values():
                await service.stop(5)
            await runner.drain()
            await gateway.close()


# -- protocol-level helpers --------------------------------------------------------------------


class RawClient:
    """Bytes to an SMTP server and parsed replies back (for protocol and attack tests)."""

    def __init__(self, reader: Any, writer: Any) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def connect(
        cls, address: tuple[str, int], *, context: ssl.SSLContext | None = None
    ) -> RawClient:
        import asyncio

        reader, writer = await asyncio.open_connection(*address, ssl=context)
        return cls(reader, writer)

    async def reply(self) -> tuple[int, list[str]]:
        """One reply (possibly multi-line): its code and text lines. (0, []) at EOF."""
        lines: list[str] = []
        while True:
            raw = await self.reader.readline()
            if not raw:
                return 0, lines
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            lines.append(line[4:])
            if line[3:4] != "-":
                return int(line[:3]), lines

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def command(self, line: str | bytes) -> tuple[int, list[str]]:
        await self.send((line.encode() if isinstance(line, str) else line) + b"\r\n")
        return await self.reply()

    async def starttls(self, context: ssl.SSLContext) -> None:
        await self.writer.start_tls(context)

    async def closed(self) -> bool:
        """True when the server closed the connection (reads to EOF)."""
        return await self.reader.read() == b""

    def close(self) -> None:
        self.writer.close()


class RecordingHandler:
    """A handler that accepts everything and records what it got (protocol tests)."""

    def __init__(self, refuse: Mapping[str, str] | None = None) -> None:
        self.refuse = dict(refuse or {})  # recipient → reply line ("550 5.1.1 …")
        self.client_certificates: list[bytes | None] = []
        self.mails: list[tuple[str, Any]] = []
        self.recipients: list[tuple[str, Any]] = []
        self.messages: list[tuple[MailTransactionLike, bytes]] = []
        self.tls: list[Any] = []

    def auth_mechanisms(self, connection: Any) -> list[str]:
        return []

    def auth_required(self) -> bool:
        return False

    async def tls_established(self, connection: Any) -> None:
        self.tls.append(connection.tls_description)
        self.client_certificates.append(connection.tls.getpeercert(binary_form=True))

    async def authenticate(self, connection: Any, credentials: Any) -> Any:
        raise AssertionError("not offered")

    async def mail(self, connection: Any, sender: str, params: Any) -> Any:
        from pli.mailgateway.smtp.replies import SENDER_OK

        self.mails.append((sender, params))
        return SENDER_OK

    async def rcpt(self, connection: Any, transaction: Any, recipient: Any) -> Any:
        from pli.mailgateway.smtp.replies import RECIPIENT_OK, Reply

        if recipient.address in self.refuse:
            code, enhanced, text = self.refuse[recipient.address].split(" ", 2)
            return Reply(int(code), enhanced, text)
        self.recipients.append((recipient.address, recipient.params))
        return RECIPIENT_OK

    async def data(self, connection: Any, transaction: Any, message: bytes) -> Any:
        from pli.mailgateway.smtp.replies import OK

        self.messages.append((transaction, message))
        return OK


MailTransactionLike = Any


@contextlib.asynccontextmanager
async def recording_listener(
    *,
    tls: str = "starttls",
    limits: Any = None,
    handler: Any = None,
    credential: Credential | None = None,
    hostname: str = "mx.test",
) -> AsyncIterator[tuple[SmtpListener, RecordingHandler]]:
    """A bare SMTP listener (our session, a recording handler) on 127.0.0.1 port 0;
    ``credential``: its server certificate (ours by default)."""
    from pli.mailgateway.smtp.limits import SmtpLimits

    pki = session_pki()
    recorder = handler or RecordingHandler()
    context = pki.server_context("optional", credential=credential) if tls != "none" else None
    service = SmtpListener(
        "test",
        Listener(protocol="smtp", port=0, tls=tls),  # type: ignore[arg-type]
        recorder,
        hostname=hostname,
        limits=limits or SmtpLimits(),
        tls_context=context,
    )
    await service.start()
    try:
        yield service, recorder
    finally:
        await service.stop(2)


class StockHandler:
    """aiosmtpd's own server (no DSN extension): what a plain MTA answers."""

    def __init__(self) -> None:
        self.envelopes: list[tuple[str, list[str], bytes, list[str], list[str]]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.envelopes.append(
            (
                envelope.mail_from,
                list(envelope.rcpt_tos),
                envelope.original_content,
                list(envelope.mail_options),
                list(envelope.rcpt_options),
            )
        )
        return "250 2.0.0 OK"


@contextlib.asynccontextmanager
async def stock_aiosmtpd(
    credential: Credential,
) -> AsyncIterator[tuple[tuple[str, int], StockHandler]]:
    """aiosmtpd's SMTP server with STARTTLS (presenting ``credential``), on 127.0.0.1 port 0."""
    import asyncio

    from aiosmtpd.smtp import SMTP

    pki = session_pki()
    context = pki.server_context("optional", credential=credential)
    handler = StockHandler()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(handler, tls_context=context, hostname="stock.test"), "127.0.0.1", 0
    )
    try:
        yield server.sockets[0].getsockname()[:2], handler
    finally:
        server.close()
        await server.wait_closed()
