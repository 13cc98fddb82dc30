"""Audit chain (tamper evidence, purge, concurrent writers), change feed, file sweep."""

from __future__ import annotations

import asyncio
import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from plitest.store import build_message, is_postgresql, open_test_store
from sqlalchemy import text, update

from pli.mailbox.store import AccountKind, DeliveryTarget, EventKind, Store
from pli.mailbox.store.blobs import new_blob_id
from pli.mailbox.store.feed import NOTIFY_MAX_UIDS, SUBSCRIPTION_QUEUE, FeedEvent
from pli.mailbox.store.models import AuditRecordRow
from pli.mailbox.store.sweep import sweep


async def test_audit_chain_verifies_and_reports_the_first_tampered_record(store: Store) -> None:
    for index in range(5):
        await store.audit.record(
            "dr.martin@x.mssante.fr",
            "consult",
            mailbox="P@patient.mssante.fr",
            acting_for=None,
            request=f"FETCH {index}",
            result="OK",
        )
    assert (await store.audit.verify()).ok
    async with store.db.write() as conn:
        await conn.execute(update(AuditRecordRow).where(AuditRecordRow.id == 3).values(result="NO"))
    broken = await store.audit.verify()
    assert (broken.ok, broken.broken_at, broken.checked) == (False, 3, 2)
    assert "hash" in broken.reason


async def test_a_deleted_record_or_tail_breaks_the_chain(store: Store) -> None:
    for index in range(4):
        await store.audit.record("a", "login", request=str(index))
    async with store.db.write() as conn:
        await conn.execute(text("DELETE FROM audit_records WHERE id = 2"))
    assert (await store.audit.verify()).broken_at == 3
    async with store.db.write() as conn:
        await conn.execute(text("DELETE FROM audit_records WHERE id >= 2"))
    tail = await store.audit.verify()
    assert not tail.ok and "head" in tail.reason


async def test_purge_keeps_the_rest_verifiable_and_records_itself(store: Store) -> None:
    old = datetime.now(UTC) - timedelta(days=200)
    for index in range(3):
        await store.audit.record("a", "login", at=old + timedelta(minutes=index))
    await store.audit.record("a", "login")
    assert await store.audit.purge() == 3  # default retention: 183 days
    verification = await store.audit.verify()
    assert verification.ok and verification.checked == 2
    history = await store.audit.history("nobody")
    assert history == []


async def test_concurrent_audit_writers_never_fork_the_chain(
    database_url: str, tmp_path: Path
) -> None:
    """Two stores on one database (as two processes would be) write at once."""
    schema = "t_audit_" + os.urandom(4).hex()
    async with (
        open_test_store(database_url, tmp_path, schema=schema, keep_schema=True) as first,
        open_test_store(database_url, tmp_path / "b", schema=schema) as second,
    ):
        await asyncio.gather(
            *(store.audit.record(f"w{i}", "login") for i in range(15) for store in (first, second))
        )
        assert (await second.audit.verify()).checked == 30


async def test_feed_delivers_events_after_commit_only(store: Store) -> None:
    account = await store.accounts.create("a@x.mssante.fr", AccountKind.PER)
    inbox = await store.folders.get(account.id, "INBOX")
    subscription = store.feed.subscribe(account.id, inbox.id)
    with pytest.raises(RuntimeError):
        async with store.transaction() as tx:
            await store.messages.deliver(build_message(), [DeliveryTarget(account.id)], tx=tx)
            assert subscription.get_nowait() is None  # not before commit
            raise RuntimeError("roll back")
    assert subscription.get_nowait() is None  # never for a rolled-back transaction
    await store.messages.deliver(build_message(), [DeliveryTarget(account.id)])
    event = await asyncio.wait_for(subscription.get(), 5)
    assert (event.kind, event.folder_id, event.uids) == (EventKind.ADDED, inbox.id, (1,))
    await store.messages.store_flags(inbox.id, None, "+", ["\\Seen"])
    assert (await subscription.get()).kind is EventKind.FLAGS
    await store.messages.store_flags(inbox.id, None, "+", ["\\Deleted"])
    await subscription.get()
    await store.messages.expunge(inbox.id)
    expunged = await subscription.get()
    assert (expunged.kind, expunged.uids) == (EventKind.EXPUNGED, (1,))
    subscription.close()


def test_a_slow_subscriber_gets_one_overflow_event() -> None:
    from pli.mailbox.store.feed import ChangeFeed

    feed = ChangeFeed()
    subscription = feed.subscribe(1)
    feed.publish(FeedEvent(EventKind.FLAGS, 1, 2, uids=(i,)) for i in range(SUBSCRIPTION_QUEUE + 5))
    assert subscription.get_nowait() == FeedEvent(EventKind.OVERFLOW, 1, None)
    assert subscription.get_nowait() is None
    feed.publish([FeedEvent(EventKind.ADDED, 1, 2, uids=(9,)), FeedEvent(EventKind.ADDED, 2, 2)])
    assert subscription.get_nowait() == FeedEvent(EventKind.ADDED, 1, 2, uids=(9,))
    assert subscription.get_nowait() is None  # another account's event is not seen


