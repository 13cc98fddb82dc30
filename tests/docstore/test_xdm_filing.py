"""An IHE_XDM.zip read by pli and its documents filed in the store over HTTP, as the filing
client will: the metadata gives the title, type, author and date; the store gives the category;
the message id and the path in the zip name the filing; a retry files nothing twice; a document
whose declared type its content contradicts is refused by the store."""

from __future__ import annotations

import hashlib

import httpx
from plitest.docstore import CITIZEN, actor_headers
from plitest.xdm import XdmDoc, build_xdm, cda_document

from pli.mailbox.xdm import MssHeaders, XdmDocument, XdmPackage, read_xdm

PDF = b"%PDF-1.4\n1 0 obj << >> endobj\n%%EOF\n"
MESSAGE_ID = "<20250301.123@ch-exemple.mssante.fr>"


async def file(client: httpx.AsyncClient, document: XdmDocument) -> httpx.Response:
    author = document.authors[0] if document.authors else None
    fields = {
        "title": document.title or document.path,
        "type_code": document.type_code.code if document.type_code else "",
        "type_code_scheme": document.type_code.scheme if document.type_code else "",
        "author_name": (author.name or "") if author else "",
        "author_id": (author.identifier or "") if author else "",
        "document_date": document.creation_time.isoformat() if document.creation_time else "",
        "source_message_id": MESSAGE_ID,
        "source_part": f"2/{document.path}",
        "confidentiality": "hidden" if document.hidden_from_professionals else "visible",
        "sha256": hashlib.sha256(document.content).hexdigest(),
    }
    return await client.post(
        f"/v1/citizens/{CITIZEN}/documents",
        headers=actor_headers("automatic-rule", "xdm-to-patient"),
        data={name: value for name, value in fields.items() if value},
        files={"content": (document.path.rsplit("/", 1)[-1], document.content, document.mime_type)},
    )


async def test_the_documents_of_a_package_are_filed_once_with_their_metadata(
    client: httpx.AsyncClient,
) -> None:
    data = build_xdm(
        [
            XdmDoc(cda_document(code="11490-0")),
            XdmDoc(
                PDF,
                name="CR-BIO.PDF",
                mime_type="application/pdf",
                title="Compte rendu de biologie",
                type_code="11502-2",
                entry_id="Document02",
                confidentiality=(("MASQUE_PS", "1.2.250.1.213.1.1.4.13"),),
            ),
        ]
    )
    package = read_xdm(data, headers=MssHeaders(codecda="11490-0", ins="O"), expected_ins=CITIZEN)
    assert isinstance(package, XdmPackage)
    first = [await file(client, document) for document in package.documents]
    assert [response.status_code for response in first] == [201, 201]
    letter, lab = (response.json() for response in first)
    assert (letter["category"], letter["mime_type"]) == ("lettre-liaison", "text/xml")
    assert letter["author_name"] == "Dr Jeanne MARTIN"
    assert letter["author_id"] == "810001234567"
    assert letter["document_date"] == "2025-03-01T08:30:00Z"
    assert letter["filed_by"] == {"kind": "automatic-rule", "id": "xdm-to-patient"}
    assert (lab["category"], lab["confidentiality"]) == ("biologie", "hidden")
    again = [await file(client, document) for document in package.documents]
    assert [response.status_code for response in again] == [200, 200]
    assert [r.json()["id"] for r in again] == [letter["id"], lab["id"]]


async def test_a_document_whose_content_contradicts_its_declared_type_is_refused(
    client: httpx.AsyncClient,
) -> None:
    data = build_xdm([XdmDoc(PDF, name="DOC.XML", mime_type="text/xml")])
    package = read_xdm(data)
    assert isinstance(package, XdmPackage)  # the package is consistent with itself
    response = await file(client, package.documents[0])
    assert response.status_code == 415
    assert response.json()["reason"] == "content-type-mismatch"
    assert "declared text/xml, but the content is a PDF" in response.json()["detail"]
