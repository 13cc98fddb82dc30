"""Workers sharing the outbox: a worker killed after the store answered (its lease runs out,
another resends, the store answers with the same document), two workers on one database (each
request sent once), and waking at once on a new request through the change feed (in this
process, and on PostgreSQL in another one)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import sys
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from plitest.docstore import CITIZEN
from plitest.filing import (
    FakeClock,
    all_settled,
    citizen,
    citizen_message,
    deliver,
    eventually,
    filing_settings,
)
from plitest.store import build_message, is_postgresql, open_test_store
from sqlalchemy import select

from pli.mailbox.filing import (
    FilingStatus,
    FilingWorker,
    filings_for,
    list_filings,
    request_filing,
)
from pli.mailbox.filing.models import FilingRequestRow
from pli.mailbox.filing.outbox import claim, next_due, settle
from pli.mailbox.store import Store

DOCS = f"/v1/citizens/{CITIZEN}/documents"


class Killed(BaseException):
    """The worker's process dies (nothing in the worker catches a BaseException)."""


class KillAfterAnswer(httpx.AsyncBaseTransport):
    """A transport that lets the store answer, then kills the worker before it reads on."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.answered = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        await response.aread()
        self.answered += 1
        raise Killed


class Counting(httpx.AsyncBaseTransport):
    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.posts = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.posts += request.method == "POST"
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


@contextlib.asynccontextmanager
async def second_store(store: Store, database_url: str, tmp_path: Path) -> AsyncIterator[Store]:
    """Another Store on the same database and message files (another process would open one)."""
    schema = store.feed.channel.removeprefix("pli_store").lstrip("_") or None
    async with open_test_store(database_url, tmp_path, schema=schema, keep_schema=True) as other:
        yield other


async def test_a_worker_killed_after_the_store_answered_is_taken_over_and_nothing_doubles(
    store: Store, base_url: str, documents: httpx.AsyncClient
) -> None:
    clock = FakeClock()
    account, folder, uid = await citizen_message(store)
    await request_filing(store, account, folder, uid, "2", now=clock())
    killer = KillAfterAnswer()
    doomed = FilingWorker(store, filing_settings(base_url, lease=30), clock=clock, transport=killer)
    with pytest.raises(Killed):
        await doomed.run_due()
    assert killer.answered == 1
    [filed] = (await documents.get(DOCS)).json()["documents"]  # filed, but never recorded
    [state] = await filings_for(store, account, folder, uid)
    assert state.status is FilingStatus.PENDING
    heir = FilingWorker(store, filing_settings(base_url, lease=30), clock=clock)
    try:
        assert await heir.run_due() == 0  # the lease still holds
        clock.advance(31)
        assert await heir.run_due() == 1
    finally:
        await heir.client.close()
        await doomed.client.close()
    [state] = await filings_for(store, account, folder, uid)
    assert (state.status, state.document_ids, state.attempts) == (
        FilingStatus.FILED,
        (filed["id"],),
        2,
    )
    assert len((await documents.get(DOCS)).json()["documents"]) == 1


async def test_a_late_outcome_of_a_worker_that_lost_its_lease_is_not_recorded(
    store: Store, base_url: str
) -> None:
    clock = FakeClock()
    account, folder, uid = await citizen_message(store)
    await request_filing(store, account, folder, uid, "2", now=clock())
    slow = FilingWorker(store, filing_settings(base_url, lease=30), clock=clock, worker_id="slow")
    fast = FilingWorker(store, filing_settings(base_url, lease=30), clock=clock, worker_id="fast")
    try:
        [held] = await claim(store, "slow", 1, clock(), 30)
        clock.advance(31)
        assert await fast.run_due() == 1
        late = await slow._attempt(held)
        assert late is not None
        assert not await settle(store, held, "slow", late, clock())
    finally:
        await slow.client.close()
        await fast.client.close()
    [state] = await filings_for(store, account, folder, uid)
    assert state.status is FilingStatus.FILED


async def test_two_workers_on_one_database_send_each_request_once(
    store: Store, base_url: str, documents: httpx.AsyncClient, database_url: str, tmp_path: Path
) -> None:
    account = await citizen(store)
    for number in range(30):
        raw = build_message(
            to=[account.address],
            attachments=[
                (
                    f"cr-{number}.pdf",
                    "application/pdf",
                    b"%PDF-1.4\n%" + b"%d" % number + b"\n%%EOF\n",
                )
            ],
        )
        folder, uid = await deliver(store, account, raw)
        await request_filing(store, account, folder, uid, "2")
    async with second_store(store, database_url, tmp_path) as other:
        counters = [Counting(), Counting()]
        workers = [
            FilingWorker(store, filing_settings(base_url, concurrency=3), transport=counters[0]),
            FilingWorker(other, filing_settings(base_url, concurrency=3), transport=counters[1]),
        ]
        for worker in workers:
            await worker.start()
        try:
            await eventually(lambda: all_settled(store), workers, within=120)
        finally:
            for worker in workers:
                await worker.stop(5)
    states = await list_filings(store, limit=100)
    assert [s.status for s in states] == [FilingStatus.FILED] * 30
    assert sum(counter.posts for counter in counters) == 30  # no request sent twice
    listed = (await documents.get(DOCS, params={"limit": 100})).json()["documents"]
    assert sorted(d["id"] for d in listed) == sorted(s.document_ids[0] for s in states)


async def test_a_new_request_wakes_the_worker_at_once(store: Store, base_url: str) -> None:
    worker = FilingWorker(store, filing_settings(base_url, poll_interval=3600))
    await worker.start()
    try:
        await asyncio.sleep(0)  # the worker is idle, waiting for an hour
        account, folder, uid = await citizen_message(store)
        await request_filing(store, account, folder, uid, "2")
        await eventually(lambda: all_settled(store), [worker], within=20)
    finally:
        await worker.stop(5)
    [state] = await filings_for(store, account, folder, uid)
    assert state.status is FilingStatus.FILED


@pytest.mark.skipif(
    not is_postgresql(__import__("os").environ.get("PLI_TEST_DATABASE_URL", "")),
    reason="the change feed crosses processes on PostgreSQL only (SQLite: one process)",
)
async def test_a_request_made_in_another_process_wakes_the_worker_through_notify(
    store: Store, base_url: str, database_url: str, tmp_path: Path
) -> None:
    async with second_store(store, database_url, tmp_path) as other:
        await asyncio.wait_for(other.feed.listening.wait(), 10)
        worker = FilingWorker(other, filing_settings(base_url, poll_interval=3600))
        await worker.start()
        try:
            account, folder, uid = await citizen_message(store)
            await request_filing(store, account, folder, uid, "2")
            await eventually(lambda: all_settled(store), [worker], within=20)
        finally:
            await worker.stop(5)


async def test_a_restarted_worker_frees_the_leases_of_dead_processes_of_its_host(
    store: Store, base_url: str
) -> None:
    gone = await asyncio.create_subprocess_exec(sys.executable, "-c", "pass")
    await gone.wait()  # a pid no process has now
    host = socket.gethostname()[:32].replace(":", "-")
    holders = [f"{host}:{gone.pid}:dead", f"{host}:{os.getpid()}:alive", "elsewhere:1:x"]
    account = await citizen(store)
    for holder in holders:
        raw = build_message(
            to=[account.address], attachments=[("a.pdf", "application/pdf", b"%PDF-1.4\n%%EOF\n")]
        )
        folder, uid = await deliver(store, account, raw)
        await request_filing(store, account, folder, uid, "2")
        assert len(await claim(store, holder, 1, FakeClock()(), 300)) == 1
    worker = FilingWorker(store, filing_settings(base_url, poll_interval=3600))
    await worker.start()
    try:
        await eventually(lambda: _filed_count(store, 1), [worker], within=20)
    finally:
        await worker.stop(5)
    async with store.db.read() as conn:
        found = (
            await conn.execute(select(FilingRequestRow.locked_by, FilingRequestRow.state))
        ).all()
    assert sorted(found, key=str) == sorted(
        [(None, "filed"), (holders[1], "pending"), (holders[2], "pending")], key=str
    )


async def _filed_count(store: Store, count: int) -> bool:
    return len(await list_filings(store, status=FilingStatus.FILED)) >= count


async def test_a_request_in_flight_is_due_when_its_lease_ends_not_now(store: Store) -> None:
    clock = FakeClock()
    assert await next_due(store) is None
    account, folder, uid = await citizen_message(store)
    await request_filing(store, account, folder, uid, "2", now=clock())
    assert await next_due(store) == clock()
    await claim(store, "busy", 1, clock(), 300)
    assert await next_due(store) == clock() + timedelta(seconds=300)
