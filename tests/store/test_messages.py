"""Messages: delivery to many mailboxes, APPEND, FETCH metadata, STORE, COPY/MOVE, EXPUNGE,
CONDSTORE changes, SEARCH."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime

import pytest
from plitest.store import build_message, open_test_store

from pli.mailbox.store import (
    AccountKind,
    DeliveryTarget,
    InvalidRequest,
    NotFound,
    Store,
    TooLarge,
)
from pli.mailbox.store import search as S
from pli.mailbox.store.flags import MAX_KEYWORDS
from pli.mailbox.store.messages import NewMessage
from pli.mailbox.store.service import StoreOptions


async def two_accounts(store: Store) -> tuple[int, int]:
    a = await store.accounts.create("a@hopital-demo.mssante.fr", AccountKind.PER)
    b = await store.accounts.create("b@hopital-demo.mssante.fr", AccountKind.PER)
    return a.id, b.id


async def inbox(store: Store, account_id: int) -> int:
    return (await store.folders.get(account_id, "INBOX")).id


async def test_delivery_to_many_mailboxes_shares_one_file_and_is_all_or_nothing(
    store: Store,
) -> None:
    a, b = await two_accounts(store)
    raw = build_message(subject="Résultats")
    delivered = await store.messages.deliver(
        raw, [DeliveryTarget(a), DeliveryTarget(b), DeliveryTarget(b, "Nope")]
    )
    assert len(delivered) == 2  # b's unknown folder falls back to its INBOX (same copy)
    assert len({d.blob_id for d in delivered}) == 1
    assert await store.messages.read(delivered[0].folder_id, delivered[0].uid) == raw
    with pytest.raises(NotFound):
        await store.messages.deliver(raw, [DeliveryTarget(a), DeliveryTarget(999999)])
    assert (await store.folders.status(await inbox(store, a))).exists == 1  # nothing half-done
    files = list(store.blobs.list())  # type: ignore[attr-defined]
    assert len(files) == 1  # the failed delivery's file was removed


async def test_uids_strictly_increase_under_concurrent_deliveries(store: Store) -> None:
    a, _ = await two_accounts(store)
    results = await asyncio.gather(
        *(store.messages.deliver(build_message(), [DeliveryTarget(a)]) for _ in range(20))
    )
    uids = sorted(r[0].uid for r in results)
    assert uids == list(range(1, 21))
    folder = await store.folders.get(a, "INBOX")
    assert folder.uidnext == 21
    assert await store.messages.uids(folder.id) == uids


async def test_deliver_many_files_a_batch_in_order_with_one_modseq_per_folder(
    store: Store,
) -> None:
    a, b = await two_accounts(store)
    await store.messages.deliver(build_message(), [DeliveryTarget(a)])  # a's UIDs start at 2
    before = {x: (await store.folders.get(x, "INBOX")).highestmodseq for x in (a, b)}
    raws = [build_message(subject=f"n{index}") for index in range(4)]
    targets = [[DeliveryTarget(a)], [DeliveryTarget(b), DeliveryTarget(a, flags=("\\Seen",))]]
    targets += [[DeliveryTarget(a)], [DeliveryTarget(b)]]
    results = await store.messages.deliver_many(
        [NewMessage(raw, where) for raw, where in zip(raws, targets, strict=True)]
    )
    by_folder = {x: await inbox(store, x) for x in (a, b)}
    assert [[(d.folder_id, d.uid) for d in copies] for copies in results] == [
        [(by_folder[a], 2)],
        sorted([(by_folder[b], 1), (by_folder[a], 3)]),
        [(by_folder[a], 4)],
        [(by_folder[b], 2)],
    ]
    for raw, copies in zip(raws, results, strict=True):
        for copy in copies:
            assert await store.messages.read(copy.folder_id, copy.uid) == raw
    seen = await store.messages.get(by_folder[a], 3)
    assert "\\Seen" in seen.flags
    for x in (a, b):  # one MODSEQ per folder for the whole batch, UIDNEXT past the last
        folder = await store.folders.get(x, "INBOX")
        assert folder.highestmodseq == before[x] + 1
        assert folder.uidnext == (5 if x == a else 3)
    # all or nothing: one unknown account fails the batch, and its files are removed
    files = set(store.blobs.list())  # type: ignore[attr-defined]
    with pytest.raises(NotFound):
        await store.messages.deliver_many(
            [
                NewMessage(build_message(), [DeliveryTarget(a)]),
                NewMessage(raws[0], [DeliveryTarget(999999)]),
            ]
        )
    assert (await store.folders.get(a, "INBOX")).uidnext == 5
    assert set(store.blobs.list()) == files  # type: ignore[attr-defined]
    with pytest.raises(InvalidRequest):
        await store.messages.deliver_many([NewMessage(raws[0], [])])


async def test_fetch_metadata_in_one_call_with_cached_envelope(store: Store) -> None:
    a, _ = await two_accounts(store)
    when = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    for index in range(5):
        await store.messages.deliver(
            build_message(subject=f"n{index}"), [DeliveryTarget(a)], internal_date=when
        )
    folder = await inbox(store, a)
    rows = await store.messages.fetch(folder, [(2, 4)], envelope=True)
    assert [r.uid for r in rows] == [2, 3, 4]
    assert [r.envelope[1] for r in rows if r.envelope] == ["n1", "n2", "n3"]
    assert all(r.internal_date == when and r.structure is None for r in rows)
    full = await store.messages.get(folder, 1)
    assert full.structure is not None and full.structure["type"] == "text"
    header = await store.messages.read_range(full.blob_id, *full.structure["header"])
    assert header.startswith(b"From: ") and header.endswith(b"\r\n\r\n")
    many = [(uid, uid) for uid in range(1, 200, 2)]  # a long set is filtered exactly
    assert [r.uid for r in await store.messages.fetch(folder, many)] == [1, 3, 5]


async def test_append_returns_appenduid_and_keeps_flags_and_date(store: Store) -> None:
    a, _ = await two_accounts(store)
    drafts = await store.folders.get(a, "Drafts")
    when = datetime(2023, 1, 2, 3, 4, 5, tzinfo=UTC)
    result = await store.messages.append(
        drafts.id, build_message(), flags=["\\Draft", "$Todo"], internal_date=when
    )
    assert (result.uidvalidity, result.uid) == (drafts.uidvalidity, 1)
    meta = (await store.messages.fetch(drafts.id))[0]
    assert meta.flags == ("\\Draft", "$Todo") and meta.internal_date == when
    with pytest.raises(InvalidRequest):
        await store.messages.append(drafts.id, build_message(), flags=["\\Recent"])
    with pytest.raises(InvalidRequest):
        await store.messages.append(drafts.id, build_message(), internal_date=datetime(2020, 1, 1))


async def test_size_limit_is_enforced(database_url: str, tmp_path) -> None:
    async with open_test_store(
        database_url, tmp_path, options=StoreOptions(message_size_limit=1000)
    ) as store:
        a, _ = await two_accounts(store)
        with pytest.raises(TooLarge):
            await store.messages.deliver(b"x" * 1001, [DeliveryTarget(a)])
        assert list(store.blobs.list()) == []  # type: ignore[attr-defined]


async def test_store_flags_modes_modseq_and_unchangedsince(store: Store) -> None:
    a, _ = await two_accounts(store)
    for _ in range(3):
        await store.messages.deliver(build_message(), [DeliveryTarget(a)])
    folder = await inbox(store, a)
    before = (await store.folders.get(a, "INBOX")).highestmodseq
    added = await store.messages.store_flags(folder, None, "+", ["\\seen", "$Label"])
    assert [c.flags for c in added.changed] == [("\\Seen", "$Label")] * 3
    assert added.highestmodseq == before + 1
    assert {c.modseq for c in added.changed} == {before + 1}
    same = await store.messages.store_flags(folder, None, "+", ["\\Seen"])
    assert same.changed == () and same.highestmodseq == before + 1  # no change, no new MODSEQ
    one = await store.messages.store_flags(folder, [(2, 2)], "-", ["$label"])
    assert one.changed[0].flags == ("\\Seen",)
    conditional = await store.messages.store_flags(
        folder, None, "=", ["\\Flagged"], unchanged_since=before + 1
    )
    assert conditional.failed == (2,)  # modified after before+1 (RFC 7162 §3.1.3)
    assert [c.uid for c in conditional.changed] == [1, 3]
    with pytest.raises(InvalidRequest):
        await store.messages.store_flags(
            folder, None, "+", [f"k{i}" for i in range(MAX_KEYWORDS + 1)]
        )
    with pytest.raises(InvalidRequest):
        await store.messages.store_flags(folder, None, "+", ["bad keyword"])


async def test_copy_and_move_report_uid_mapping_and_tombstones(store: Store) -> None:
    a, _ = await two_accounts(store)
    for _ in range(4):
        await store.messages.deliver(build_message(), [DeliveryTarget(a)])
    source = await inbox(store, a)
    archive = await store.folders.get(a, "Archive")
    copied = await store.messages.copy(source, [(2, 3)], archive.id)
    assert copied.uidvalidity == archive.uidvalidity and copied.pairs == ((2, 1), (3, 2))
    start = (await store.folders.get(a, "INBOX")).highestmodseq
    moved = await store.messages.move(source, [(1, 1), (4, 4)], archive.id)
    assert moved.pairs == ((1, 3), (4, 4)) and moved.expunged == (1, 4)
    assert await store.messages.uids(source) == [2, 3]
    changes = await store.messages.changes_since(source, start)
    assert changes.vanished == (1, 4) and changes.highestmodseq == start + 1
    originals = {m.blob_id for m in await store.messages.fetch(archive.id)}
    assert len(originals) == 4  # copies share the original files


async def test_expunge_all_deleted_or_within_a_uid_set(store: Store) -> None:
    a, _ = await two_accounts(store)
    for _ in range(5):
        await store.messages.deliver(build_message(), [DeliveryTarget(a)])
    folder = await inbox(store, a)
    await store.messages.store_flags(folder, [(1, 4)], "+", ["\\Deleted"])
    assert await store.messages.expunge(folder, [(1, 2)]) == [1, 2]  # UID EXPUNGE
    assert await store.messages.expunge(folder) == [3, 4]
    assert await store.messages.uids(folder) == [5]
    assert (await store.messages.changes_since(folder, 0)).vanished == (1, 2, 3, 4)


async def test_search_on_cached_columns_and_body(store: Store) -> None:
    a, _ = await two_accounts(store)
    await store.messages.deliver(
        build_message(subject="Compte rendu", body="tension normale"),
        [DeliveryTarget(a)],
        internal_date=datetime(2024, 3, 1, 10, tzinfo=UTC),
    )
    await store.messages.deliver(
        build_message(
            subject="=?utf-8?q?R=C3=A9sultats?=", sender="Labo <labo@x.fr>", body="glycémie élevée"
        ),
        [DeliveryTarget(a)],
        internal_date=datetime(2024, 3, 5, 10, tzinfo=UTC),
    )
    folder = await inbox(store, a)
    await store.messages.store_flags(folder, [(2, 2)], "+", ["\\Seen", "Urgent_1"])
    search = store.messages.search
    assert await search(folder, S.Header("subject", "RÉSULTATS")) == [2]
    assert await search(folder, S.Header("from", "labo@")) == [2]
    assert await search(folder, S.Flag("\\Seen", present=False)) == [1]
    assert await search(folder, S.Flag("urgent_1")) == [2]
    assert await search(folder, S.Flag("urgent%")) == []
    assert await search(folder, S.InternalDate("before", date(2024, 3, 2))) == [1]
    assert await search(folder, S.InternalDate("on", date(2024, 3, 5))) == [2]
    assert await search(folder, S.Body("GLYCÉMIE")) == [2]
    assert await search(folder, S.Or(S.Body("tension"), S.Flag("\\Seen"))) == [1, 2]
    assert await search(folder, S.Not(S.Body("tension"))) == [2]
    assert await search(folder, S.And([S.Size("larger", 10), S.Uids([(2, 9)])])) == [2]
    assert await search(folder, S.Uids([(u, u) for u in range(2, 100, 3)])) == [2]
    assert await search(folder, S.ModSeq(3)) == [2]


async def test_undecodable_and_broken_input_is_stored_as_received(store: Store) -> None:
    a, _ = await two_accounts(store)
    hostile = (
        b"Subject: \xff\xfe\x00 junk\r\nFrom: <<<>>>\r\nContent-Type: multipart/mixed\r\n"
        + b"X-Long: "
        + b"a" * 200_000
        + b"\r\n\r\n\x00\x80 body"
    )
    delivered = await store.messages.deliver(hostile, [DeliveryTarget(a)])
    folder = delivered[0].folder_id
    assert await store.messages.read(folder, delivered[0].uid) == hostile
    meta = await store.messages.get(folder, delivered[0].uid)
    assert meta.size == len(hostile) and meta.envelope is not None
    assert await store.messages.search(folder, S.Header("subject", "junk")) == [1]


async def test_body_search_reads_text_whatever_charset_the_sender_declared(store: Store) -> None:
    """A sender's charset may be unknown, a bytes codec, or not a name at all: the text is read
    as UTF-8 then, and the search neither raises nor misses it."""
    a, _ = await two_accounts(store)
    for charset in (b"x-unknown", b"base64", b"iso-8859-1\x00", b"utf-8\x80"):
        raw = (
            b'From: a@x.fr\r\nSubject: s\r\nContent-Type: text/plain; charset="'
            + charset
            + b'"\r\n\r\nordonnance jointe\r\n'
        )
        await store.messages.deliver(raw, [DeliveryTarget(a)])
    folder = await inbox(store, a)
    assert await store.messages.search(folder, S.Body("ordonnance")) == [1, 2, 3, 4]
