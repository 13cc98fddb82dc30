"""Integration tier: real IMAP clients against the server over real TLS on 127.0.0.1 —
imaplib (STARTTLS and implicit TLS), IMAPClient (with IDLE), imap-tools, aioimaplib (with IDLE)."""

from __future__ import annotations

import asyncio
import email
import email.policy
import imaplib
import ssl
from collections.abc import AsyncIterator

import aioimaplib
import imap_tools
import pytest
from imapclient import IMAPClient
from plitest.imap import PASSWORD, RunningImap, imap_services, professional, running_imap
from plitest.store import build_message

from pli.mailbox.store import Account, DeliveryTarget, Store


@pytest.fixture
async def account(store: Store) -> Account:
    account = await professional(store)
    for subject in ("Convocation", "Résultats de biologie", "Lettre de liaison"):
        raw = build_message(subject=subject, attachments=[("cr.pdf", "application/pdf", b"%PDF-1")])
        await store.messages.deliver(raw, [DeliveryTarget(account.id)])
    return account


@pytest.fixture
async def starttls(store: Store) -> AsyncIterator[RunningImap]:
    async with running_imap(imap_services(store)) as server:
        yield server


@pytest.fixture
async def implicit(store: Store) -> AsyncIterator[RunningImap]:
    async with running_imap(imap_services(store), implicit_tls=True) as server:
        yield server


def _context() -> ssl.SSLContext:
    return RunningImap.client_context()


async def test_imaplib_starttls_session(starttls: RunningImap, account: Account) -> None:
    message = build_message(subject="ajouté par imaplib")

    def scenario() -> None:
        with imaplib.IMAP4("127.0.0.1", starttls.port) as imap:
            assert "LOGINDISABLED" in imap.capabilities
            imap.starttls(_context())
            imap.login(account.address, PASSWORD)
            status, listing = imap.list()
            assert status == "OK" and any(b"\\Sent" in line for line in listing)
            assert imap.select("INBOX") == ("OK", [b"3"])
            imap.literal = "Résultats".encode()  # imaplib's way: 8-bit goes in a literal
            status, found = imap.search("UTF-8", "SUBJECT")
            assert found == [b"2"]
            status, data = imap.fetch("2", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)] FLAGS)")
            assert status == "OK" and b"Subject: =?utf-8?" in data[0][1]  # type: ignore[index]
            status, data = imap.fetch("2", "(RFC822)")
            parsed = email.message_from_bytes(data[0][1], policy=email.policy.default)  # type: ignore[index]
            assert parsed["Subject"] == "Résultats de biologie"
            assert imap.store("1", "+FLAGS", "(\\Deleted)")[0] == "OK"
            assert imap.expunge() == ("OK", [b"1"])
            status, appended = imap.append("INBOX", "(\\Seen)", None, message)
            assert status == "OK" and b"APPENDUID" in appended[0]
            assert imap.copy("1:*", "Archive")[0] == "OK"
            assert imap.uid("MOVE", "1:*", "Trash")[0] == "OK"
            assert imap.select("Trash", readonly=True) == ("OK", [b"3"])
            imap.logout()

    await asyncio.to_thread(scenario)


async def test_imaplib_implicit_tls(implicit: RunningImap, account: Account) -> None:
    def scenario() -> None:
        with imaplib.IMAP4_SSL("127.0.0.1", implicit.port, ssl_context=_context()) as imap:
            imap.login(account.address, PASSWORD)
            imap.select("INBOX", readonly=True)
            status, data = imap.uid("FETCH", "1:*", "(FLAGS INTERNALDATE RFC822.SIZE ENVELOPE)")
            assert status == "OK" and len(data) == 3

    await asyncio.to_thread(scenario)


