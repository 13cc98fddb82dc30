"""Asking for a filing (the webmail's "save to my documents"): checks, the outbox row and its
audit record in one transaction, the same attachment asked twice (one filing), guardians
(policy P9), asking again after a failure or a filing, and the states the citizen reads."""

from __future__ import annotations

import pytest
from plitest.docstore import CITIZEN, OTHER_CITIZEN
from plitest.filing import CITIZEN_DOMAIN, citizen, citizen_message, deliver
from plitest.store import build_message
from sqlalchemy import update

from pli.mailbox.filing import (
    FilingForbidden,
    FilingStatus,
    filings_for,
    get_filing,
    list_filings,
    request_filing,
)
from pli.mailbox.filing.models import FilingRequestRow
from pli.mailbox.store import AccountKind, InvalidRequest, NotFound, Store


async def test_a_request_is_pending_and_audited_in_the_citizen_mailbox(store: Store) -> None:
    account, folder, uid = await citizen_message(store, message_id="<a@b.mssante.fr>")
    state = await request_filing(store, account, folder, uid, "2")
    assert (state.status, state.kind, state.part) == (FilingStatus.PENDING, "attachment", "2")
    assert (state.requested_by, state.requester) == ("citizen-request", CITIZEN)
    assert state.source_id == "a@b.mssante.fr"
    assert state.text == "Classement en cours dans vos documents."
    assert state.documents == () and state.document_ids == ()
    [record] = [
        r for r in await store.audit.history(account.address) if r.action == "filing-request"
    ]
    assert record.actor == account.address and record.acting_for is None
    assert record.request == f"folder=INBOX uid={uid} part=2"
    assert record.result == f"created filing={state.id}"
    assert (await store.audit.verify()).ok


async def test_asking_twice_for_one_attachment_gives_one_filing(store: Store) -> None:
    account, folder, uid = await citizen_message(store)
    first = await request_filing(store, account, folder, uid, "2")
    again = await request_filing(store, account, folder, uid, "2")
    assert again.id == first.id
    assert len(await list_filings(store)) == 1
    results = [r.result for r in await store.audit.history(account.address)]
    assert f"pending filing={first.id}" in results


async def test_a_copy_of_the_message_in_another_folder_is_the_same_filing(store: Store) -> None:
    account, folder, uid = await citizen_message(store)
    archive = await store.folders.create(account.id, "Archives")
    copied = await store.messages.copy(folder, [(uid, uid)], archive.id)
    first = await request_filing(store, account, folder, uid, "2")
    other = await request_filing(store, account, archive.id, copied.pairs[0][1], "2")
    assert other.id == first.id
    assert [s.id for s in await filings_for(store, account, archive.id, copied.pairs[0][1])] == [
        first.id
    ]


async def test_a_message_without_message_id_is_named_by_its_file(store: Store) -> None:
    account = await citizen(store)
    raw = build_message(to=[account.address], attachments=[("a.pdf", "application/pdf", b"%PDF-1")])
    raw = b"".join(
        line for line in raw.splitlines(keepends=True) if not line.startswith(b"Message-ID")
    )
    folder, uid = await deliver(store, account, raw)
    state = await request_filing(store, account, folder, uid, "2")
    meta = await store.messages.get(folder, uid)
    assert state.source_id == f"blob:{meta.blob_id}"


async def test_a_guardian_files_for_the_ward_and_the_audit_says_who_acted(store: Store) -> None:
    parent = await citizen(store, OTHER_CITIZEN)
    child, folder, uid = await citizen_message(store)
    await store.accounts.add_guardian(child.id, parent.id, "parent")
    state = await request_filing(store, child, folder, uid, "2", actor=parent)
    assert (state.requested_by, state.requester) == ("guardian", OTHER_CITIZEN)
    [record] = [r for r in await store.audit.history(child.address) if r.action == "filing-request"]
    assert (record.actor, record.acting_for) == (parent.address, child.address)


async def test_someone_who_may_not_act_for_the_citizen_is_refused(store: Store) -> None:
    stranger = await citizen(store, OTHER_CITIZEN)
    account, folder, uid = await citizen_message(store)
    with pytest.raises(FilingForbidden):
        await request_filing(store, account, folder, uid, "2", actor=stranger)
    assert await list_filings(store) == []


