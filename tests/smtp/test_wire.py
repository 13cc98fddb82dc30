"""Our SMTP session over real sockets (TLS from the test PKI), with a recording handler: what
EHLO advertises and that it works (PIPELINING, SIZE, 8BITMIME, SMTPUTF8, DSN, ENHANCEDSTATUSCODES),
sequence errors, and every limit at the limit and one past it."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest
from plitest.pki import session_pki
from plitest.smtp import RawClient, recording_listener

from pli.mailgateway.smtp.limits import COMMAND_LINE, RCPT_LINE, SmtpLimits
from pli.mailgateway.smtp.params import RcptParams


async def ehlo_over_tls(client: RawClient) -> list[str]:
    assert (await client.reply())[0] == 220
    await client.command("EHLO client.test")
    assert await client.command("STARTTLS") == (220, ["2.0.0 Ready to start TLS"])  # RFC 2034
    await client.starttls(session_pki().client_context())
    code, lines = await client.command("EHLO client.test")
    assert code == 250
    return lines


async def test_ehlo_advertises_what_works_and_not_chunking() -> None:
    async with recording_listener() as (service, _):
        client = await RawClient.connect(service.addresses()[0])
        assert (await client.reply())[0] == 220
        code, lines = await client.command("EHLO client.test")
        assert code == 250
        assert lines == [
            "mx.test",
            "PIPELINING",
            f"SIZE {SmtpLimits().message_size}",
            "8BITMIME",
            "SMTPUTF8",
            "ENHANCEDSTATUSCODES",
            "DSN",
            "STARTTLS",
            "HELP",
        ]
        client.close()


async def test_a_pipelined_transaction_gets_its_replies_in_order() -> None:
    async with recording_listener() as (service, recorder):
        client = await RawClient.connect(service.addresses()[0])
        await ehlo_over_tls(client)
        await client.send(
            b"MAIL FROM:<a@b.fr> BODY=8BITMIME RET=HDRS ENVID=e1\r\n"
            b"RCPT TO:<c@d.fr> NOTIFY=SUCCESS,DELAY ORCPT=rfc822;c@d.fr\r\n"
            b"RCPT TO:<e@d.fr> NOTIFY=NEVER\r\nDATA\r\n"
        )
        replies = [await client.reply() for _ in range(4)]
        assert [code for code, _ in replies] == [250, 250, 250, 354]
        assert replies[0][1] == ["2.1.0 Sender OK"]
        code, _ = await client.command(b"Subject: \xc3\xa9t\xc3\xa9\r\n\r\nbody\r\n.")
        assert code == 250
        assert recorder.recipients == [
            ("c@d.fr", RcptParams(("SUCCESS", "DELAY"), "rfc822;c@d.fr")),
            ("e@d.fr", RcptParams(("NEVER",))),
        ]
        transaction, message = recorder.messages[0]
        assert transaction.params.envid == "e1" and transaction.params.ret == "HDRS"
        assert message == "Subject: été\r\n\r\nbody\r\n".encode()
        assert (await client.command("QUIT"))[0] == 221
        assert await client.closed()


async def test_the_replies_to_a_pipelined_group_leave_in_one_write(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """RFC 2920 §3.2: replies wait while the client's next command is already read, and go
    out together when the server would wait for the client (one TLS record, one segment)."""
    writes: list[bytes] = []
    original = asyncio.StreamWriter.write

    def recording(self: asyncio.StreamWriter, data: bytes) -> None:
        if self is not client.writer:  # the server's writes only
            writes.append(bytes(data))
        original(self, data)

    async with recording_listener() as (service, _):
        client = await RawClient.connect(service.addresses()[0])
        await ehlo_over_tls(client)
        monkeypatch.setattr(asyncio.StreamWriter, "write", recording)
        await client.send(b"MAIL FROM:<a@b.fr>\r\nRCPT TO:<c@d.fr>\r\nRCPT TO:<e@d.fr>\r\nDATA\r\n")
        replies = [await client.reply() for _ in range(4)]
        assert [code for code, _ in replies] == [250, 250, 250, 354]
        assert writes == [
            b"250 2.1.0 Sender OK\r\n250 2.1.5 Recipient OK\r\n250 2.1.5 Recipient OK\r\n"
            b"354 End data with <CR><LF>.<CR><LF>\r\n"
        ]
        code, _ = await client.command(b"Subject: x\r\n\r\nbody\r\n.")  # not held back
        assert code == 250
        assert (await client.command("NOOP"))[0] == 250  # an unpipelined command: answered
        client.close()


async def test_smtputf8_addresses() -> None:
    async with recording_listener() as (service, recorder):
        client = await RawClient.connect(service.addresses()[0])
        await ehlo_over_tls(client)
        code, lines = await client.command("MAIL FROM:<élodie@exemple.fr>")
        assert (code, lines) == (553, ["5.6.7 Non-ASCII address requires SMTPUTF8"])
        assert (await client.command("MAIL FROM:<élodie@exemple.fr> SMTPUTF8"))[0] == 250
        assert (await client.command("RCPT TO:<josé@exemple.fr>"))[0] == 250
        assert recorder.recipients[-1][0] == "josé@exemple.fr"
        client.close()


@pytest.mark.parametrize(
    ("commands", "expected"),
    [
        (["MAIL FROM:<a@b.fr>"], (503, "5.5.1 Send EHLO first")),
        (["EHLO x", "RCPT TO:<a@b.fr>"], (503, "5.5.1 Need MAIL command")),
        (["EHLO x", "DATA"], (503, "5.5.1 Need MAIL command")),
        (
            ["EHLO x", "MAIL FROM:<a@b.fr>", "MAIL FROM:<a@b.fr>"],
            (503, "5.5.1 Nested MAIL command"),
        ),
        (["EHLO x", "MAIL FROM:<a@b.fr>", "DATA"], (554, "5.5.1 No valid recipients")),
        (["EHLO"], (501, "5.5.2 Syntax: EHLO hostname")),
        (["XYZZY"], (500, "5.5.2 Command not recognized")),
        (["EXPN list"], (502, "5.5.1 Command not implemented")),
        (["EHLO x", "AUTH PLAIN"], (502, "5.5.1 Authentication not available on this service")),
        (["VRFY a@b.fr"], (252, "2.5.0 Cannot VRFY user, but will accept message for delivery")),
        (["NOOP"], (250, "2.0.0 OK")),
        (["RSET"], (250, "2.0.0 Reset")),
        (["EHLO x", "STARTTLS now"], (501, "5.5.2 Syntax: STARTTLS")),
    ],
)
async def test_sequence_and_syntax_replies(commands: list[str], expected: tuple[int, str]) -> None:
    async with recording_listener(tls="none") as (service, _):
        client = await RawClient.connect(service.addresses()[0])
        await client.reply()
        for command in commands:
            code, lines = await client.command(command)
        assert (code, lines[-1]) == expected
        client.close()


async def test_command_line_limits_at_and_past_the_limit() -> None:
    async with recording_listener(tls="none") as (service, _):
        client = await RawClient.connect(service.addresses()[0])
        await client.reply()
        at_limit = "NOOP " + "x" * (COMMAND_LINE - 2 - 5)
        assert (await client.command(at_limit))[0] == 250
        assert await client.command(at_limit + "x") == (500, ["5.5.2 Line too long"])
        await client.command("EHLO x")
        await client.command("MAIL FROM:<a@b.fr>")
        orcpt = "rfc822;" + "o" * 400 + "@b.fr"
        assert (await client.command(f"RCPT TO:<c@d.fr> NOTIFY=SUCCESS ORCPT={orcpt}"))[0] == 250
        huge = "RCPT TO:<c@d.fr> " + "X" * RCPT_LINE
        assert await client.command(huge) == (500, ["5.5.2 Line too long"])
        assert (await client.command("NOOP"))[0] == 250  # still in step
        client.close()


@pytest.mark.parametrize("extra", [0, 1])
async def test_recipients_limit_and_one_past_it(extra: int) -> None:
    limits = dataclasses.replace(SmtpLimits(), recipients=3)
    async with recording_listener(tls="none", limits=limits) as (service, _):
        client = await RawClient.connect(service.addresses()[0])
        await client.reply()
        await client.command("EHLO x")
        await client.command("MAIL FROM:<a@b.fr>")
        for index in range(3):
            assert (await client.command(f"RCPT TO:<r{index}@d.fr>"))[0] == 250
        if extra:
            assert await client.command("RCPT TO:<r9@d.fr>") == (452, ["4.5.3 Too many recipients"])
        client.close()


@pytest.mark.parametrize("extra", [0, 1])
async def test_message_size_limit_and_one_past_it(extra: int) -> None:
    limits = dataclasses.replace(SmtpLimits(), message_size=100)
    async with recording_listener(tls="none", limits=limits) as (service, recorder):
        client = await RawClient.connect(service.addresses()[0])
        await client.reply()
        await client.command("EHLO x")
        code, lines = await client.command(f"MAIL FROM:<a@b.fr> SIZE={100 + extra}")
        if extra:
            assert (code, lines) == (
                552,
                ["5.3.4 Message size exceeds the fixed maximum message size"],
            )
            await client.command("MAIL FROM:<a@b.fr>")
        await client.command("RCPT TO:<c@d.fr>")
        await client.command("DATA")
        body = b"x" * (98 + extra) + b"\r\n"
        code, lines = await client.command(body + b".")
        if extra:
            assert (code, lines) == (
                552,
                ["5.3.4 Message size exceeds the fixed maximum message size"],
            )
            assert recorder.messages == []
        else:
            assert code == 250 and recorder.messages[0][1] == body
        client.close()


async def test_too_many_errors_closes_with_421() -> None:
    limits = dataclasses.replace(SmtpLimits(), errors_before_disconnect=3)
    async with recording_listener(tls="none", limits=limits) as (service, _):
        client = await RawClient.connect(service.addresses()[0])
        await client.reply()
        assert (await client.command("BOGUS"))[0] == 500
        assert (await client.command("BOGUS"))[0] == 500
        assert (await client.command("BOGUS"))[0] == 500
        assert await client.reply() == (421, ["4.7.0 Too many errors, closing connection"])
        assert await client.closed()


async def test_too_many_junk_commands_closes_with_421() -> None:
    limits = dataclasses.replace(SmtpLimits(), junk_commands=2)
    async with recording_listener(tls="none", limits=limits) as (service, _):
        client = await RawClient.connect(service.addresses()[0])
        await client.reply()
        assert (await client.command("NOOP"))[0] == 250
        assert (await client.command("NOOP"))[0] == 250
        code, lines = await client.command("NOOP")
        assert (code, lines) == (
            421,
            ["4.7.0 Too many commands without a message, closing connection"],
        )
        assert await client.closed()


async def test_messages_per_connection_limit() -> None:
    limits = dataclasses.replace(SmtpLimits(), messages_per_connection=1)
    async with recording_listener(tls="none", limits=limits) as (service, _):
        client = await RawClient.connect(service.addresses()[0])
        await client.reply()
        await client.command("EHLO x")
        for command in ("MAIL FROM:<a@b.fr>", "RCPT TO:<c@d.fr>", "DATA"):
            await client.command(command)
        assert (await client.command("x\r\n."))[0] == 250
        code, lines = await client.command("MAIL FROM:<a@b.fr>")
        assert code == 421 and lines[0].startswith("4.7.0 Too many messages")
        assert await client.closed()


async def test_connections_per_peer_limit_and_one_past_it() -> None:
    limits = dataclasses.replace(SmtpLimits(), connections_per_peer=2)
    async with recording_listener(tls="none", limits=limits) as (service, _):
        first = await RawClient.connect(service.addresses()[0])
        second = await RawClient.connect(service.addresses()[0])
        assert (await first.reply())[0] == 220
        assert (await second.reply())[0] == 220
        third = await RawClient.connect(service.addresses()[0])
        assert await third.reply() == (
            421,
            ["4.7.0 Too many connections from your address, please try again later"],
        )
        assert await third.closed()
        first.close()
        await second.command("QUIT")


async def test_idle_timeout_says_421_and_closes() -> None:
    limits = dataclasses.replace(SmtpLimits(), command_timeout=0.3)
    async with recording_listener(tls="none", limits=limits) as (service, _):
        client = await RawClient.connect(service.addresses()[0])
        await client.reply()
        assert await client.reply() == (421, ["4.4.2 Timeout, closing connection"])
        assert await client.closed()
