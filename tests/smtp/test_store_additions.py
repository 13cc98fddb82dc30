"""The queries the SMTP gateway added to the store: a message prepared (file written, parsed)
outside the delivering transaction, one read transaction for several reads (snapshot), audit
records appended in one batch, the last dispensation at a pharmacy."""

from __future__ import annotations

import functools
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from plitest.store import build_message, demo, open_test_store

from pli.mailbox.store import DeliveryTarget, blobs
from pli.mailbox.store.audit import AuditEntry
from pli.mailbox.store.demo import PHARMACY_ADDRESS, PHARMACY_STRUCTURE
from pli.mailbox.store.messages import NewMessage


async def test_a_prepared_message_is_delivered_without_writing_it_again(
    database_url: str, tmp_path: Path
) -> None:
    async with open_test_store(database_url, tmp_path) as store:
        accounts = await demo(store)
        raw = build_message(subject="préparé")
        prepared = await store.messages.prepare(raw)
        before = {blob for blob, _ in store.blobs.list()}
        assert prepared.blob_id in before
        [delivered] = await store.messages.deliver(
            raw, [DeliveryTarget(accounts.child.id)], prepared=prepared
        )
        assert delivered.blob_id == prepared.blob_id
        assert {blob for blob, _ in store.blobs.list()} == before  # no second file
        assert await store.messages.read(delivered.folder_id, delivered.uid) == raw


async def test_prepared_files_are_made_durable_together_when_filed(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[str] = []
    sync_files, fsync_directory = blobs._sync_files, blobs._fsync_directory

    def files_recorded(paths: list[str]) -> None:
        synced.extend(paths)
        sync_files(paths)

    def directory_recorded(path: str) -> None:
        synced.append(path)
        fsync_directory(path)

    monkeypatch.setattr(blobs, "_sync_files", files_recorded)
    monkeypatch.setattr(blobs, "_fsync_directory", directory_recorded)
    async with open_test_store(database_url, tmp_path, fsync=True) as store:
        accounts = await demo(store)  # its messages are filed one by one: synced at once
        raws = [build_message(subject=f"lot {index}") for index in range(6)]
        _one_minute_of_existing_directories(store.blobs, monkeypatch)
        synced.clear()
        prepared = [await store.messages.prepare(raw) for raw in raws]
        files = {str(store.blobs.path(p.blob_id)) for p in prepared}
        directories = {str(store.blobs.path(p.blob_id).parent) for p in prepared}
        assert not (files | directories) & set(synced)  # nothing durable yet
        await store.messages.deliver_many(
            [
                NewMessage(raw, [DeliveryTarget(accounts.child.id)], prepared=p)
                for raw, p in zip(raws, prepared, strict=True)
            ]
        )
        # Before filing: every file once, then every directory once.
        assert sorted(synced[: len(files)]) == sorted(files)
        assert sorted(synced[len(files) :]) == sorted(directories)
        settled = await store.messages.settle(prepared)
        assert all(p.settled for p in settled)
        synced.clear()
        assert await store.messages.settle(settled) == settled and synced == []


async def test_a_prepared_file_whose_directory_is_new_is_synced_with_it_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[str] = []
    monkeypatch.setattr(blobs, "_fsync_directory", synced.append)
    store = blobs.FileBlobStore(tmp_path / "messages")
    first = await store.put(b"the first message of its directory", durable=False)
    directory = store.path(first).parent
    assert synced == [str(directory), str(directory.parent), str(tmp_path / "messages")]
    synced.clear()
    monkeypatch.setattr(blobs, "new_blob_id", lambda: first[:4] + "0" * 28)
    second = await store.put(b"the second", durable=False)
    assert store.path(second).parent == directory and synced == []


def _one_minute_of_existing_directories(
    store: blobs.BlobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Blob ids of one minute from now on, whose 16 directories exist already."""
    assert isinstance(store, blobs.FileBlobStore)
    now = time.time()
    monkeypatch.setattr(blobs, "new_blob_id", functools.partial(blobs.new_blob_id, now))
    prefix = blobs.new_blob_id()[:3]
    for digit in "0123456789abcdef":
        store.path(prefix + digit + "0" * 28).parent.mkdir(parents=True, exist_ok=True)


async def test_a_snapshot_shares_one_read_transaction(database_url: str, tmp_path: Path) -> None:
    async with open_test_store(database_url, tmp_path) as store:
        accounts = await demo(store)
        async with store.db.snapshot():
            async with store.db.read() as first, store.db.read() as second:
                assert first is second
            async with store.db.snapshot(), store.db.read() as third:  # nested: the same
                assert third is first
            assert (await store.accounts.find(accounts.parent.address)) is not None
        async with store.db.read() as outside, store.db.read() as other:
            assert outside is not other


async def test_audit_records_appended_in_one_batch_keep_the_chain(
    database_url: str, tmp_path: Path
) -> None:
    async with open_test_store(database_url, tmp_path) as store:
        await store.audit.record("before", "x")
        entries = [
            AuditEntry(f"actor{index}", "deliver", mailbox=f"m{index}@x.fr", result="ok")
            for index in range(5)
        ]
        async with store.transaction() as tx:
            await store.audit.record_many(entries, tx=tx)
            await store.audit.record_many([], tx=tx)
        await store.audit.record("after", "x")
        verification = await store.audit.verify()
        assert verification.ok and verification.checked == 7
        history = await store.audit.history("m3@x.fr")
        assert [r.actor for r in history] == ["actor3"]


async def test_the_last_dispensation_by_address_or_structure(
    database_url: str, tmp_path: Path
) -> None:
    async with open_test_store(database_url, tmp_path) as store:
        accounts = await demo(store)  # a dispensation 30 days ago, named by structure id
        ins = accounts.parent.ins or ""
        first = await store.directory.last_dispensation(ins, PHARMACY_ADDRESS)
        assert first is not None and first.tzinfo is not None
        recent = datetime.now(UTC).replace(microsecond=0) - timedelta(days=2)
        await store.directory.add_dispensation(ins, PHARMACY_ADDRESS, recent)
        assert await store.directory.last_dispensation(ins, PHARMACY_ADDRESS) == recent
        assert (
            await store.directory.last_dispensation(accounts.child.ins or "", PHARMACY_ADDRESS)
            is None
        )
        assert (
            await store.directory.has_dispensation(ins, PHARMACY_STRUCTURE.lower() + "@x", recent)
            is False
        )
        assert await store.directory.has_dispensation(ins, PHARMACY_ADDRESS, recent)