async def test_only_citizens_file_and_only_their_own_messages(store: Store) -> None:
    doctor = await store.accounts.create("dr.x@hopital-demo.mssante.fr", AccountKind.PER)
    inbox = await store.folders.get(doctor.id, "INBOX")
    with pytest.raises(InvalidRequest):
        await request_filing(store, doctor, inbox.id, 1, "2")
    account, folder, uid = await citizen_message(store)
    other = await store.accounts.create_citizen(OTHER_CITIZEN, CITIZEN_DOMAIN)
    with pytest.raises(NotFound):  # the folder is not theirs
        await request_filing(store, other, folder, uid, "2")
    with pytest.raises(NotFound):
        await request_filing(store, account, folder, uid + 1, "2")


@pytest.mark.parametrize("part", ["3", "0", "2.1", "", "x" * 300])
async def test_a_part_that_is_not_an_attachment_of_the_message_is_refused(
    store: Store, part: str
) -> None:
    account, folder, uid = await citizen_message(store)
    with pytest.raises((NotFound, InvalidRequest)):
        await request_filing(store, account, folder, uid, part)
    assert await list_filings(store) == []


async def test_a_request_in_a_transaction_that_rolls_back_leaves_nothing(store: Store) -> None:
    account, folder, uid = await citizen_message(store)

    class Abandoned(Exception):
        pass

    with pytest.raises(Abandoned):
        async with store.transaction() as tx:
            await request_filing(store, account, folder, uid, "2", tx=tx)
            raise Abandoned
    assert await list_filings(store) == []
    assert not [
        r for r in await store.audit.history(account.address) if r.action == "filing-request"
    ]


async def set_state(store: Store, filing_id: int, state: str, **values: object) -> None:
    async with store.transaction() as tx:
        await tx.conn.execute(
            update(FilingRequestRow)
            .where(FilingRequestRow.id == filing_id)
            .values(state=state, **values)
        )


async def test_a_failed_filing_asked_again_is_pending_again(store: Store) -> None:
    account, folder, uid = await citizen_message(store)
    first = await request_filing(store, account, folder, uid, "2")
    await set_state(store, first.id, "failed", reason="unsupported-type", attempts=1)
    failed = await get_filing(store, first.id)
    assert failed.status is FilingStatus.FAILED
    assert failed.text == "Ce type de fichier ne peut pas être classé dans vos documents."
    again = await request_filing(store, account, folder, uid, "2")
    assert (again.id, again.status, again.reason, again.attempts) == (
        first.id,
        FilingStatus.PENDING,
        None,
        0,
    )


async def test_a_filed_filing_is_kept_unless_asked_again_explicitly(store: Store) -> None:
    account, folder, uid = await citizen_message(store)
    first = await request_filing(store, account, folder, uid, "2")
    results = (
        '[{"part": "2", "status": "filed", "title": "t", "document_id": "d1", "reason": null}]'
    )
    await set_state(store, first.id, "filed", results=results)
    kept = await request_filing(store, account, folder, uid, "2")
    assert (kept.status, kept.document_ids) == (FilingStatus.FILED, ("d1",))
    asked = await request_filing(store, account, folder, uid, "2", again=True)
    assert asked.status is FilingStatus.PENDING


async def test_states_of_a_message_are_listed_by_part(store: Store) -> None:
    account, folder, uid = await citizen_message(
        store,
        attachments=[
            ("a.pdf", "application/pdf", b"%PDF-1.4\n%%EOF\n"),
            ("b.pdf", "application/pdf", b"%PDF-1.5\n%%EOF\n"),
        ],
    )
    assert await filings_for(store, account, folder, uid) == []
    await request_filing(store, account, folder, uid, "3")
    await request_filing(store, account, folder, uid, "2")
    assert [s.part for s in await filings_for(store, account, folder, uid)] == ["2", "3"]
    assert [s.ins for s in await list_filings(store, ins=CITIZEN.lower())] == [CITIZEN] * 2
