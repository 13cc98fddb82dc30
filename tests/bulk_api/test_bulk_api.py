"""The bulk HTTP API over a real socket (httpx → uvicorn on 127.0.0.1): submit (multipart and
JSON), idempotence, dry run, status, report, cancel; bearer tokens; bad uploads refused with a
clear 4xx and nothing left behind."""

from __future__ import annotations

import base64
import csv
import io
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from plitest.bulk import SENDER, Patient, add_citizens, csv_lines, inbox_message_ids
from plitest.bulk_api import (
    MAX_REQUEST,
    OTHER_MAILBOX,
    OTHER_TOKEN,
    TOKEN,
    Served,
    serve_admin,
    with_clients,
)

from pli.mailbox.store.records import ProfileStatus
from pli.mailgateway.bulk.ledger import Ledger

PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << >>\n%%EOF\n"


def definition(
    campaign_id: str = "convocations-api", mailbox: str = SENDER, extra: str = ""
) -> bytes:
    identifier = f'id = "{campaign_id}"\n' if campaign_id else ""
    return (
        f'{identifier}kind = "convocation"\nmailbox = "{mailbox}"\nrecipients = "patients.csv"\n'
        'subject = "Votre convocation du {{ date_rdv }}"\n'
        'body = "Bonjour {{ prenom }} {{ nom }},\\nvous êtes attendu(e) le {{ date_rdv }}.\\n"\n'
        f'attachments = ["livret.pdf"]\n{extra}'
    ).encode()


def multipart(
    recipients: str, *, toml: bytes | None = None, pdf: bytes = PDF
) -> list[tuple[str, tuple[str, bytes, str]]]:
    return [
        ("definition", ("campaign.toml", toml or definition(), "application/toml")),
        ("files", ("patients.csv", recipients.encode(), "text/csv")),
        ("files", ("livret.pdf", pdf, "application/pdf")),
    ]


def error_of(response: httpx.Response) -> str:
    return str(response.json()["detail"]["error"])


def nothing_staged(served: Served) -> bool:
    return not served.incoming.exists() or not any(served.incoming.iterdir())


@pytest.fixture
async def api(served: Served) -> AsyncIterator[httpx.AsyncClient]:
    async with served.client() as client:
        yield client


# -- submitting and following a campaign ---------------------------------------------------------


async def test_a_multipart_campaign_is_registered_sent_and_reported(
    served: Served, api: httpx.AsyncClient
) -> None:
    patients = await add_citizens(served.stack.store, 5)
    closed = (await add_citizens(served.stack.store, 1, status=ProfileStatus.CLOSED, start=40))[0]

    response = await api.post("/bulk/campaigns", files=multipart(csv_lines([*patients, closed])))

    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["id"], body["created"], body["state"], body["rows_total"]) == (
        "convocations-api",
        True,
        "ready",
        6,
    )
    assert body["origin"] == "api:si-hopital" and body["structure_id"] == "750100001"
    assert response.headers["location"] == "/bulk/campaigns/convocations-api"
    assert served.bulk.wake.is_set()  # the runner of pli serve is woken at once
    assert nothing_staged(served)

    results = await served.bulk.run_once()
    assert [(r.submitted, r.refused, r.finished) for r in results] == [(5, 1, True)]

    status = (await api.get("/bulk/campaigns/convocations-api")).json()
    assert (status["state"], status["total"], status["remaining"]) == ("finished", 6, 0)
    assert status["by_state"] == {"submitted": 5, "refused": 1}
    assert status["by_delivery"] == {"delivered": 5}

    report = (await api.get("/bulk/campaigns/convocations-api/report")).json()
    assert report["counts"] == {"delivered": 5, "refused": 1}
    by_recipient = {row["recipient"]: row for row in report["rows"]}
    refused = by_recipient[closed.address]
    assert (refused["status"], refused["reason"]) == ("refused", "profile-closed")
    for patient in patients:
        row = by_recipient[patient.address]
        assert row["status"] == "delivered"
        inbox = await inbox_message_ids(served.stack.store, patient.address)
        assert inbox == [f"<{row['message_id']}>"]

    as_csv = await api.get("/bulk/campaigns/convocations-api/report", params={"format": "csv"})
    assert as_csv.headers["content-type"].startswith("text/csv")
    lines = list(csv.reader(io.StringIO(as_csv.text, newline=""), delimiter=";"))
    assert lines[0][:5] == ["line", "key", "recipient", "message_id", "status"]
    assert sorted(line[4] for line in lines[1:]) == ["delivered"] * 5 + ["refused"]


