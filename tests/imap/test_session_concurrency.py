"""Session tier: several sessions on one mailbox see each other's changes where RFC 3501 §7.4.1
allows (EXPUNGE never while answering FETCH, STORE or SEARCH), and IDLE wakes at once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from plitest.imap import InMemoryImap, imap_services, professional
from plitest.store import build_message

from pli.mailbox.store import Account, DeliveryTarget, Store


@pytest.fixture
async def account(store: Store) -> Account:
    account = await professional(store)
    for index in range(4):
        raw = build_message(subject=f"m{index}")
        await store.messages.deliver(raw, [DeliveryTarget(account.id)])
    return account


@pytest.fixture
async def pair(store: Store, account: Account) -> AsyncIterator[tuple[InMemoryImap, InMemoryImap]]:
    services = imap_services(store)
    async with InMemoryImap.start(services) as one, InMemoryImap.start(services) as two:
        for session in (one, two):
            await session.login(account.address)
            await session.command("SELECT INBOX")
        yield one, two


async def test_expunge_waits_for_a_command_that_may_carry_it(
    pair: tuple[InMemoryImap, InMemoryImap],
) -> None:
    one, two = pair
    assert (await one.command("STORE 1,3 +FLAGS.SILENT (\\Deleted)")).ok
    expunged = await one.command("EXPUNGE")
    assert expunged.lines == [b"* 3 EXPUNGE\r\n", b"* 1 EXPUNGE\r\n"]
    fetch = await two.command("FETCH 2,4 (UID)")  # FETCH, STORE, SEARCH: no EXPUNGE
    assert fetch.lines == [b"* 2 FETCH (UID 2)\r\n", b"* 4 FETCH (UID 4)\r\n"]
    store = await two.command("STORE 2 +FLAGS (\\Answered)")
    assert store.lines == [b"* 2 FETCH (FLAGS (\\Answered))\r\n"]
    search = await two.command("SEARCH ALL")
    assert search.lines == [b"* SEARCH 2 4\r\n"]  # the ghosts cannot match
    ghost = await two.command("FETCH 1 UID")
    assert ghost.tagged.endswith(
        b"NO [EXPUNGEISSUED] Some of the requested messages no longer exist\r\n"
    )
    noop = await two.command("NOOP")
    assert noop.lines == [b"* 3 EXPUNGE\r\n", b"* 1 EXPUNGE\r\n"]
    assert (await two.command("FETCH 1:* UID")).lines == [
        b"* 1 FETCH (UID 2)\r\n",
        b"* 2 FETCH (UID 4)\r\n",
    ]
    flags = await one.command("NOOP")  # the other session's STORE reaches the first one
    assert flags.lines == [b"* 1 FETCH (FLAGS (\\Recent \\Answered))\r\n"]  # its \Recent


async def test_uid_commands_may_carry_expunges(
    pair: tuple[InMemoryImap, InMemoryImap],
) -> None:
    one, two = pair
    await one.command("STORE 1 +FLAGS.SILENT (\\Deleted)")
    await one.command("EXPUNGE")
    uid_fetch = await two.command("UID FETCH 4 UID")
    assert uid_fetch.lines == [b"* 4 FETCH (UID 4)\r\n", b"* 1 EXPUNGE\r\n"]


async def test_both_sessions_expunge_the_same_message(
    pair: tuple[InMemoryImap, InMemoryImap],
) -> None:
    one, two = pair
    await one.command("STORE 1 +FLAGS (\\Deleted)")
    await two.command("NOOP")
    await two.command("STORE 1 +FLAGS (\\Deleted)")
    assert (await one.command("EXPUNGE")).lines == [b"* 1 EXPUNGE\r\n"]
    assert (await two.command("EXPUNGE")).lines == [b"* 1 EXPUNGE\r\n"]


async def test_new_messages_and_flag_changes_reach_the_other_session(
    store: Store, account: Account, pair: tuple[InMemoryImap, InMemoryImap]
) -> None:
    one, two = pair
    assert (await one.command("STORE 2 FLAGS (\\Seen $Done)")).ok
    await store.messages.deliver(build_message(), [DeliveryTarget(account.id)])
    noop = await two.command("NOOP")
    assert noop.lines == [
        b"* 2 FETCH (FLAGS (\\Seen $Done))\r\n",
        b"* 5 EXISTS\r\n",
        b"* 0 RECENT\r\n",
    ] or noop.lines == [
        b"* 2 FETCH (FLAGS (\\Seen $Done))\r\n",
        b"* 5 EXISTS\r\n",
        b"* 1 RECENT\r\n",
    ]
    again = await one.command("NOOP")  # its own STORE is not reported twice
    assert b"FETCH" not in b"".join(again.lines) and b"* 5 EXISTS\r\n" in again.lines
    recents = [b"\\Recent" in (await s.command("FETCH 5 FLAGS")).lines[0] for s in (one, two)]
    assert sorted(recents) == [False, True]  # exactly one session got it as \Recent


async def test_idle_wakes_at_once_and_done_ends_it(
    store: Store, account: Account, pair: tuple[InMemoryImap, InMemoryImap]
) -> None:
    one, two = pair
    two.send(b"i1 IDLE\r\n")
    assert await two.read_response() == b"+ idling\r\n"
    await store.messages.deliver(build_message(), [DeliveryTarget(account.id)])
    assert await two.read_response() == b"* 5 EXISTS\r\n"
    assert await two.read_response() in (b"* 1 RECENT\r\n", b"* 0 RECENT\r\n")
    await one.command("STORE 1 +FLAGS.SILENT (\\Deleted)")
    await one.command("EXPUNGE")
    pushed = await two.read_response()
    if pushed.startswith(b"* 1 FETCH"):  # the flag change, if it was pushed before the expunge
        assert pushed == b"* 1 FETCH (FLAGS (\\Deleted))\r\n"
        pushed = await two.read_response()
    assert pushed == b"* 1 EXPUNGE\r\n"  # IDLE may carry EXPUNGE
    two.send(b"DONE\r\n")
    assert (await two.until_tagged("i1")).tagged == b"i1 OK IDLE terminated\r\n"
    assert (await two.command("NOOP")).lines == []


async def test_idle_ended_by_anything_but_done_is_bad(
    pair: tuple[InMemoryImap, InMemoryImap],
) -> None:
    _, two = pair
    two.send(b"i1 IDLE\r\n")
    await two.read_response()
    two.send(b"i2 NOOP\r\n")
    assert (await two.until_tagged("i1")).tagged == b"i1 BAD Expected DONE to end IDLE\r\n"
    assert (await two.command("NOOP")).ok


async def test_deleting_the_selected_mailbox_ends_the_other_session(
    store: Store, account: Account
) -> None:
    services = imap_services(store)
    async with InMemoryImap.start(services) as one, InMemoryImap.start(services) as two:
        await one.login(account.address)
        await two.login(account.address)
        await one.command("CREATE Projet")
        await two.command("SELECT Projet")
        await one.command("DELETE Projet")
        two.send(b"n1 NOOP\r\n")
        assert (
            await two.read_response()
            == b"* BYE Selected mailbox was deleted, have to disconnect\r\n"
        )
        assert await two.closed()


async def test_concurrent_appends_get_distinct_uids(store: Store, account: Account) -> None:
    services = imap_services(store)
    raw = build_message()
    async with InMemoryImap.start(services) as one, InMemoryImap.start(services) as two:
        await one.login(account.address)
        await two.login(account.address)
        replies = await asyncio.gather(
            *(session.append("INBOX", raw) for session in (one, two, one, two))
        )
    codes = sorted(reply.tagged.split(b"APPENDUID ")[1].split(b"]")[0] for reply in replies)
    assert len(set(codes)) == 4