async def test_imapclient_with_idle(store: Store, implicit: RunningImap, account: Account) -> None:
    def scenario() -> list[object]:
        with IMAPClient(
            "127.0.0.1", port=implicit.port, ssl=True, ssl_context=_context(), timeout=30
        ) as client:
            client.login(account.address, PASSWORD)
            assert client.has_capability("IDLE") and client.has_capability("MOVE")
            folders = {name for _flags, _delimiter, name in client.list_folders()}
            assert {"INBOX", "Sent", "Drafts", "Trash", "Archive"} <= folders
            assert client.find_special_folder(b"\\Sent") == "Sent"
            selected = client.select_folder("INBOX")
            assert selected[b"EXISTS"] == 3 and b"UIDVALIDITY" in selected
            uids = client.search(["SUBJECT", "Convocation"])
            response = client.fetch(uids, ["ENVELOPE", "BODYSTRUCTURE", "FLAGS"])
            envelope = response[uids[0]][b"ENVELOPE"]
            assert envelope.subject == b"Convocation"
            client.add_flags(uids, [b"$Important"])
            assert b"$Important" in client.get_flags(uids)[uids[0]]
            client.idle()
            ready.set()
            pushed = client.idle_check(timeout=30)
            client.idle_done()
            return pushed

    ready = asyncio.Event()
    loop = asyncio.get_running_loop()
    original = ready.set
    ready.set = lambda: loop.call_soon_threadsafe(original)  # type: ignore[method-assign]
    scenario_task = asyncio.create_task(asyncio.to_thread(scenario))
    await ready.wait()
    await store.messages.deliver(build_message(), [DeliveryTarget(account.id)])
    pushed = await scenario_task
    assert (4, b"EXISTS") in pushed


async def test_imap_tools_over_starttls_and_implicit(
    starttls: RunningImap, implicit: RunningImap, account: Account
) -> None:
    def scenario() -> None:
        with imap_tools.MailBoxStartTls("127.0.0.1", starttls.port, ssl_context=_context()).login(
            account.address, PASSWORD, "INBOX"
        ) as mailbox:
            subjects = [message.subject for message in mailbox.fetch(mark_seen=False)]
            assert subjects == ["Convocation", "Résultats de biologie", "Lettre de liaison"]
            attachments = [a.filename for m in mailbox.fetch() for a in m.attachments]
            assert attachments == ["cr.pdf"] * 3
            mailbox.folder.create("Dossiers/Patients")
            assert mailbox.folder.exists("Dossiers/Patients")
            uids = [m.uid for m in mailbox.fetch(imap_tools.AND(subject="Lettre"))]
            mailbox.move(uids, "Dossiers/Patients")
            mailbox.folder.set("Dossiers/Patients")
            assert [m.subject for m in mailbox.fetch()] == ["Lettre de liaison"]
        with imap_tools.MailBox("127.0.0.1", implicit.port, ssl_context=_context()).login(
            account.address, PASSWORD
        ) as mailbox:
            seen = [m.flags for m in mailbox.fetch(imap_tools.AND(seen=True))]
            assert len(seen) == 2  # fetched above without mark_seen=False

    await asyncio.to_thread(scenario)


async def test_aioimaplib_with_idle(store: Store, implicit: RunningImap, account: Account) -> None:
    client = aioimaplib.IMAP4_SSL("127.0.0.1", implicit.port, ssl_context=_context(), timeout=30)
    await client.wait_hello_from_server()
    assert (await client.login(account.address, PASSWORD)).result == "OK"
    assert (await client.select("INBOX")).result == "OK"
    fetched = await client.fetch("1:*", "(UID FLAGS)")
    assert fetched.result == "OK" and len(fetched.lines) == 4
    idle = await client.idle_start(timeout=30)
    await client.wait_server_push()  # "+ idling"
    await store.messages.deliver(build_message(), [DeliveryTarget(account.id)])
    pushed = await client.wait_server_push()
    assert b"4 EXISTS" in pushed or "4 EXISTS" in pushed
    client.idle_done()
    await asyncio.wait_for(idle, 30)
    assert (await client.logout()).result == "OK"