async def test_the_same_content_again_is_the_same_campaign_and_sends_nothing_more(
    served: Served, api: httpx.AsyncClient
) -> None:
    patients = await add_citizens(served.stack.store, 3)
    files = multipart(csv_lines(patients), toml=definition(campaign_id=""))
    first = await api.post("/bulk/campaigns", files=files)
    assert first.status_code == 201, first.text
    campaign_id = first.json()["id"]
    assert campaign_id.startswith("c-")  # derived from the content hash
    await served.bulk.run_once()

    again = await api.post("/bulk/campaigns", files=files)

    assert again.status_code == 200, again.text
    assert (again.json()["id"], again.json()["created"]) == (campaign_id, False)
    assert await served.bulk.run_once() == []
    for patient in patients:
        assert len(await inbox_message_ids(served.stack.store, patient.address)) == 1
    assert nothing_staged(served)


async def test_another_content_under_a_taken_id_is_a_conflict(
    served: Served, api: httpx.AsyncClient
) -> None:
    patients = await add_citizens(served.stack.store, 2)
    assert (await api.post("/bulk/campaigns", files=multipart(csv_lines(patients)))).is_success
    changed = await api.post("/bulk/campaigns", files=multipart(csv_lines(patients[:1])))
    assert changed.status_code == 409
    assert error_of(changed) == "campaign-conflict"
    assert "autre contenu" in changed.json()["detail"]["message"]
    assert nothing_staged(served)


async def test_a_json_campaign_is_accepted(served: Served, api: httpx.AsyncClient) -> None:
    patients = await add_citizens(served.stack.store, 2)
    document = {
        "definition": {
            "id": "rappels-json",
            "kind": "reminder",
            "mailbox": SENDER,
            "recipients": "patients.csv",
            "subject": "Rappel",
            "body": "Bonjour {{ prenom }}",
            "attachments": ["docs/livret.pdf"],
        },
        "texts": {"patients.csv": csv_lines(patients)},
        "files": {"docs/livret.pdf": base64.b64encode(PDF).decode()},
    }
    response = await api.post("/bulk/campaigns", json=document)
    assert response.status_code == 201, response.text
    assert (response.json()["kind"], response.json()["rows_total"]) == ("reminder", 2)
    assert [r.submitted for r in await served.bulk.run_once()] == [2]


async def test_the_dry_run_reports_every_row_and_keeps_nothing(
    served: Served, api: httpx.AsyncClient
) -> None:
    patients = await add_citizens(served.stack.store, 2)
    opposed = (await add_citizens(served.stack.store, 1, status=ProfileStatus.CLOSED, start=30))[0]
    typo = Patient(patients[0].ins[:-2] + "00")  # wrong INS key
    files = multipart(csv_lines([*patients, opposed, typo]))

    response = await api.post("/bulk/check", files=files)

    assert response.status_code == 200, response.text
    report = response.json()
    assert (report["total"], report["accepted"], report["refused"]) == (4, 2, 2)
    assert report["by_reason"] == {"profile-closed": 1, "ins-key": 1}
    as_csv = await api.post("/bulk/check", files=files, params={"format": "csv"})
    assert as_csv.text.splitlines()[0].startswith("line;key;recipient;status;reason")
    assert await Ledger(served.stack.store).get("convocations-api") is None
    assert (await api.get("/bulk/campaigns")).json() == []
    assert nothing_staged(served)
    for patient in patients:
        assert await inbox_message_ids(served.stack.store, patient.address) == []


async def test_cancel_stops_the_rows_not_yet_sent(served: Served, api: httpx.AsyncClient) -> None:
    patients = await add_citizens(served.stack.store, 3)
    assert (await api.post("/bulk/campaigns", files=multipart(csv_lines(patients)))).is_success

    response = await api.post("/bulk/campaigns/convocations-api/cancel")

    assert response.status_code == 200, response.text
    assert (response.json()["cancelled"], response.json()["state"]) == (3, "cancelled")
    assert await served.bulk.run_once() == []
    assert all([await inbox_message_ids(served.stack.store, p.address) == [] for p in patients])
    report = (await api.get("/bulk/campaigns/convocations-api/report")).json()
    assert report["counts"] == {"cancelled": 3}


async def test_unknown_campaigns_are_404(api: httpx.AsyncClient) -> None:
    for response in (
        await api.get("/bulk/campaigns/nope"),
        await api.get("/bulk/campaigns/nope/report"),
        await api.post("/bulk/campaigns/nope/cancel"),
    ):
        assert response.status_code == 404
        assert error_of(response) == "campaign-unknown"
    bad_format = await api.get("/bulk/campaigns/nope/report", params={"format": "xml"})
    assert bad_format.status_code == 422


