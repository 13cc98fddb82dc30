"""The document store as a real process (`pli docstore serve`) killed with SIGKILL in the middle
of a batch of filings and started again on the same port: every filing ends filed, once, with
its bytes; nothing lost, nothing duplicated.

- mid-upload: one upload is held half sent while the store is killed; the others of the batch
  meet a dead store (connection refused) and wait; all are filed after the restart;
- lost answer: the store commits a filing, the worker never gets the answer, the store dies;
  the retry after the restart gets the document filed the first time (200), not a second one;
- pli itself (`pli serve` running the worker) killed with SIGKILL mid-batch and started again:
  it frees the dead process's leases and files what is left, each once.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import httpx
from plitest.docstore import CITIZEN, TEST_TOKEN, drop_schema, postgres_test_url
from plitest.docstore_process import write_docstore_config
from plitest.filing import (
    Interrupting,
    StoreProcess,
    all_settled,
    citizen,
    deliver,
    eventually,
    filing_settings,
    free_port,
    write_serve_config,
)
from plitest.process import PliProcess
from plitest.store import build_message

from pli.config.loading import load_settings
from pli.config.schema import async_database_url
from pli.mailbox.filing import FilingStatus, FilingWorker, list_filings, request_filing
from pli.mailbox.store import Store

DOCUMENTS = 24
KILL_AFTER = 8  # filings done before the kill
DOCS = f"/v1/citizens/{CITIZEN}/documents"


def document(number: int) -> bytes:
    filler = hashlib.sha256(b"%d" % number).hexdigest().encode() * 8000  # ~512 KiB
    return b"%PDF-1.4\n%" + filler + b"\n%%EOF\n"


@contextlib.asynccontextmanager
async def store_process(tmp_path: Path) -> AsyncIterator[StoreProcess]:
    """`pli docstore serve` on a free port, with its own SQLite file or PostgreSQL schema."""
    config, schema = write_docstore_config(tmp_path / "docstore-process")
    process = StoreProcess(config, free_port())
    try:
        await process.start()
        yield process
    finally:
        process.stop()
        server = postgres_test_url()
        if schema and server:
            await drop_schema(async_database_url(server, Path()), schema)


async def batch(store: Store) -> dict[int, bytes]:
    """DOCUMENTS messages, each with a PDF, and a filing asked for each: filing id → bytes."""
    account = await citizen(store)
    expected = {}
    for number in range(DOCUMENTS):
        raw = build_message(
            to=[account.address],
            message_id=f"<batch-{number}@hopital-demo.mssante.fr>",
            attachments=[(f"cr-{number}.pdf", "application/pdf", document(number))],
        )
        folder, uid = await deliver(store, account, raw)
        expected[(await request_filing(store, account, folder, uid, "2")).id] = document(number)
    return expected


async def filed(store: Store, at_least: int) -> bool:
    states = await list_filings(store, status=FilingStatus.FILED, limit=DOCUMENTS)
    return len(states) >= at_least


async def check_once_each(store: Store, url: str, expected: dict[int, bytes]) -> None:
    states = {state.id: state for state in await list_filings(store, limit=100)}
    assert {i: s.status for i, s in states.items()} == dict.fromkeys(expected, FilingStatus.FILED)
    ids = {i: s.document_ids for i, s in states.items()}
    assert all(len(found) == 1 for found in ids.values())
    headers = {"Authorization": f"Bearer {TEST_TOKEN}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=60) as client:
        listed = (await client.get(DOCS, params={"limit": 500})).json()["documents"]
        assert sorted(d["id"] for d in listed) == sorted(found[0] for found in ids.values())
        for filing_id, content in expected.items():
            stored = await client.get(f"{DOCS}/{ids[filing_id][0]}/content")
            assert stored.content == content


async def test_a_store_killed_mid_batch_loses_nothing_and_duplicates_nothing(
    store: Store, tmp_path: Path
) -> None:
    async with store_process(tmp_path) as process:
        expected = await batch(store)
        transport = Interrupting(hold=KILL_AFTER + 2)
        settings = filing_settings(process.url, concurrency=2, retry_schedule=[0.2, 0.5])
        worker = FilingWorker(store, settings, transport=transport)
        await worker.start()
        try:

            async def ready_to_kill() -> bool:
                return transport.half_sent.is_set() and await filed(store, KILL_AFTER)

            await eventually(ready_to_kill, [worker], within=120)
            await process.kill()  # one upload half sent, others waiting
            transport.release.set()
            pending = DOCUMENTS - len(await list_filings(store, status=FilingStatus.FILED))
            assert pending > 0
            await eventually(lambda: _retried(store), [worker], within=60)
            await process.start()
            await eventually(lambda: all_settled(store), [worker], within=180)
        finally:
            await worker.stop(5)
        await check_once_each(store, process.url, expected)


async def _retried(store: Store) -> bool:
    """Some filing met the dead store (its attempt is recorded as a passing failure)."""
    pending = await list_filings(store, status=FilingStatus.PENDING, limit=DOCUMENTS)
    return any(state.last_error for state in pending)


async def test_a_filing_whose_answer_died_with_the_store_is_filed_once(
    store: Store, tmp_path: Path
) -> None:
    async with store_process(tmp_path) as process:
        expected = await batch(store)
        transport = Interrupting(lose_answer=3)
        settings = filing_settings(process.url, concurrency=1, retry_schedule=[0.2, 0.5])
        worker = FilingWorker(store, settings, transport=transport)
        await worker.start()
        try:
            await eventually(_answer_lost(transport), [worker], within=60)
            await process.kill()  # committed, answered, the answer never read
            await process.start()
            await eventually(lambda: all_settled(store), [worker], within=180)
        finally:
            await worker.stop(5)
        assert transport.lost_status == 201
        retried = [s for s in await list_filings(store, limit=100) if s.attempts > 1]
        assert retried  # the filing whose answer was lost was sent again
        await check_once_each(store, process.url, expected)


def _answer_lost(transport: Interrupting) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return transport.answer_lost.is_set()

    return check


async def test_pli_killed_mid_batch_resumes_at_once_and_files_each_request_once(
    tmp_path: Path,
) -> None:
    async with store_process(tmp_path) as docstore:
        config = write_serve_config(
            tmp_path / "pli" / "pli.toml",
            docstore_url=docstore.url,
            serve_docstore=False,
            filing="concurrency = 1",
        )
        store = await Store.open(load_settings(config))  # the mail store pli serve uses
        servers: list[PliProcess] = []
        try:
            expected = await batch(store)
            servers.append(PliProcess(["serve", "-c", str(config)]))
            await asyncio.to_thread(servers[-1].listening)
            for _ in range(5):
                await asyncio.to_thread(servers[-1].wait_for, "filing-filed", 60)
            servers[-1].signal(signal.SIGKILL)  # kill -9 in the middle of the batch
            await asyncio.to_thread(servers[-1].wait)
            left = await list_filings(store, status=FilingStatus.PENDING, limit=DOCUMENTS)
            assert left  # the batch was not over
            servers.append(PliProcess(["serve", "-c", str(config)]))
            await asyncio.to_thread(servers[-1].listening)
            await eventually(lambda: all_settled(store), [], within=120)
            await check_once_each(store, docstore.url, expected)
        finally:
            for server in servers:
                server.stop()
            await store.close()
