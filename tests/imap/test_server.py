"""The asyncio adapter: real sockets on 127.0.0.1, real TLS with the test PKI (STARTTLS and
implicit), client certificates for SASL EXTERNAL, timeouts, pacing, graceful stop."""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path

import pytest
from plitest.imap import (
    PASSWORD,
    InMemoryImap,
    RunningImap,
    SocketImap,
    imap_services,
    professional,
    running_imap,
)
from plitest.pki import session_pki

from pli.config.schema import Listener
from pli.mailbox.imap.limits import COMMAND_BURST, Limits
from pli.mailbox.imap.server import PREAUTH_TIMEOUT
from pli.mailbox.imap.service import ImapService, ImapUnavailable, session_services
from pli.mailbox.store import Store
from pli.mailbox.store.records import CertificateIdentity


class JumpingClock:
    """Monotonic time the test controls: frozen, or moving ``step`` seconds at every reading
    (the adapter computes a deadline, then the time left: with a large step, none is left)."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.step = 0.0

    def __call__(self) -> float:
        self.now += self.step
        return self.now


async def test_starttls_listener_upgrades_then_allows_login(store: Store) -> None:
    account = await professional(store)
    async with running_imap(imap_services(store)) as server:
        client = await SocketImap.connect(server.port)
        assert b"STARTTLS" in client.greeting and b"LOGINDISABLED" in client.greeting
        refused = await client.command(f'LOGIN "{account.address}" "{PASSWORD}"')
        assert b"NO [PRIVACYREQUIRED]" in refused.tagged
        assert (await client.starttls(RunningImap.client_context())).ok
        capability = (await client.command("CAPABILITY")).lines[0]
        assert b"STARTTLS" not in capability and b"LOGINDISABLED" not in capability
        assert b"AUTH=PLAIN" in capability
        assert client.ssl_object().version() == "TLSv1.2"  # the MSSanté profile
        assert (await client.command("STARTTLS")).status == "BAD"  # TLS already active
        await client.login(account.address)
        assert (await client.command("LOGOUT")).ok
        assert await client.closed()


async def test_starttls_command_injection_is_dropped(store: Store) -> None:
    account = await professional(store)
    async with running_imap(imap_services(store)) as server:
        client = await SocketImap.connect(server.port)
        injected = f'x1 LOGIN "{account.address}" "{PASSWORD}"\r\nx2 SELECT INBOX\r\n'.encode()
        assert (await client.starttls(RunningImap.client_context(), inject=injected)).ok
        after = await client.command("CAPABILITY")  # answered alone: x1 and x2 never ran
        assert b"AUTH=PLAIN" in after.lines[0] and not after.tagged.startswith(b"x")
        assert (await client.command("SELECT INBOX")).status == "BAD"  # not authenticated
        await client.close()


async def test_implicit_tls_listener(store: Store) -> None:
    account = await professional(store)
    async with running_imap(imap_services(store), implicit_tls=True) as server:
        client = await SocketImap.connect(server.port, RunningImap.client_context())
        assert b"AUTH=PLAIN" in client.greeting and b"STARTTLS" not in client.greeting
        assert (await client.command("STARTTLS")).status == "BAD"
        await client.login(account.address)
        await client.close()


async def test_sasl_external_with_a_verified_client_certificate(store: Store) -> None:
    account = await professional(store, "app")
    pki = session_pki()
    credential = pki.issue_org("990000001", "CH EXEMPLE", service="IMAP-TEST")
    peer = pki.trust_store().verify(credential.certificate, "client").identity
    await store.accounts.add_certificate(
        account.id, CertificateIdentity(fingerprint=peer.fingerprint_sha256)
    )
    services = imap_services(store, trust=pki.trust_store())
    async with running_imap(services, implicit_tls=True) as server:
        with_certificate = RunningImap.client_context(with_certificate=credential)
        client = await SocketImap.connect(server.port, with_certificate)
        assert b"AUTH=EXTERNAL" in client.greeting
        reply = await client.command("AUTHENTICATE EXTERNAL =")
        assert reply.ok, reply.text()
        assert (await client.command("SELECT INBOX")).ok
        await client.close()
        plain = await SocketImap.connect(server.port, RunningImap.client_context())
        assert b"AUTH=EXTERNAL" not in plain.greeting  # no certificate, not offered
        await plain.close()
        revoked = pki.issue_org("990000001", "CH EXEMPLE", service="IMAP-REVOKED")
        identity = pki.trust_store().verify(revoked.certificate, "client").identity
        await store.accounts.add_certificate(
            account.id, CertificateIdentity(fingerprint=identity.fingerprint_sha256)
        )
        pki.revoke(revoked)
        client = await SocketImap.connect(
            server.port, RunningImap.client_context(with_certificate=revoked)
        )
        refused = await client.command("AUTHENTICATE EXTERNAL =")
        assert b"NO [AUTHENTICATIONFAILED]" in refused.tagged
        await client.close()


async def test_idle_timeout_says_bye(store: Store) -> None:
    account = await professional(store)
    clock = JumpingClock()
    limits = Limits(idle_timeout=1800.0)
    async with InMemoryImap.start(imap_services(store, limits=limits), clock=clock) as imap:
        await imap.login(account.address)
        clock.step = 1801.0  # the next wait for a command ends past its deadline at once
        imap.send(b"a NOOP\r\n")
        assert (await imap.until_tagged("a")).ok
        assert await imap.read_response() == b"* BYE Autologout; idle for too long\r\n"
        assert await imap.closed()


async def test_a_silent_client_is_dropped_sooner_before_login(store: Store) -> None:
    clock = JumpingClock()
    async with InMemoryImap.start(imap_services(store), clock=clock) as imap:
        clock.step = PREAUTH_TIMEOUT + 1  # far below the 1800 s of an authenticated session
        imap.send(b"a NOOP\r\n")
        await imap.until_tagged("a")
        assert await imap.read_response() == b"* BYE Autologout; idle for too long\r\n"


async def test_commands_beyond_the_burst_are_paced(store: Store) -> None:
    account = await professional(store)
    delays: list[float] = []

    async def sleep(seconds: float) -> None:
        delays.append(seconds)

    limits = Limits(commands_per_second=10)
    async with InMemoryImap.start(
        imap_services(store, limits=limits), clock=JumpingClock(), sleep=sleep
    ) as imap:
        await imap.login(account.address)
        for _ in range(COMMAND_BURST + 4):
            assert (await imap.command("NOOP")).ok
    assert [round(delay, 3) for delay in delays] == [0.1, 0.2, 0.3, 0.4, 0.5]


async def test_stop_says_bye_to_waiting_and_idling_clients(store: Store) -> None:
    account = await professional(store)
    async with running_imap(imap_services(store), implicit_tls=True) as server:
        waiting = await SocketImap.connect(server.port, RunningImap.client_context())
        idling = await SocketImap.connect(server.port, RunningImap.client_context())
        await idling.login(account.address)
        await idling.command("SELECT INBOX")
        idling.send(b"i IDLE\r\n")
        assert await idling.read_response() == b"+ idling\r\n"
        await server.server.stop(grace=5.0)
        for client in (waiting, idling):
            assert await client.read_response() == b"* BYE Server shutting down\r\n"
            assert await client.closed()
        assert server.server.connections == 0


def test_a_listener_without_tls_is_refused(tmp_path: Path) -> None:
    settings = session_pki().settings(tmp_path)
    listener = Listener(protocol="imap", port=0, tls="none")
    with pytest.raises(ImapUnavailable, match="IMAP needs TLS"):
        ImapService("imap", listener, settings, None, bind=None)  # type: ignore[arg-type]


async def test_the_service_binds_starts_and_stops(store: Store, tmp_path: Path) -> None:
    from pli.mailgateway.asgi import bind_tcp

    settings = session_pki().settings(tmp_path)
    services = session_services(settings, store)
    listener = Listener(protocol="imap", port=0, tls="implicit")
    service = ImapService("imaps", listener, settings, services, bind=bind_tcp)
    await service.start()
    ((host, port),) = service.addresses()
    client = await SocketImap.connect(port, RunningImap.client_context())
    assert client.greeting.startswith(b"* OK [CAPABILITY IMAP4rev1 ")
    await client.close()
    await service.stop(1.0)
    with pytest.raises(OSError):
        await asyncio.open_connection(host, port)


async def test_a_client_that_hangs_up_mid_command_costs_nothing(store: Store) -> None:
    account = await professional(store)
    async with running_imap(imap_services(store), implicit_tls=True) as server:
        client = await SocketImap.connect(server.port, RunningImap.client_context())
        await client.login(account.address)
        client.send(b"a APPEND INBOX {100}\r\n")
        assert (await client.read_response()).startswith(b"+ ")
        client.send(b"only part of it")
        await client.close()
        client = await SocketImap.connect(server.port, RunningImap.client_context())
        await client.login(account.address)
        status = await client.command("STATUS INBOX (MESSAGES)")
        assert status.lines == [b"* STATUS INBOX (MESSAGES 0)\r\n"]
        await client.close()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()