# -- who may do what -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "code", "challenge"),
    [
        (None, "token-missing", 'Bearer realm="pli-bulk"'),
        ("Bearer", "token-missing", 'Bearer realm="pli-bulk"'),
        ("Basic c2k6aG9waXRhbA==", "token-missing", 'Bearer realm="pli-bulk"'),
        ("Bearer wrong-token", "invalid-token", 'Bearer realm="pli-bulk", error="invalid_token"'),
    ],
)
async def test_requests_without_a_valid_token_are_401(
    served: Served, header: str | None, code: str, challenge: str
) -> None:
    headers = {"Authorization": header} if header else {}
    async with httpx.AsyncClient(base_url=served.base_url, headers=headers) as client:
        for response in (
            await client.get("/bulk/campaigns"),
            await client.post("/bulk/campaigns", files=multipart("ins\r\n")),
            await client.post("/bulk/check", json={}),
            await client.get("/bulk/campaigns/x/report"),
        ):
            assert response.status_code == 401
            assert error_of(response) == code
            assert response.headers["www-authenticate"] == challenge
    assert nothing_staged(served)


async def test_no_client_configured_refuses_everything(served: Served) -> None:
    runtime = type(served.runtime)(
        settings=with_clients(served.runtime.settings, []),
        store=served.stack.store,
        gateway=served.stack.gateway,
    )
    admin = await serve_admin(runtime)
    host, port = admin.addresses()[0]
    try:
        async with httpx.AsyncClient(base_url=f"http://{host}:{port}") as client:
            for token in (TOKEN, served.runtime.settings.bulk.clients[0].token_sha256):
                response = await client.get(
                    "/bulk/campaigns", headers={"Authorization": f"Bearer {token}"}
                )
                assert response.status_code == 401
                assert error_of(response) == "api-disabled"
            assert (await client.get("/health")).status_code == 200
    finally:
        await admin.stop(5)


async def test_a_client_sends_only_from_its_mailboxes_and_sees_only_their_campaigns(
    served: Served, api: httpx.AsyncClient
) -> None:
    patients = await add_citizens(served.stack.store, 1)
    refused = await api.post(
        "/bulk/campaigns",
        files=multipart(csv_lines(patients), toml=definition(mailbox=OTHER_MAILBOX)),
    )
    assert refused.status_code == 403
    assert error_of(refused) == "mailbox-not-allowed"
    assert nothing_staged(served)

    assert (await api.post("/bulk/campaigns", files=multipart(csv_lines(patients)))).is_success
    async with served.client(OTHER_TOKEN) as other:
        assert (await other.get("/bulk/campaigns")).json() == []
        for response in (
            await other.get("/bulk/campaigns/convocations-api"),
            await other.get("/bulk/campaigns/convocations-api/report"),
            await other.post("/bulk/campaigns/convocations-api/cancel"),
        ):
            assert response.status_code == 404
    listed = (await api.get("/bulk/campaigns")).json()
    assert [campaign["id"] for campaign in listed] == ["convocations-api"]
    assert (await api.get("/bulk/campaigns/convocations-api")).json()["state"] == "ready"


# -- bad uploads ---------------------------------------------------------------------------------

CSV_OK = "ins;nom;prenoms;date_naissance\r\n"


async def chunks(data: bytes, size: int = 16 * 1024) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def raw_multipart(parts: list[tuple[str, str | None, bytes]], boundary: str = "b0undary") -> bytes:
    body = b""
    for name, filename, data in parts:
        disposition = f'form-data; name="{name}"' + (
            f'; filename="{filename}"' if filename is not None else ""
        )
        body += f"--{boundary}\r\nContent-Disposition: {disposition}\r\n\r\n".encode()
        body += data + b"\r\n"
    return body + f"--{boundary}--\r\n".encode()


MULTIPART = {"content-type": "multipart/form-data; boundary=b0undary"}


