"""The document store's HTTP API over real HTTP (uvicorn on 127.0.0.1, httpx): filing, reading,
listing, confidentiality, deletion rights, authentication and refusals."""

from __future__ import annotations

import asyncio
import hashlib
import json

import httpx
import pytest
from plitest.docstore import (
    CITIZEN,
    OTHER_CITIZEN,
    PDF_BYTES,
    TEST_TOKEN,
    actor_headers,
    docstore_client,
    file_document,
)

from pli.docstore.body_limit import DRAIN_LIMIT
from pli.docstore.limits import (
    MAX_CODE_LENGTH,
    MAX_IDEMPOTENCY_KEY_LENGTH,
    MAX_MESSAGE_ID_LENGTH,
    MAX_NAME_LENGTH,
)

DOCS = f"/v1/citizens/{CITIZEN}/documents"


async def test_a_filed_document_is_described_listed_and_read_back(
    client: httpx.AsyncClient,
) -> None:
    response = await file_document(
        client,
        title="Compte rendu de biologie",
        type_code="11502-2",
        type_code_scheme="2.16.840.1.113883.6.1",
        author_name="Dr Jeanne Martin",
        author_id="810001234567",
        document_date="2025-03-01T10:30:00+01:00",
        source_message_id="<abc@ch-exemple.mssante.fr>",
        source_part="2",
    )
    assert response.status_code == 201, response.text
    document = response.json()
    assert response.headers["location"] == f"{DOCS}/{document['id']}"
    assert document["category"] == "biologie"  # from the LOINC type code
    assert document["category_label"] == "Résultats de biologie"
    assert document["title"] == "Compte rendu de biologie"
    assert document["document_date"] == "2025-03-01T09:30:00Z"
    assert document["mime_type"] == "application/pdf"
    assert document["size"] == len(PDF_BYTES)
    assert document["sha256"] == hashlib.sha256(PDF_BYTES).hexdigest()
    assert document["confidentiality"] == "visible"
    assert document["filed_by"] == {"kind": "citizen", "id": CITIZEN}
    assert document["source_message_id"] == "<abc@ch-exemple.mssante.fr>"

    described = (await client.get(f"{DOCS}/{document['id']}")).json()
    assert described["history"][0]["action"] == "filed"
    assert {**described, "history": None} == document

    listing = (await client.get(DOCS)).json()
    assert [d["id"] for d in listing["documents"]] == [document["id"]]
    assert listing["next_cursor"] is None

    content = await client.get(f"{DOCS}/{document['id']}/content")
    assert content.status_code == 200
    assert content.content == PDF_BYTES
    assert content.headers["content-type"] == "application/pdf"
    assert content.headers["x-content-type-options"] == "nosniff"
    assert content.headers["etag"] == f'"{document["sha256"]}"'


async def test_documents_of_one_citizen_are_not_visible_under_another(
    client: httpx.AsyncClient,
) -> None:
    filed = (await file_document(client)).json()
    other = f"/v1/citizens/{OTHER_CITIZEN}/documents"
    assert (await client.get(other)).json()["documents"] == []
    response = await client.get(f"{other}/{filed['id']}")
    assert response.status_code == 404
    assert response.json()["reason"] == "document-not-found"
    assert (await client.get(f"{other}/{filed['id']}/content")).status_code == 404


