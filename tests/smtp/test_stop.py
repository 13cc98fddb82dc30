"""Graceful stop: idle sessions get 421 at once; a DATA in flight is completed and acknowledged
within the grace, or cut and never acknowledged; never acknowledged and lost."""

from __future__ import annotations

import asyncio

import pytest
from plitest.smtp import PEER_DOMAIN, RawClient, SmtpStack
from plitest.store import build_message

DOCTOR = f"dr.bernard@{PEER_DOMAIN}"


async def inbox_count(stack: SmtpStack, address: str) -> int:
    account = await stack.store.accounts.by_address(address)
    folder = await stack.store.folders.get(account.id, "INBOX")
    return len(await stack.store.messages.uids(folder.id))


async def start_data(stack: SmtpStack, paul: str) -> RawClient:
    client = await RawClient.connect(stack.address("mta"))
    await client.reply()
    await client.command("EHLO mx.clinique-demo.mssante.fr")
    await client.command("STARTTLS")
    await client.starttls(stack.client_context())
    await client.command("EHLO mx.clinique-demo.mssante.fr")
    assert (await client.command(f"MAIL FROM:<{DOCTOR}>"))[0] == 250
    assert (await client.command(f"RCPT TO:<{paul}>"))[0] == 250
    assert (await client.command("DATA"))[0] == 354
    return client


async def test_a_data_in_flight_finishes_within_the_grace_and_idle_sessions_close(
    stack: SmtpStack,
) -> None:
    paul = stack.accounts.parent.address
    before = await inbox_count(stack, paul)
    address = stack.address("mta")
    idle = await RawClient.connect(address)
    await idle.reply()
    busy = await start_data(stack, paul)
    message = build_message(sender=DOCTOR, to=[paul])
    await busy.send(message[:100])
    stopping = asyncio.create_task(stack.listeners["mta"].stop(10))
    assert await idle.reply() == (421, ["4.3.2 Service shutting down, please try again later"])
    await busy.send(message[100:] + b".\r\n")
    code, lines = await busy.reply()
    assert code == 250, lines
    assert (await busy.reply())[0] == 421  # then closed
    await stopping
    assert await inbox_count(stack, paul) == before + 1
    with pytest.raises(ConnectionRefusedError):  # no longer accepting
        await RawClient.connect(address)


async def test_past_the_grace_a_data_is_cut_and_never_acknowledged(stack: SmtpStack) -> None:
    paul = stack.accounts.parent.address
    before = await inbox_count(stack, paul)
    busy = await start_data(stack, paul)
    await busy.send(b"Subject: unfinished\r\n\r\nhalf a message")
    await stack.listeners["mta"].stop(0.2)
    assert await busy.reply() == (0, [])  # cut: no reply at all
    assert await inbox_count(stack, paul) == before