@pytest.mark.parametrize(
    ("kind", "status", "code", "words"),
    [
        ("declared-too-large", 413, "request-too-large", f"exceeds {MAX_REQUEST} bytes"),
        ("chunked-too-large", 413, "request-too-large", f"exceeds {MAX_REQUEST} bytes"),
        ("nul-bytes-csv", 422, "campaign-invalid", "octets nuls"),
        ("csv-without-required-columns", 422, "campaign-invalid", "patients.csv"),
        ("definition-unknown-key", 422, "campaign-invalid", "couleur"),
        ("recipients-outside", 422, "campaign-invalid", "en dehors du dossier"),
        ("missing-definition", 400, "definition-missing", "no 'definition'"),
        ("two-definitions", 400, "duplicate-definition", "twice"),
        ("same-file-twice", 400, "duplicate-file", "patients.csv"),
        ("parent-path", 400, "bad-file-name", "../patients.csv"),
        ("absolute-path", 400, "bad-file-name", "/etc/passwd"),
        ("hidden-file", 400, "bad-file-name", ".htaccess"),
        ("file-and-directory", 400, "bad-file-name", "a file and a directory"),
        ("unknown-field", 400, "unknown-field", "comment"),
        ("truncated-multipart", 400, "bad-multipart", "ends before"),
        ("garbage-multipart", 400, "bad-multipart", "malformed"),
        ("no-boundary", 400, "bad-multipart", "boundary"),
        ("plain-text", 415, "unsupported-media-type", "multipart/form-data"),
        ("not-json", 400, "bad-json", "not JSON"),
        ("json-without-definition", 400, "bad-json", "'definition' object"),
        ("json-bad-base64", 400, "bad-json", "not base64"),
        ("json-unknown-key", 400, "bad-json", "unknown keys: extra"),
    ],
)
async def test_bad_uploads_get_a_clear_4xx_and_leave_nothing(
    served: Served, api: httpx.AsyncClient, kind: str, status: int, code: str, words: str
) -> None:
    patients = await add_citizens(served.stack.store, 1)
    good = csv_lines(patients).encode()
    toml = definition()
    parts = {
        "nul-bytes-csv": [
            ("definition", "c.toml", toml),
            ("files", "patients.csv", b"ins\0;nom"),
            ("files", "livret.pdf", PDF),
        ],
        "csv-without-required-columns": [
            ("definition", "c.toml", toml),
            ("files", "patients.csv", b"ins;nom\r\n1;2\r\n"),
            ("files", "livret.pdf", PDF),
        ],
        "definition-unknown-key": [
            ("definition", "c.toml", definition(extra='couleur = "bleu"\n')),
            ("files", "patients.csv", good),
            ("files", "livret.pdf", PDF),
        ],
        "recipients-outside": [
            ("definition", "c.toml", toml.replace(b'"patients.csv"', b'"../patients.csv"')),
            ("files", "livret.pdf", PDF),
        ],
        "missing-definition": [("files", "patients.csv", good)],
        "two-definitions": [("definition", "a.toml", toml), ("definition", "b.toml", toml)],
        "same-file-twice": [("files", "patients.csv", good), ("files", "patients.csv", good)],
        "parent-path": [("files", "../patients.csv", good)],
        "absolute-path": [("files", "/etc/passwd", good)],
        "hidden-file": [("files", ".htaccess", good)],
        "file-and-directory": [("files", "pdf", PDF), ("files", "pdf/1.pdf", PDF)],
        "unknown-field": [("comment", None, b"hello")],
    }
    request: dict[str, Any]
    if kind in parts:
        request = {"content": raw_multipart(parts[kind]), "headers": MULTIPART}
    elif kind == "declared-too-large":
        request = {"files": multipart(CSV_OK, pdf=b"x" * MAX_REQUEST)}
    elif kind == "chunked-too-large":  # no Content-Length: the bytes are counted
        body = raw_multipart([("files", "big.pdf", b"x" * MAX_REQUEST)])
        request = {"content": chunks(body), "headers": MULTIPART}
    elif kind == "truncated-multipart":
        body = raw_multipart([("definition", "c.toml", toml)])
        request = {"content": body[:-20], "headers": MULTIPART}
    elif kind == "garbage-multipart":
        request = {"content": b"this is not multipart at all\r\n" * 10, "headers": MULTIPART}
    elif kind == "no-boundary":
        request = {"content": b"x", "headers": {"content-type": "multipart/form-data"}}
    elif kind == "plain-text":
        request = {"content": b"hello", "headers": {"content-type": "text/plain"}}
    elif kind == "not-json":
        request = {"content": b"{nope", "headers": {"content-type": "application/json"}}
    elif kind == "json-without-definition":
        request = {"json": {"texts": {}}}
    elif kind == "json-bad-base64":
        request = {"json": {"definition": {}, "files": {"a.pdf": "***"}}}
    else:
        request = {"json": {"definition": {}, "extra": 1}}

    for path in ("/bulk/campaigns", "/bulk/check"):
        if kind == "chunked-too-large":  # a generator is consumed by one request
            request["content"] = chunks(body)
        response = await api.post(path, **request)
        assert response.status_code == status, response.text
        assert error_of(response) == code
        assert words in response.json()["detail"]["message"]
    assert nothing_staged(served)
    assert await Ledger(served.stack.store).campaigns() == []