def test_cross_process_payloads_stay_under_the_limit_and_truncate_uids() -> None:
    from pli.mailbox.store.feed import NOTIFY_PAYLOAD_LIMIT, ChangeFeed

    sender, receiver = ChangeFeed(), ChangeFeed()
    subscription = receiver.subscribe(1)
    events = [
        FeedEvent(EventKind.ADDED, 1, 2, uids=tuple(range(1000)), modseq=i) for i in range(30)
    ]
    payloads = sender.payloads(events)
    assert all(len(p) <= NOTIFY_PAYLOAD_LIMIT for p in payloads) and len(payloads) > 1
    for payload in payloads:
        receiver.receive(payload)
        sender.receive(payload)  # its own: ignored
    first = subscription.get_nowait()
    assert first is not None and first.truncated and len(first.uids) == NOTIFY_MAX_UIDS
    receiver.receive("not json")  # logged and dropped, no exception


async def test_postgresql_notify_reaches_another_process_store(
    database_url: str, tmp_path: Path
) -> None:
    if not is_postgresql(database_url):
        pytest.skip("LISTEN/NOTIFY needs PostgreSQL (SQLite stores are single-process)")
    async with open_test_store(
        database_url, tmp_path, schema="t_feed_" + os.urandom(4).hex()
    ) as writer:
        schema = writer.feed.channel.removeprefix("pli_store_")
        async with open_test_store(
            database_url, tmp_path / "b", schema=schema, keep_schema=True
        ) as reader:
            await asyncio.wait_for(reader.feed.listening.wait(), 10)
            account = await writer.accounts.create("a@x.mssante.fr", AccountKind.PER)
            subscription = reader.feed.subscribe(account.id)
            await writer.messages.deliver(build_message(), [DeliveryTarget(account.id)])
            events = []
            while not any(e.kind is EventKind.ADDED for e in events):
                events.append(await asyncio.wait_for(subscription.get(), 10))
            assert events[-1].uids == (1,)


async def test_sweep_removes_only_old_unreferenced_files(store: Store) -> None:
    account = await store.accounts.create("a@x.mssante.fr", AccountKind.PER)
    kept = await store.messages.deliver(build_message(), [DeliveryTarget(account.id)])
    doomed = await store.messages.deliver(build_message(), [DeliveryTarget(account.id)])
    inbox = kept[0].folder_id
    copy = await store.messages.copy(inbox, [(doomed[0].uid, doomed[0].uid)], inbox)
    orphan = await store.blobs.put(b"orphan")  # a crash between file and commit
    young = await store.blobs.put(b"young")
    await store.messages.store_flags(inbox, [(doomed[0].uid, doomed[0].uid)], "+", ["\\Deleted"])
    await store.messages.expunge(inbox)
    now = time.time()
    for blob in (orphan, doomed[0].blob_id, kept[0].blob_id):
        os.utime(store.blobs.path(blob), (now - 7200, now - 7200))  # type: ignore[attr-defined]
    report = await sweep(store, grace=3600, now=now)
    assert report.removed_files == 1  # the orphan; the copy still refers to the expunged file
    remaining = {blob for blob, _ in store.blobs.list()}  # type: ignore[attr-defined]
    assert remaining == {kept[0].blob_id, doomed[0].blob_id, young}
    assert copy.pairs


def test_blob_ids_name_the_minute_and_stay_random() -> None:
    noon = 1_790_000_040.0  # a whole minute
    ids = {new_blob_id(noon + second) for second in range(0, 60, 3)}
    assert len(ids) == 20  # 116 random bits each
    prefix = f"{int(noon // 60) % 0x1000:03x}"
    assert {blob_id[:3] for blob_id in ids} == {prefix}
    assert all(len(blob_id) == 32 and set(blob_id) <= set("0123456789abcdef") for blob_id in ids)
    assert new_blob_id(noon + 60)[:3] != prefix


async def test_a_file_is_created_in_place_and_an_interrupted_one_is_swept(store: Store) -> None:
    """No temporary file and rename: a blob is written under its final name, and one a crash
    cut mid-write (no row refers to it) is removed by the sweep like any orphan."""
    blob = await store.blobs.put(b"complete message")
    path = store.blobs.path(blob)  # type: ignore[attr-defined]
    assert path.read_bytes() == b"complete message"
    assert not any((store.blobs.directory / "tmp").iterdir())  # type: ignore[attr-defined]
    cut = store.blobs.path(new_blob_id())  # type: ignore[attr-defined]
    cut.parent.mkdir(parents=True, exist_ok=True)
    cut.write_bytes(b"half a mess")  # what a writer killed mid-write leaves
    now = time.time()
    os.utime(cut, (now - 7200, now - 7200))
    report = await sweep(store, grace=3600, now=now)
    assert report.removed_files == 1
    assert not cut.exists() and path.exists()
