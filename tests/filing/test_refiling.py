"""A document deleted from the store: a citizen who asks again gets it filed anew (a new key
generation, the store answers 410 for the old key); an automatic filing never brings it back.
A message deleted before its filing fails with a reason, never an exception."""

from __future__ import annotations

import httpx
from plitest.docstore import CITIZEN, actor_headers
from plitest.filing import FakeClock, citizen_message, filing_settings
from sqlalchemy import update

from pli.mailbox.filing import FilingStatus, FilingWorker, filings_for, request_filing
from pli.mailbox.filing.models import FilingRequestRow
from pli.mailbox.store import Store

DOCS = f"/v1/citizens/{CITIZEN}/documents"


async def test_a_citizen_who_asks_again_for_a_deleted_document_gets_it_filed_anew(
    store: Store, base_url: str, documents: httpx.AsyncClient
) -> None:
    worker = FilingWorker(store, filing_settings(base_url))
    try:
        account, folder, uid = await citizen_message(store)
        await request_filing(store, account, folder, uid, "2")
        await worker.run_due()
        [first] = await filings_for(store, account, folder, uid)
        deleted = await documents.delete(f"{DOCS}/{first.document_ids[0]}", headers=actor_headers())
        assert deleted.status_code == 204
        for round_ in (1, 2):
            again = await request_filing(store, account, folder, uid, "2", again=True)
            assert again.status is FilingStatus.PENDING
            await worker.run_due()
            [state] = await filings_for(store, account, folder, uid)
            assert state.status is FilingStatus.FILED
            assert state.document_ids != first.document_ids
            listed = (await documents.get(DOCS)).json()["documents"]
            assert [d["id"] for d in listed] == list(state.document_ids)
            assert listed[0]["idempotency_key"].endswith(f"~{round_}")
            if round_ == 1:  # asked again while filed: the same document, nothing new
                await request_filing(store, account, folder, uid, "2", again=True)
                await worker.run_due()
                [same] = await filings_for(store, account, folder, uid)
                assert same.document_ids == state.document_ids
                removed = await documents.delete(
                    f"{DOCS}/{state.document_ids[0]}", headers=actor_headers()
                )
                assert removed.status_code == 204
    finally:
        await worker.client.close()


async def test_an_automatic_filing_never_brings_back_a_deleted_document(
    store: Store, base_url: str, documents: httpx.AsyncClient
) -> None:
    worker = FilingWorker(store, filing_settings(base_url))
    try:
        account, folder, uid = await citizen_message(store)
        state = await request_filing(store, account, folder, uid, "2")
        async with store.transaction() as tx:  # as if a rule had asked
            await tx.conn.execute(
                update(FilingRequestRow)
                .where(FilingRequestRow.id == state.id)
                .values(actor_kind="automatic-rule", actor_id="pdf-rule")
            )
        await worker.run_due()
        [filed] = await filings_for(store, account, folder, uid)
        operator = actor_headers("operator", "ops")
        assert (
            await documents.delete(f"{DOCS}/{filed.document_ids[0]}", headers=operator)
        ).status_code == 204
        async with store.transaction() as tx:  # the outcome was lost: the worker tries again
            await tx.conn.execute(
                update(FilingRequestRow)
                .where(FilingRequestRow.id == state.id)
                .values(state="pending")
            )
        await worker.run_due()
    finally:
        await worker.client.close()
    [state] = await filings_for(store, account, folder, uid)
    assert (state.status, state.reason) == (FilingStatus.FAILED, "document-deleted")
    assert state.text.startswith("Ce document avait été supprimé")
    assert (await documents.get(DOCS)).json()["documents"] == []


async def test_a_message_file_gone_before_its_filing_fails_with_a_reason(
    store: Store, base_url: str
) -> None:
    clock = FakeClock()
    worker = FilingWorker(store, filing_settings(base_url), clock=clock)
    try:
        account, folder, uid = await citizen_message(store)
        await request_filing(store, account, folder, uid, "2", now=clock())
        meta = await store.messages.get(folder, uid)
        await store.blobs.delete(meta.blob_id)  # the sweep removed it after an expunge
        await worker.run_due()
    finally:
        await worker.client.close()
    [state] = await filings_for(store, account, folder, uid)
    assert (state.status, state.reason) == (FilingStatus.FAILED, "source-gone")
    assert state.text == "Le message a été supprimé avant que la pièce jointe soit classée."