async def test_listing_pages_newest_first_with_a_cursor_and_filters(
    client: httpx.AsyncClient,
) -> None:
    ids_by_day = {}
    for day in range(1, 8):
        response = await file_document(
            client,
            key=f"k{day}",
            content=PDF_BYTES + bytes([day]) * day,
            document_date=f"2025-01-0{day}T12:00:00Z",
            type_code="18748-4" if day % 2 else "11490-0",
            confidentiality="hidden" if day == 7 else "visible",
        )
        assert response.status_code == 201, response.text
        ids_by_day[day] = response.json()["id"]
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params = {"cursor": cursor} if cursor else {}
        page = (await client.get(DOCS, params=params)).json()
        pages += 1
        assert len(page["documents"]) <= 3  # docstore.page_size of the fixture
        seen += [d["id"] for d in page["documents"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    assert seen == [ids_by_day[day] for day in range(7, 0, -1)]

    imaging = (await client.get(DOCS, params={"category": "imagerie", "limit": 50})).json()
    assert [d["id"] for d in imaging["documents"]] == [ids_by_day[d] for d in (7, 5, 3, 1)]
    for_professionals = (
        await client.get(DOCS, params={"include_hidden": "false", "limit": 50})
    ).json()
    assert ids_by_day[7] not in [d["id"] for d in for_professionals["documents"]]
    assert len(for_professionals["documents"]) == 6


async def test_a_forged_cursor_or_bad_listing_parameters_are_refused(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get(DOCS, params={"cursor": "bm90LWEtY3Vyc29y"})
    assert response.status_code == 400
    assert response.json()["reason"] == "invalid-cursor"
    for params in ({"limit": "0"}, {"limit": "501"}, {"category": "nope"}):
        response = await client.get(DOCS, params=params)
        assert response.status_code == 422, params
        assert response.json()["reason"] == "invalid-request"


async def test_hide_and_show_again_records_who_did_it_and_is_idempotent(
    client: httpx.AsyncClient,
) -> None:
    document = (await file_document(client)).json()
    url = f"{DOCS}/{document['id']}/confidentiality"
    guardian = actor_headers("guardian", "guardian-account-7")
    for _ in range(2):  # the second time changes nothing and records nothing
        response = await client.put(url, headers=guardian, json={"confidentiality": "hidden"})
        assert response.status_code == 200, response.text
        assert response.json()["confidentiality"] == "hidden"
    shown = await client.put(url, headers=actor_headers(), json={"confidentiality": "visible"})
    history = [(e["action"], e["actor"]["kind"]) for e in shown.json()["history"]]
    assert history == [("filed", "citizen"), ("hidden", "guardian"), ("unhidden", "citizen")]
    bad = await client.put(url, headers=actor_headers(), json={"confidentiality": "secret"})
    assert bad.status_code == 422
    no_actor = await client.put(url, json={"confidentiality": "hidden"})
    assert no_actor.status_code == 422
    assert "Pli-Actor" in no_actor.json()["detail"]


async def test_a_citizen_deletes_what_they_filed_but_only_hides_what_a_rule_filed(
    client: httpx.AsyncClient,
) -> None:
    own = (await file_document(client, key="own", actor="citizen-request")).json()
    by_rule = (
        await file_document(
            client, key="rule", content=PDF_BYTES + b" ", actor="automatic-rule", actor_id="xdm"
        )
    ).json()
    refused = await client.delete(f"{DOCS}/{by_rule['id']}", headers=actor_headers())
    assert refused.status_code == 403
    assert refused.json()["reason"] == "not-filed-by-citizen"
    refused = await client.delete(
        f"{DOCS}/{by_rule['id']}", headers=actor_headers("guardian", "parent-1")
    )
    assert refused.status_code == 403
    refused = await client.delete(
        f"{DOCS}/{own['id']}", headers=actor_headers("automatic-rule", "xdm")
    )
    assert refused.status_code == 403
    hidden = await client.put(
        f"{DOCS}/{by_rule['id']}/confidentiality",
        headers=actor_headers(),
        json={"confidentiality": "hidden"},
    )
    assert hidden.status_code == 200

    for _ in range(2):  # a retried deletion succeeds again
        deleted = await client.delete(f"{DOCS}/{own['id']}", headers=actor_headers())
        assert deleted.status_code == 204
    gone = await client.get(f"{DOCS}/{own['id']}")
    assert gone.status_code == 410
    assert gone.json()["reason"] == "document-deleted"
    assert (await client.get(f"{DOCS}/{own['id']}/content")).status_code == 410
    listed = [d["id"] for d in (await client.get(DOCS)).json()["documents"]]
    assert listed == [by_rule["id"]]
    operator = await client.delete(
        f"{DOCS}/{by_rule['id']}", headers=actor_headers("operator", "admin")
    )
    assert operator.status_code == 204


async def test_deleting_removes_the_bytes_and_the_description(
    client: httpx.AsyncClient, store: object
) -> None:
    document = (await file_document(client, title="Secret title")).json()
    from pli.docstore.store import DocumentStore

    assert isinstance(store, DocumentStore)
    path = store.blobs.path_of(document["id"])
    assert path.read_bytes() == PDF_BYTES
    await client.delete(f"{DOCS}/{document['id']}", headers=actor_headers())
    assert not path.exists()
    from sqlalchemy import select

    from pli.docstore.tables import documents

    async with store.engine.connect() as connection:
        row = (
            await connection.execute(select(documents).where(documents.c.id == document["id"]))
        ).one()
    assert row.state == "deleted"
    assert row.title == ""
    assert row.source_message_id is None
    assert row.idempotency_key == ""


async def test_requests_without_the_right_bearer_token_are_refused(base_url: str) -> None:
    async with httpx.AsyncClient(base_url=base_url) as anonymous:
        response = await anonymous.get(DOCS)
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == 'Bearer realm="pli-docstore"'
        assert response.json()["reason"] == "unauthenticated"
        health = await anonymous.get("/health")
        assert health.status_code == 200
        assert health.json() == {"status": "ok"}
    for token in ("wrong", "test-docstore-token-", "x" * 4000, "Bearer"):
        async with docstore_client(base_url, token=token) as intruder:
            response = await intruder.get(DOCS)
            assert response.status_code == 401, token
            assert 'error="invalid_token"' in response.headers["www-authenticate"]
            filing = await file_document(intruder)
            assert filing.status_code == 401
    for header in (b"Basic dXNlcjpwYXNz", b"Bearer \xe9\xff", b"Bearer"):
        async with httpx.AsyncClient(base_url=base_url, headers={"Authorization": header}) as odd:
            assert (await odd.get(DOCS)).status_code == 401, header


async def test_malformed_identifiers_and_fields_are_refused_with_a_reason(
    client: httpx.AsyncClient,
) -> None:
    for ins in ("14602632200019", "14602632200019X", "046026322000196", "abc"):
        response = await client.get(f"/v1/citizens/{ins}/documents")
        assert response.status_code == 422, ins
    response = await client.get(f"{DOCS}/not-a-uuid")
    assert response.status_code == 422
    cases = [
        ({"title": ""}, "title"),
        ({"title": "x" * 1025}, "title"),
        ({"title": "line\nbreak"}, "control characters"),
        ({"confidentialty": "hidden"}, "confidentialty"),  # a misspelt field is not ignored
        ({"document_date": "yesterday"}, "document_date"),
        ({"category": "horoscope"}, "category"),
        ({"sha256": "abc"}, "sha256"),
    ]
    for fields, expected in cases:
        response = await file_document(client, **fields)
        assert response.status_code == 422, fields
        body = response.json()
        assert body["reason"] == "invalid-request"
        assert expected in body["detail"], body
    bad_actor = await client.post(
        DOCS,
        headers=actor_headers("professional", "x", **{"Idempotency-Key": "k"}),
        data={"title": "t"},
        files={"content": ("d", PDF_BYTES, "application/pdf")},
    )
    assert bad_actor.status_code == 422
    no_file = await client.post(
        DOCS, headers=actor_headers(**{"Idempotency-Key": "k"}), data={"title": "t"}
    )
    assert no_file.status_code == 422
    assert (await client.get(DOCS)).json()["documents"] == []


async def test_a_body_over_the_limit_is_refused_before_it_is_stored(
    client: httpx.AsyncClient, store: object
) -> None:
    from pli.docstore.store import DocumentStore

    assert isinstance(store, DocumentStore)
    limit = store.config.max_document_size
    just_right = PDF_BYTES[:-6] + b" " * (limit - len(PDF_BYTES)) + b"%%EOF\n"
    assert len(just_right) == limit
    accepted = await file_document(client, key="max", content=just_right)
    assert accepted.status_code == 201, accepted.text
    over = await file_document(client, key="over", content=just_right + b"\n")
    assert over.status_code == 413
    assert over.json()["reason"] == "document-too-large"
    huge = await file_document(client, key="huge", content=b"%PDF-" + b"0" * (4 * limit))
    assert huge.status_code == 413
    assert huge.json()["reason"] == "request-too-large"
    big_json = await client.put(
        f"{DOCS}/{accepted.json()['id']}/confidentiality",
        headers=actor_headers(),
        content=b'{"confidentiality": "hidden", "pad": "' + b"x" * 100_000 + b'"}',
    )
    assert big_json.status_code == 413
    assert list(store.blobs.tmp.iterdir()) == []  # nothing left behind
    assert len((await client.get(DOCS)).json()["documents"]) == 1


@pytest.mark.parametrize(
    ("data", "files", "expected"),
    [
        ({**{f"f{i}": "x" for i in range(40)}, "title": "t"}, None, "Too many fields"),
        ({"title": "t"}, [("content", ("a", PDF_BYTES, "application/pdf"))] * 2, "Too many files"),
        ({"title": "t" * 20_000}, None, "Part exceeded maximum size"),
    ],
)
async def test_form_parsing_is_bounded(
    client: httpx.AsyncClient,
    data: dict[str, str],
    files: list[tuple[str, tuple[str, bytes, str]]] | None,
    expected: str,
) -> None:
    response = await client.post(
        DOCS,
        headers=actor_headers(**{"Idempotency-Key": "k"}),
        data=data,
        files=files or {"content": ("d", PDF_BYTES, "application/pdf")},
    )
    assert response.status_code == 400
    assert response.json()["reason"] == "bad-request"
    assert expected in response.json()["detail"]
    assert (await client.get(DOCS)).json()["documents"] == []


@pytest.mark.parametrize(
    ("headers", "fields"),
    [
        ({"Idempotency-Key": "k" * (MAX_IDEMPOTENCY_KEY_LENGTH + 1)}, {}),
        ({"Pli-Actor-Id": "a" * (MAX_NAME_LENGTH + 1)}, {}),
        ({}, {"source_message_id": "<" + "m" * MAX_MESSAGE_ID_LENGTH + ">"}),
        ({}, {"author_name": "n" * (MAX_NAME_LENGTH + 1)}),
        ({}, {"type_code": "1" * (MAX_CODE_LENGTH + 1)}),
    ],
)
async def test_identifiers_longer_than_their_limits_are_refused(
    client: httpx.AsyncClient, headers: dict[str, str], fields: dict[str, str]
) -> None:
    response = await client.post(
        DOCS,
        headers={**actor_headers(**{"Idempotency-Key": "k"}), **headers},
        data={"title": "t", **fields},
        files={"content": ("d", PDF_BYTES, "application/pdf")},
    )
    assert response.status_code == 422, response.text
    assert response.json()["reason"] == "invalid-request"


async def test_a_body_declared_beyond_the_drain_limit_is_answered_without_reading_it(
    base_url: str,
) -> None:
    host, port = base_url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(
        (
            f"POST {DOCS} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {TEST_TOKEN}\r\n"
            f"Content-Type: multipart/form-data; boundary=b\r\n"
            f"Content-Length: {DRAIN_LIMIT + 1}\r\n\r\n--b\r\n"
        ).encode()
    )
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(), timeout=30)  # the store closes: EOF
    writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413 ")
    assert json.loads(body)["reason"] == "request-too-large"


async def test_unknown_paths_and_methods_answer_a_problem(client: httpx.AsyncClient) -> None:
    response = await client.get("/v2/anything")
    assert response.status_code == 404
    assert response.json()["reason"] == "not-found"
    response = await client.patch(DOCS)
    assert response.status_code == 405
    assert response.json()["reason"] == "method-not-allowed"


async def test_a_corsican_ins_is_one_citizen_whatever_the_case_of_its_letters(
    client: httpx.AsyncClient,
) -> None:
    corsican = "185022A12345678"  # department 2A
    filed = await file_document(client, ins=corsican.lower())
    assert filed.status_code == 201, filed.text
    assert filed.json()["citizen_ins"] == corsican
    listed = (await client.get(f"/v1/citizens/{corsican}/documents")).json()["documents"]
    assert [d["id"] for d in listed] == [filed.json()["id"]]


async def test_a_database_failure_answers_503_and_a_bug_500_without_details(
    client: httpx.AsyncClient, store: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlalchemy.exc import OperationalError

    from pli.docstore.store import DocumentStore

    assert isinstance(store, DocumentStore)

    async def locked(*_args: object, **_kwargs: object) -> None:
        raise OperationalError("BEGIN IMMEDIATE", {}, Exception("database is locked"))

    monkeypatch.setattr(store, "list_documents", locked)
    response = await client.get(DOCS)
    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"
    assert response.json()["reason"] == "store-unavailable"
    assert "locked" not in response.text

    async def broken(*_args: object, **_kwargs: object) -> None:
        raise ZeroDivisionError("secret internal detail")

    monkeypatch.setattr(store, "list_documents", broken)
    response = await client.get(DOCS)
    assert response.status_code == 500
    assert response.json() == {
        "reason": "internal-error",
        "detail": "the store failed to answer this request",
    }
