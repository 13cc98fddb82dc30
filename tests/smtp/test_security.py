"""Attacks by name: SMTP smuggling (CVE-2023-51764 family), STARTTLS command injection
(CVE-2011-0411), BDAT smuggling, AUTH before TLS, plain-text MAIL on the inbound MTA, forged
Authentication-Results, oversized lines."""

from __future__ import annotations

import pytest
from plitest.pki import session_pki
from plitest.smtp import PEER_DOMAIN, RawClient, SmtpStack, recording_listener
from plitest.store import build_message


async def started(client: RawClient) -> None:
    assert (await client.reply())[0] == 220
    assert (await client.command("EHLO attacker.test"))[0] == 250


@pytest.mark.parametrize(
    ("name", "smuggled"),
    [
        ("lf-dot-lf", b"\n.\n"),
        ("cr-dot-crlf", b"\r.\r\n"),
        ("lf-dot-crlf", b"\n.\r\n"),
        ("crlf-dot-lf", b"\r\n.\n"),
    ],
)
async def test_smtp_smuggling(name: str, smuggled: bytes) -> None:
    """The end of data hidden as ``smuggled`` never ends the message: no second message is
    accepted, the message carrying it is refused, the connection is closed."""
    async with recording_listener(tls="none") as (service, recorder):
        client = await RawClient.connect(service.addresses()[0])
        await started(client)
        await client.command("MAIL FROM:<a@b.fr>")
        await client.command("RCPT TO:<c@d.fr>")
        assert (await client.command("DATA"))[0] == 354
        await client.send(
            b"Subject: hello\r\n\r\nfirst"
            + smuggled
            + b"MAIL FROM:<admin@b.fr>\r\nRCPT TO:<victim@d.fr>\r\n"
            b"DATA\r\nSubject: forged\r\n\r\nsmuggled\r\n.\r\n"
        )
        code, lines = await client.reply()
        assert (code, lines[0][:6]) == (554, "5.6.11"), name
        assert (await client.reply())[0] == 421
        assert await client.closed()
        assert recorder.messages == []
        assert [address for address, _ in recorder.recipients] == ["c@d.fr"]


async def test_smtp_smuggling_after_a_real_end_is_not_read_as_commands() -> None:
    """``\\r\\r\\n.\\r\\n`` holds a real end: the message (with its bare CR) is refused and the
    connection closed, so the bytes after it are never taken for commands."""
    async with recording_listener(tls="none") as (service, recorder):
        client = await RawClient.connect(service.addresses()[0])
        await started(client)
        for command in ("MAIL FROM:<a@b.fr>", "RCPT TO:<c@d.fr>", "DATA"):
            await client.command(command)
        await client.send(b"first\r\r\n.\r\nMAIL FROM:<admin@b.fr>\r\nRCPT TO:<victim@d.fr>\r\n")
        assert (await client.reply())[0] == 554
        assert (await client.reply())[0] == 421
        assert await client.closed()
        assert len(recorder.mails) == 1 and recorder.messages == []


async def test_starttls_command_injection() -> None:
    """Commands pipelined after STARTTLS in the same packet are discarded (RFC 3207 §4.2)."""
    async with recording_listener() as (service, recorder):
        client = await RawClient.connect(service.addresses()[0])
        await started(client)
        await client.send(b"STARTTLS\r\nMAIL FROM:<injected@evil.fr>\r\n")
        assert (await client.reply())[0] == 220
        await client.starttls(session_pki().client_context())
        assert (await client.command("EHLO attacker.test"))[0] == 250
        code, lines = await client.command("RCPT TO:<c@d.fr>")
        assert (code, lines) == (503, ["5.5.1 Need MAIL command"])  # the injected MAIL is gone
        assert recorder.mails == []
        client.close()


async def test_starttls_resets_the_session() -> None:
    """RFC 3207 §4.2: after TLS the client must say EHLO again; nothing carries over."""
    async with recording_listener() as (service, _):
        client = await RawClient.connect(service.addresses()[0])
        await started(client)
        await client.command("STARTTLS")
        await client.starttls(session_pki().client_context())
        assert await client.command("MAIL FROM:<a@b.fr>") == (503, ["5.5.1 Send EHLO first"])
        client.close()


async def test_bdat_chunk_smuggling() -> None:
    """CHUNKING is not offered; a BDAT (whose binary chunk could hide commands) closes."""
    async with recording_listener(tls="none") as (service, recorder):
        client = await RawClient.connect(service.addresses()[0])
        await started(client)
        await client.command("MAIL FROM:<a@b.fr>")
        await client.command("RCPT TO:<c@d.fr>")
        await client.send(b"BDAT 40 LAST\r\nMAIL FROM:<x@y.fr>\r\nRCPT TO:<z@y.fr>\r\n")
        code, lines = await client.reply()
        assert (code, lines) == (502, ["5.5.1 BDAT not supported; closing"])
        assert await client.closed()
        assert len(recorder.mails) == 1


async def test_overlong_command_line_is_refused_and_the_session_stays_in_step() -> None:
    async with recording_listener(tls="none") as (service, _):
        client = await RawClient.connect(service.addresses()[0])
        await started(client)
        assert await client.command(b"MAIL FROM:<a@b.fr> " + b"A" * 100_000) == (
            500,
            ["5.5.2 Line too long"],
        )
        assert (await client.command("MAIL FROM:<a@b.fr>"))[0] == 250
        client.close()


async def test_auth_before_tls_on_submission(stack: SmtpStack) -> None:
    client = await RawClient.connect(stack.address("submission"))
    await started(client)
    code, lines = await client.command("AUTH PLAIN AGRyLm1hcnRpbgBwYXNz")
    assert (code, lines[0][:6]) == (538, "5.7.11")
    client.close()


async def test_plaintext_mail_on_the_inbound_mta(stack: SmtpStack) -> None:
    client = await RawClient.connect(stack.address("mta"))
    await started(client)
    assert await client.command(f"MAIL FROM:<dr.bernard@{PEER_DOMAIN}>") == (
        530,
        ["5.7.0 Must issue a STARTTLS command first"],
    )
    client.close()


async def test_forged_authentication_results_are_removed(stack: SmtpStack) -> None:
    paul = stack.accounts.parent.address
    sender = f"dr.bernard@{PEER_DOMAIN}"
    forged = "Authentication-Results: localhost; dkim=pass header.d=hopital-demo.mssante.fr"
    other = "Authentication-Results: mx.elsewhere.fr; dkim=pass"
    raw = build_message(sender=sender, to=[paul], headers={"X-Test": "1"})
    raw = f"{forged}\r\n{other}\r\n".encode() + raw
    async with stack.mta_client() as client:
        await client.sendmail(sender, [paul], raw)
    account = await stack.store.accounts.by_address(paul)
    folder = await stack.store.folders.get(account.id, "INBOX")
    stored = await stack.store.messages.read(
        folder.id, (await stack.store.messages.uids(folder.id))[-1]
    )
    assert forged.encode() not in stored
    assert other.encode() in stored  # another server's verdict is kept (RFC 8601 §5)
    assert b"Authentication-Results: localhost;\r\n\tdkim=none" in stored
