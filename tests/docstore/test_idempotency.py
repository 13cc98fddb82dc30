"""Filing is idempotent: one key files one document, whatever the retries, the concurrency and
the order; other content under a used key is a conflict; a deleted document's key is gone."""

from __future__ import annotations

import asyncio
import hashlib

import httpx
from plitest.docstore import CITIZEN, OTHER_CITIZEN, PDF_BYTES, actor_headers, file_document

from pli.docstore.store import DocumentStore

DOCS = f"/v1/citizens/{CITIZEN}/documents"


async def test_the_same_key_filed_twice_returns_the_first_document(
    client: httpx.AsyncClient, store: DocumentStore
) -> None:
    first = await file_document(client, key="msg-1/part-2")
    again = await file_document(client, key="msg-1/part-2", title="another title")
    assert first.status_code == 201
    assert again.status_code == 200
    assert again.json() == first.json()  # the first filing's description, not the retry's
    assert again.headers["location"] == first.headers["location"]
    assert await store.count_documents(CITIZEN) == 1


async def test_the_same_key_with_other_content_is_a_conflict(
    client: httpx.AsyncClient, store: DocumentStore
) -> None:
    first = (await file_document(client, key="k")).json()
    response = await file_document(client, key="k", content=PDF_BYTES.replace(b"1.4", b"1.7"))
    assert response.status_code == 409
    body = response.json()
    assert body["reason"] == "idempotency-key-reused"
    assert first["id"] in body["detail"]
    assert await store.count_documents(CITIZEN) == 1
    assert list(store.blobs.tmp.iterdir()) == []


async def test_a_key_is_per_citizen(client: httpx.AsyncClient) -> None:
    mine = await file_document(client, key="shared")
    theirs = await file_document(client, key="shared", ins=OTHER_CITIZEN)
    assert mine.status_code == theirs.status_code == 201
    assert mine.json()["id"] != theirs.json()["id"]


async def test_without_a_key_the_source_names_the_filing(client: httpx.AsyncClient) -> None:
    source = {"source_message_id": "<m1@ch.mssante.fr>", "source_part": "IHE_XDM/SUBSET01/D1"}
    first = await file_document(client, key=None, **source)
    again = await file_document(client, key=None, **source)
    other_part = await file_document(
        client, key=None, content=PDF_BYTES + b" ", **{**source, "source_part": "3"}
    )
    assert (first.status_code, again.status_code, other_part.status_code) == (201, 200, 201)
    assert first.json()["id"] == again.json()["id"] != other_part.json()["id"]
    assert first.json()["idempotency_key"] == "source:<m1@ch.mssante.fr>#IHE_XDM/SUBSET01/D1"
    neither = await file_document(client, key=None)
    assert neither.status_code == 400
    assert neither.json()["reason"] == "idempotency-key-required"


async def test_a_deleted_documents_key_is_gone_never_filed_again(
    client: httpx.AsyncClient, store: DocumentStore
) -> None:
    document = (await file_document(client, key="late-retry")).json()
    await client.delete(f"{DOCS}/{document['id']}", headers=actor_headers())
    retry = await file_document(client, key="late-retry")
    assert retry.status_code == 410
    assert retry.json()["reason"] == "document-deleted"
    assert await store.count_documents(CITIZEN) == 0
    fresh = await file_document(client, key="new-request")
    assert fresh.status_code == 201


async def test_concurrent_filings_of_one_key_make_one_document(
    client: httpx.AsyncClient, store: DocumentStore
) -> None:
    responses = await asyncio.gather(*(file_document(client, key="race") for _ in range(8)))
    statuses = sorted(response.status_code for response in responses)
    assert statuses == [200] * 7 + [201]
    assert len({response.json()["id"] for response in responses}) == 1
    assert await store.count_documents(CITIZEN) == 1
    assert list(store.blobs.tmp.iterdir()) == []
    placed = [path for shard in store.blobs.files.iterdir() for path in shard.iterdir()]
    assert len(placed) == 1


async def test_a_content_hash_given_by_the_client_is_checked(
    client: httpx.AsyncClient, store: DocumentStore
) -> None:
    good = hashlib.sha256(PDF_BYTES).hexdigest()
    accepted = await file_document(client, key="a", sha256=good.upper())
    assert accepted.status_code == 201
    refused = await file_document(client, key="b", sha256="0" * 64)
    assert refused.status_code == 422
    assert refused.json()["reason"] == "content-hash-mismatch"
    assert await store.count_documents(CITIZEN) == 1
