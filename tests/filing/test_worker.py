"""The worker against the reference document store over real HTTP: what is filed and with which
metadata, permanent refusals (failed, with the reason and the citizen's text), passing failures
(pending, retried), IHE_XDM packages (each document, refused packages, P7), and the citizen
asking again for a document they deleted."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from plitest.docstore import CITIZEN, actor_headers, docstore_config
from plitest.filing import (
    PDF,
    SENDER,
    FakeClock,
    citizen,
    citizen_message,
    deliver,
    docstore_on,
    filing_settings,
    free_port,
    xdm_message,
)
from plitest.xdm import XdmDoc, cda_document

from pli.mailbox.filing import FilingState, FilingStatus, FilingWorker, filings_for, request_filing
from pli.mailbox.store import Account, AccountKind, Store

DOCS = f"/v1/citizens/{CITIZEN}/documents"


@pytest.fixture
async def worker(store: Store, base_url: str) -> AsyncIterator[FilingWorker]:
    made = FilingWorker(store, filing_settings(base_url))
    yield made
    await made.client.close()


async def listed(documents: httpx.AsyncClient) -> list[dict[str, object]]:
    response = await documents.get(DOCS, params={"limit": 500})
    return list(response.json()["documents"])


async def file_part(
    store: Store, worker: FilingWorker, account: Account, folder: int, uid: int, part: str = "2"
) -> FilingState:
    await request_filing(store, account, folder, uid, part)
    await worker.run_due()
    states = {state.part: state for state in await filings_for(store, account, folder, uid)}
    return states[part]


async def test_an_attachment_is_filed_with_its_bytes_and_metadata(
    store: Store, worker: FilingWorker, documents: httpx.AsyncClient
) -> None:
    await store.accounts.create(
        SENDER, AccountKind.PER, display_name="Dr Claire Martin", rpps="10001234567"
    )
    account, folder, uid = await citizen_message(
        store, subject="Votre compte rendu", message_id="<cr-1@hopital-demo.mssante.fr>"
    )
    state = await file_part(store, worker, account, folder, uid)
    assert state.status is FilingStatus.FILED
    assert state.text == "Classé dans vos documents."
    assert state.reason is None and state.filed_at is not None
    [filed] = await listed(documents)
    assert state.document_ids == (filed["id"],)
    assert filed["title"] == "compte-rendu.pdf"
    assert filed["mime_type"] == "application/pdf"
    assert filed["source_message_id"] == "cr-1@hopital-demo.mssante.fr"
    assert filed["source_part"] == "2"
    assert filed["author_name"] == "Dr Claire Martin"
    assert filed["author_id"] == "10001234567"
    assert filed["filed_by"] == {"kind": "citizen-request", "id": CITIZEN}
    assert filed["sha256"] == hashlib.sha256(PDF).hexdigest()
    assert str(filed["idempotency_key"]).startswith("pli:cr-1@hopital-demo.mssante.fr#2@")
    content = await documents.get(f"{DOCS}/{filed['id']}/content")
    assert content.content == PDF  # base64 in the message, decoded before filing


async def test_a_quoted_printable_text_attachment_is_decoded(
    store: Store, worker: FilingWorker, documents: httpx.AsyncClient
) -> None:
    text = "Résultats : glycémie normale.\nÀ bientôt.\n" * 3
    account, folder, uid = await citizen_message(
        store, attachments=[("resultats.txt", "text/plain", text.encode("latin-1"))]
    )
    state = await file_part(store, worker, account, folder, uid)
    assert state.status is FilingStatus.FILED, state
    [filed] = await listed(documents)
    content = await documents.get(f"{DOCS}/{filed['id']}/content")
    assert content.content == text.encode("latin-1")


async def test_a_refused_document_fails_with_the_store_reason_and_a_french_text(
    store: Store, worker: FilingWorker, documents: httpx.AsyncClient
) -> None:
    account, folder, uid = await citizen_message(
        store, attachments=[("photos.zip", "application/zip", b"PK\x03\x04" + b"\x00" * 60)]
    )
    state = await file_part(store, worker, account, folder, uid)
    assert state.status is FilingStatus.FAILED
    assert state.reason == "archive-refused"
    assert state.text.startswith("Les archives")
    assert state.detail  # the store's sentence, for operators
    assert state.attempts == 1  # a permanent refusal is not retried
    assert await listed(documents) == []


async def test_a_declared_type_the_content_contradicts_is_refused(
    store: Store, worker: FilingWorker
) -> None:
    account, folder, uid = await citizen_message(
        store, attachments=[("image.jpg", "image/jpeg", PDF)]
    )
    state = await file_part(store, worker, account, folder, uid)
    assert (state.status, state.reason) == (FilingStatus.FAILED, "content-type-mismatch")


async def test_every_document_of_an_xdm_package_is_filed_with_its_metadata(
    store: Store, worker: FilingWorker, documents: httpx.AsyncClient
) -> None:
    raw = xdm_message(
        docs=[
            XdmDoc(cda_document(CITIZEN)),
            XdmDoc(
                PDF,
                name="CR-BIO.PDF",
                mime_type="application/pdf",
                title="Compte rendu de biologie",
                type_code="11502-2",
                entry_id="Document02",
                confidentiality=(("MASQUE_PS", "1.2.250.1.213.1.1.4.13"),),
            ),
        ],
        headers={"X-MSS-CODECDA": "11490-0"},
    )
    state = await file_package(store, worker, raw)
    assert state.kind == "ihe-xdm"
    assert state.status is FilingStatus.FILED
    assert state.text == "2 documents ont été classés dans vos documents."
    by_part = {str(d["source_part"]): d for d in await listed(documents)}
    assert set(by_part) == {"2/IHE_XDM/SUBSET01/DOC0001.XML", "2/IHE_XDM/SUBSET01/CR-BIO.PDF"}
    letter = by_part["2/IHE_XDM/SUBSET01/DOC0001.XML"]
    lab = by_part["2/IHE_XDM/SUBSET01/CR-BIO.PDF"]
    assert (letter["category"], letter["mime_type"]) == ("lettre-liaison", "text/xml")
    assert letter["title"] == "Lettre de liaison à la sortie"
    assert letter["author_name"] == "Dr Jeanne MARTIN" and letter["author_id"] == "810001234567"
    assert letter["document_date"] == "2025-03-01T08:30:00Z"
    assert (lab["category"], lab["confidentiality"]) == ("biologie", "hidden")
    assert sorted(state.document_ids) == sorted(str(d["id"]) for d in by_part.values())


async def test_a_corrupt_package_fails_with_the_reader_reason_and_files_nothing(
    store: Store, worker: FilingWorker, documents: httpx.AsyncClient
) -> None:
    raw = xdm_message(docs=[XdmDoc(cda_document(CITIZEN), sha1="0" * 40)])
    state = await file_package(store, worker, raw)
    assert (state.status, state.reason) == (FilingStatus.FAILED, "xdm-hash-mismatch")
    assert "IHE_XDM" in state.text
    assert "SHA-1" in state.detail
    assert await listed(documents) == []


async def test_a_package_for_another_patient_is_refused(
    store: Store, worker: FilingWorker, documents: httpx.AsyncClient
) -> None:
    raw = xdm_message(package=xdm_message_package("277117512345626"))
    state = await file_package(store, worker, raw)
    assert (state.status, state.reason) == (FilingStatus.FAILED, "xdm-wrong-patient")
    assert await listed(documents) == []


async def file_package(store: Store, worker: FilingWorker, raw: bytes) -> FilingState:
    """Deliver ``raw`` (a message with an IHE_XDM.zip as part 2) to the citizen, file it."""
    account = await citizen(store)
    folder, uid = await deliver(store, account, raw)
    return await file_part(store, worker, account, folder, uid)


def xdm_message_package(ins: str) -> bytes:
    from plitest.xdm import build_xdm

    return build_xdm([XdmDoc(cda_document(ins))], patient_ins=ins)


async def test_documents_invisible_to_the_patient_are_never_filed(
    store: Store, worker: FilingWorker, documents: httpx.AsyncClient
) -> None:
    hidden = ("INVISIBLE_PATIENT", "1.2.250.1.213.1.1.4.13")
    raw = xdm_message(
        docs=[
            XdmDoc(cda_document(CITIZEN)),
            XdmDoc(
                PDF,
                name="SECRET.PDF",
                mime_type="application/pdf",
                entry_id="Document02",
                confidentiality=(hidden,),
            ),
        ]
    )
    state = await file_package(store, worker, raw)
    assert state.status is FilingStatus.FILED
    assert [d["source_part"] for d in await listed(documents)] == ["2/IHE_XDM/SUBSET01/DOC0001.XML"]
    skipped = [d for d in state.documents if d.status == "skipped"]
    assert [(d.source_part, d.reason, d.title) for d in skipped] == [
        ("2/IHE_XDM/SUBSET01/SECRET.PDF", "invisible-to-patient", "")
    ]


async def test_a_package_holding_only_invisible_documents_fails_with_nothing_to_file(
    store: Store, worker: FilingWorker, documents: httpx.AsyncClient
) -> None:
    hidden = ("INVISIBLE_REPRESENTANTS_LEGAUX", "1.2.250.1.213.1.1.4.13")
    raw = xdm_message(docs=[XdmDoc(cda_document(CITIZEN), confidentiality=(hidden,))])
    state = await file_package(store, worker, raw)
    assert (state.status, state.reason) == (FilingStatus.FAILED, "xdm-nothing-to-file")
    assert await listed(documents) == []


async def test_one_refused_document_of_a_package_does_not_stop_the_others(
    store: Store, worker: FilingWorker, documents: httpx.AsyncClient
) -> None:
    raw = xdm_message(
        docs=[
            XdmDoc(cda_document(CITIZEN)),
            XdmDoc(PDF, name="DOC0002.XML", mime_type="text/xml", entry_id="Document02"),
        ]
    )
    state = await file_package(store, worker, raw)
    assert (state.status, state.reason) == (FilingStatus.FAILED, "content-type-mismatch")
    assert "1 autre(s) document(s)" in state.text
    assert len(state.document_ids) == 1
    assert [d["id"] for d in await listed(documents)] == list(state.document_ids)


async def test_a_store_down_at_first_delays_the_filing_and_files_it_once_up(
    store: Store, tmp_path: Path
) -> None:
    port = free_port()
    clock = FakeClock()
    worker = FilingWorker(store, filing_settings(f"http://127.0.0.1:{port}"), clock=clock)
    try:
        account, folder, uid = await citizen_message(store)
        await request_filing(store, account, folder, uid, "2", now=clock())
        await worker.run_due()
        [state] = await filings_for(store, account, folder, uid)
        assert state.status is FilingStatus.PENDING
        assert state.last_error == "transport: ConnectError"
        assert state.text.startswith("En attente")
        assert state.next_attempt_at == clock() + timedelta(seconds=0.05)
        assert await worker.run_due() == 0  # not due yet
        async with docstore_config(tmp_path) as config, docstore_on(config, port) as url:
            clock.advance(1)
            assert await worker.run_due() == 1
            [state] = await filings_for(store, account, folder, uid)
            assert state.status is FilingStatus.FILED
            assert state.attempts == 2
            async with httpx.AsyncClient(base_url=url, headers=actor_headers()) as check:
                check.headers["Authorization"] = f"Bearer {config.token}"
                assert len((await check.get(DOCS)).json()["documents"]) == 1
    finally:
        await worker.client.close()


async def test_x_mss_headers_that_disagree_with_the_package_are_noted_not_fatal(
    store: Store, worker: FilingWorker
) -> None:
    raw = xdm_message(headers={"X-MSS-CODECDA": "11502-2", "X-MSS-INS": "N"})
    state = await file_package(store, worker, raw)
    assert state.status is FilingStatus.FILED
    assert state.detail == (
        "X-MSS headers disagree with the package: X-MSS-CODECDA codecda-not-in-package, "
        "X-MSS-CODECDA codecda-missing, X-MSS-INS ins-header-says-unqualified"
    )
