"""Integration tier: on PostgreSQL, a session in IDLE wakes at once when another process
delivers into its mailbox (the store's change feed carries the commit over LISTEN/NOTIFY)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest
from plitest.imap import InMemoryImap, imap_services, professional
from plitest.store import is_postgresql

from pli.mailbox.store import Store

WRITER = Path(__file__).resolve().parents[1] / "plitest" / "store_writer.py"
#: Bound on the wait for the other process's delivery to be pushed (it takes milliseconds).
PUSH_TIMEOUT = 30


async def test_idle_wakes_when_another_process_delivers(
    store: Store, database_url: str, tmp_path: Path
) -> None:
    if not is_postgresql(database_url):
        pytest.skip("LISTEN/NOTIFY needs PostgreSQL (SQLite stores are single-process)")
    account = await professional(store)
    await asyncio.wait_for(store.feed.listening.wait(), PUSH_TIMEOUT)
    schema = store.feed.channel.removeprefix("pli_store").lstrip("_")
    async with InMemoryImap.start(imap_services(store)) as imap:
        await imap.login(account.address)
        assert b"* 0 EXISTS\r\n" in (await imap.command("SELECT INBOX")).lines
        imap.send(b"i IDLE\r\n")
        assert await imap.read_response() == b"+ idling\r\n"
        writer = await asyncio.create_subprocess_exec(
            sys.executable,
            str(WRITER),
            database_url,
            str(tmp_path / "messages"),
            schema,
            str(account.id),
            "1",
            stdout=asyncio.subprocess.PIPE,
        )
        output, _ = await asyncio.wait_for(writer.communicate(), PUSH_TIMEOUT)
        assert output.startswith(b"ACK 1 ")
        pushed = await asyncio.wait_for(imap.read_response(), PUSH_TIMEOUT)
        assert pushed == b"* 1 EXISTS\r\n"
        imap.send(b"DONE\r\n")
        assert (await imap.until_tagged("i")).ok
        fetched = await imap.command("FETCH 1 (FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        assert b"Subject: n0" in fetched.lines[0]
