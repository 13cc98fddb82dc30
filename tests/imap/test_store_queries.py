"""What the IMAP server added to the store: the bulk metadata rows, \\Recent claims, SENT* by
the Date: header's own calendar day, header searches the cache cannot answer."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, date, datetime

import pytest
from plitest.store import build_message

from pli.mailbox.store import AccountKind, DeliveryTarget, NotFound, Store
from pli.mailbox.store import search as S
from pli.mailbox.store.search import calendar_day


async def _inbox(store: Store) -> tuple[int, int]:
    account = await store.accounts.create("a@hopital-demo.mssante.fr", AccountKind.PER)
    return account.id, (await store.folders.get(account.id, "INBOX")).id


async def test_fetch_rows_gives_plain_values_and_json_only_when_asked(store: Store) -> None:
    account, folder = await _inbox(store)
    when = datetime(2024, 2, 5, 10, 11, 12, tzinfo=UTC)
    for subject in ("one", "two", "three"):
        await store.messages.deliver(
            build_message(subject=subject), [DeliveryTarget(account)], internal_date=when
        )
    await store.messages.store_flags(folder, [(2, 2)], "+", ["\\Seen", "$Done"])
    rows = await store.messages.fetch_rows(folder, [(2, 3)], envelope=True)
    assert [row.uid for row in rows] == [2, 3]
    assert rows[0].flags == ("\\Seen", "$Done")
    assert rows[0].internal_date == int(when.timestamp())
    assert rows[0].envelope is not None and json.loads(rows[0].envelope)[1] == "two"
    assert rows[0].structure is None
    meta = await store.messages.get(folder, 2)
    assert (rows[0].id, rows[0].size, rows[0].blob_id, rows[0].modseq) == (
        meta.id,
        meta.size,
        meta.blob_id,
        meta.modseq,
    )
    plain = await store.messages.fetch_rows(folder, None, structure=True)
    assert [row.envelope for row in plain] == [None] * 3
    assert all(json.loads(row.structure or "")["type"] == "text" for row in plain)
    changed = await store.messages.fetch_rows(folder, None, changed_since=rows[1].modseq)
    assert [row.uid for row in changed] == [2]
    # more ranges than SQL gets: filtered in Python, same answer
    many = [(uid, uid) for uid in range(1, 80, 2)]
    assert [row.uid for row in await store.messages.fetch_rows(folder, many)] == [1, 3]


async def test_recent_is_claimed_once_and_counted_until_then(store: Store) -> None:
    account, folder = await _inbox(store)
    for _ in range(3):
        await store.messages.deliver(build_message(), [DeliveryTarget(account)])
    status = await store.folders.status(folder)
    assert status.recent == 3 and status.folder.first_recent_uid == 1
    assert await store.folders.claim_recent(folder, 3) == 1  # UIDs 1-2 are this session's
    assert (await store.folders.status(folder)).recent == 1
    assert await store.folders.claim_recent(folder, 3) == 3  # nothing left below 3
    assert await store.folders.claim_recent(folder, 4) == 3
    assert (await store.folders.status(folder)).recent == 0
    with pytest.raises(NotFound):
        await store.folders.claim_recent(999999, 4)


async def test_concurrent_claims_share_nothing(store: Store) -> None:
    account, folder = await _inbox(store)
    for _ in range(5):
        await store.messages.deliver(build_message(), [DeliveryTarget(account)])
    firsts = await asyncio.gather(*(store.folders.claim_recent(folder, 6) for _ in range(4)))
    assert sorted(firsts) == [1, 6, 6, 6]


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("Sun, 25 Mar 2007 00:00:00 +0200", date(2007, 3, 25)),  # UTC would say the 24th
        ("Sat, 24 Mar 2007 23:00:00 -0500", date(2007, 3, 24)),  # UTC would say the 25th
        ("25 Mar 07 00:00 GMT", date(2007, 3, 25)),  # obsolete two-digit year
        ("31 Feb 2007 00:00 +0000", None),
        ("not a date", None),
        (None, None),
    ],
)
def test_calendar_day_is_the_day_written(header: str | None, expected: date | None) -> None:
    day = calendar_day(header)
    assert day == (None if expected is None else (expected - date(1970, 1, 1)).days)


async def test_sent_dates_compare_the_written_day(store: Store) -> None:
    account, folder = await _inbox(store)
    for header in ("Sat, 24 Mar 2007 23:00:00 +0200", "Sun, 25 Mar 2007 00:00:00 +0200"):
        raw = build_message(headers={"X-Date": header})
        raw = raw.replace(b"X-Date: ", b"Date: ", 1).replace(b"\r\nDate: ", b"\r\nX-Old: ", 1)
        await store.messages.deliver(raw, [DeliveryTarget(account)])

    async def search(criterion: object) -> list[int]:
        return await store.messages.search(folder, criterion)

    assert await search(S.SentDate("on", date(2007, 3, 24))) == [1]
    assert await search(S.SentDate("on", date(2007, 3, 25))) == [2]
    assert await search(S.SentDate("before", date(2007, 3, 25))) == [1]
    assert await search(S.SentDate("since", date(2007, 3, 25))) == [2]
    copied = await store.messages.copy(folder, None, folder)
    assert len(copied.pairs) == 2  # the day travels with COPY
    assert await search(S.SentDate("on", date(2007, 3, 25))) == [2, 4]


async def test_header_searches_the_cache_cannot_answer_read_the_header(store: Store) -> None:
    account, folder = await _inbox(store)
    await store.messages.deliver(build_message(subject="hello"), [DeliveryTarget(account)])
    await store.messages.deliver(
        build_message(
            subject="",
            headers={"X-Extra": "hello =?utf-8?q?b=C3=A9autiful?= header"},
        ),
        [DeliveryTarget(account)],
    )

    async def search(criterion: object) -> list[int]:
        return await store.messages.search(folder, criterion)

    assert await search(S.Header("x-extra", "")) == [2]  # presence
    assert await search(S.Not(S.Header("x-extra", ""))) == [1]
    assert await search(S.Header("X-Extra", "BÉAUTIFUL")) == [2]  # decoded, any case
    assert await search(S.Header("subject", "")) == [1, 2]  # present, even empty
    assert await search(S.Or(S.Header("x-extra", "nope"), S.Header("subject", "hel"))) == [1]


@pytest.mark.parametrize(
    ("mode", "flags"),
    [("+", ["\\Seen"]), ("-", ["\\Seen", "\\Flagged"]), ("=", ["\\Answered"]), ("=", [])],
)
async def test_system_flag_store_in_one_statement_agrees_with_the_general_path(
    store: Store, mode: str, flags: list[str]
) -> None:
    """The one-statement path (system flags, compact UID set) and the row-by-row path (a UID
    set of more than 32 ranges) give the same flags, changes and MODSEQ semantics."""
    account, fast = await _inbox(store)
    general = (await store.folders.create(account, "General")).id
    for index in range(40):
        raw = build_message(subject=f"m{index}")
        await store.messages.deliver(raw, [DeliveryTarget(account)])
        await store.messages.deliver(raw, [DeliveryTarget(account, "General")])
    for folder in (fast, general):  # the same starting flags in both folders
        await store.messages.store_flags(folder, [(1, 10)], "+", ["\\Seen"])
        await store.messages.store_flags(folder, [(5, 15)], "+", ["\\Flagged", "$Label"])
    before = (await store.folders.get(account, "INBOX")).highestmodseq
    singles = [(uid, uid) for uid in range(1, 41)]
    one = await store.messages.store_flags(fast, [(1, 40)], mode, flags)
    other = await store.messages.store_flags(general, singles, mode, flags)
    assert [(c.uid, c.flags) for c in one.changed] == [(c.uid, c.flags) for c in other.changed]
    assert {c.modseq for c in one.changed} == {one.highestmodseq} == {before + 1}
    rows = {row.uid: row.flags for row in await store.messages.fetch_rows(fast)}
    assert rows == {row.uid: row.flags for row in await store.messages.fetch_rows(general)}
    again = await store.messages.store_flags(fast, [(1, 40)], mode, flags)
    assert again.changed == () and again.highestmodseq == one.highestmodseq  # no-op: no MODSEQ


async def test_system_flag_store_with_unchangedsince(store: Store) -> None:
    account, folder = await _inbox(store)
    for _ in range(3):
        await store.messages.deliver(build_message(), [DeliveryTarget(account)])
    first = await store.messages.store_flags(folder, [(2, 2)], "+", ["\\Seen"])
    stale = first.highestmodseq - 1
    result = await store.messages.store_flags(
        folder, [(1, 3)], "+", ["\\Flagged"], unchanged_since=stale
    )
    assert result.failed == (2,)
    assert [change.uid for change in result.changed] == [1, 3]
    with pytest.raises(NotFound):
        await store.messages.store_flags(999999, [(1, 1)], "+", ["\\Seen"])


async def test_selection_reads_the_folder_the_uids_and_the_first_unseen_at_once(
    store: Store,
) -> None:
    account, folder = await _inbox(store)
    for _ in range(4):
        await store.messages.deliver(build_message(), [DeliveryTarget(account)])
    await store.messages.store_flags(folder, [(1, 2)], "+", ["\\Seen"])
    await store.messages.store_flags(folder, [(3, 3)], "+", ["\\Deleted"])
    await store.messages.expunge(folder)
    selection = await store.messages.selection(folder)
    assert selection.uids == [1, 2, 4]
    assert selection.first_unseen_uid == 4
    assert selection.folder.uidnext == 5 and selection.folder.highestmodseq > 1
    await store.messages.store_flags(folder, [(4, 4)], "+", ["\\Seen"])
    assert (await store.messages.selection(folder)).first_unseen_uid is None
    with pytest.raises(NotFound):
        await store.messages.selection(999999)
