"""Reading valid IHE_XDM.zip packages, and refusing corrupt or inconsistent ones with a reason."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import pytest
from plitest.docstore import CITIZEN, OTHER_CITIZEN
from plitest.xdm import (
    META_DMP_MSS,
    XdmDoc,
    build_xdm,
    cda_document,
    metadata_xml,
    zip_entries,
)

from pli.mailbox.xdm import MssHeaders, Reason, XdmPackage, XdmRefusal, read_xdm

PDF = b"%PDF-1.4\n1 0 obj << >> endobj\n%%EOF\n"


def read_ok(data: bytes, **kwargs: object) -> XdmPackage:
    result = read_xdm(data, **kwargs)  # type: ignore[arg-type]
    assert isinstance(result, XdmPackage), result
    return result


def refused(data: bytes, **kwargs: object) -> XdmRefusal:
    result = read_xdm(data, **kwargs)  # type: ignore[arg-type]
    assert isinstance(result, XdmRefusal), result
    return result


def test_a_realistic_package_gives_its_documents_with_their_metadata() -> None:
    cda = cda_document(CITIZEN, code="11490-0")
    package = read_ok(
        build_xdm(
            [
                XdmDoc(cda),
                XdmDoc(
                    PDF,
                    name="DOC0002.PDF",
                    mime_type="application/pdf",
                    title="Compte rendu de biologie",
                    type_code="11502-2",
                    entry_id="Document02",
                    confidentiality=(("N", "2.16.840.1.113883.5.25"), ("MASQUE_PS", META_DMP_MSS)),
                ),
            ]
        ),
        headers=MssHeaders(codecda="11490-0", ins="O"),
        expected_ins=CITIZEN,
    )
    first, second = package.documents
    assert first.path == "IHE_XDM/SUBSET01/DOC0001.XML"
    assert first.content == cda
    assert first.size == len(cda)
    assert first.sha1 == hashlib.sha1(cda).hexdigest()
    assert first.mime_type == "text/xml" and first.is_cda
    assert first.title == "Lettre de liaison à la sortie"
    assert first.type_code is not None
    assert (first.type_code.code, first.type_code.scheme) == ("11490-0", "2.16.840.1.113883.6.1")
    assert first.creation_time == datetime(2025, 3, 1, 8, 30, tzinfo=UTC)
    assert first.patient_id is not None
    assert first.patient_id.value == CITIZEN
    assert first.patient_id.kind == "INS-NIR"
    assert first.patient_id.is_qualified_ins
    (author,) = first.authors
    assert author.name == "Dr Jeanne MARTIN"
    assert (author.identifier, author.identifier_type) == ("810001234567", "IDNPS")
    assert author.institution == "CH Exemple"
    assert not first.hidden_from_professionals and not first.invisible_to_patient
    assert second.mime_type == "application/pdf" and not second.is_cda
    assert second.hidden_from_professionals
    assert package.has_qualified_ins
    assert package.submission_title == "Envoi de documents"
    assert package.header_mismatches == ()


def test_uri_forms_resolve_inside_the_subset() -> None:
    cda = cda_document()
    for uri in (
        "DOC0001.XML",
        "./DOC0001.XML",
        "IHE_XDM/SUBSET01/DOC0001.XML",
        "doc0001.xml",
        "DOC%30001.XML",
    ):
        package = read_ok(build_xdm([XdmDoc(cda, uri=uri)]))
        assert package.documents[0].path == "IHE_XDM/SUBSET01/DOC0001.XML", uri
    split = read_ok(build_xdm([XdmDoc(cda, uri_values=["2|0001.XML", "1|DOC"])]))
    assert split.documents[0].uri == "DOC0001.XML"


def test_several_subsets_are_all_read() -> None:
    one = cda_document(code="11490-0")
    two = cda_document(code="11502-2")
    data = zip_entries(
        [
            ("IHE_XDM/SUBSET01/METADATA.XML", metadata_xml([XdmDoc(one)])),
            ("IHE_XDM/SUBSET01/DOC0001.XML", one),
            ("IHE_XDM/SUBSET02/METADATA.XML", metadata_xml([XdmDoc(two, type_code="11502-2")])),
            ("IHE_XDM/SUBSET02/DOC0001.XML", two),
        ]
    )
    package = read_ok(data)
    assert [d.path for d in package.documents] == [
        "IHE_XDM/SUBSET01/DOC0001.XML",
        "IHE_XDM/SUBSET02/DOC0001.XML",
    ]


@pytest.mark.parametrize(
    ("doc", "reason", "fragment"),
    [
        (XdmDoc(cda_document(), sha1="0" * 40), Reason.HASH_MISMATCH, "SHA-1"),
        (XdmDoc(cda_document(), size=10), Reason.SIZE_MISMATCH, "metadata says 10"),
        (XdmDoc(cda_document(), uri="MISSING.XML"), Reason.DOCUMENT_MISSING, "MISSING.XML"),
        (XdmDoc(cda_document(), uri="../SUBSET02/DOC0001.XML"), Reason.URI_OUTSIDE_SUBSET, ""),
        (XdmDoc(cda_document(), uri="../../etc/passwd"), Reason.URI_OUTSIDE_SUBSET, ""),
        (XdmDoc(cda_document(), uri="/etc/passwd"), Reason.URI_OUTSIDE_SUBSET, ""),
        (XdmDoc(cda_document(), uri="file:///etc/passwd"), Reason.URI_OUTSIDE_SUBSET, ""),
        (XdmDoc(cda_document(), uri="http://evil.example/x"), Reason.URI_OUTSIDE_SUBSET, ""),
        (XdmDoc(cda_document(), uri="%2e%2e/%2e%2e/x"), Reason.URI_OUTSIDE_SUBSET, ""),
        (XdmDoc(cda_document(), uri_values=["1|DOC", "3|X"]), Reason.METADATA_INVALID, "URI"),
        (XdmDoc(cda_document(), sha1="xyz"), Reason.METADATA_INVALID, "hash"),
        (
            XdmDoc(cda_document(), creation_time="2025-03-01"),
            Reason.METADATA_INVALID,
            "creationTime",
        ),
        (XdmDoc(cda_document(), creation_time="20251301"), Reason.METADATA_INVALID, "creationTime"),
        (XdmDoc(cda_document(), title="x" * 1025), Reason.METADATA_INVALID, "1024"),
        (XdmDoc(cda_document(), extra_slots={"note": "y" * 257}), Reason.METADATA_INVALID, "256"),
        (XdmDoc(cda_document(code="11502-2")), Reason.CDA_INCONSISTENT, "11502-2"),
        (XdmDoc(cda_document(OTHER_CITIZEN)), Reason.CDA_INCONSISTENT, OTHER_CITIZEN),
    ],
)
def test_a_corrupt_or_inconsistent_package_is_refused_precisely(
    doc: XdmDoc, reason: Reason, fragment: str
) -> None:
    refusal = refused(build_xdm([doc]))
    assert refusal.reason is reason
    assert fragment in refusal.text


def test_a_size_slot_is_checked_before_decompressing() -> None:
    doc = XdmDoc(cda_document(padding=50_000), size=100)
    refusal = refused(build_xdm([doc]))
    assert refusal.reason is Reason.SIZE_MISMATCH


def test_a_package_without_metadata_or_documents_is_refused() -> None:
    assert refused(build_xdm([XdmDoc(cda_document())], with_metadata=False)).reason is (
        Reason.NO_METADATA
    )
    assert refused(build_xdm([])).reason is Reason.NO_DOCUMENTS
    misplaced = zip_entries([("METADATA.XML", metadata_xml([XdmDoc(cda_document())]))])
    assert refused(misplaced).reason is Reason.NO_METADATA
    wrong_root = build_xdm([], metadata=b'<Submit xmlns="urn:x"/>')
    assert refused(wrong_root).reason is Reason.METADATA_MALFORMED
    not_xml = build_xdm([], metadata=b"\x89PNG not xml")
    assert refused(not_xml).reason is Reason.METADATA_MALFORMED


def test_documents_for_different_patients_are_refused() -> None:
    docs = [
        XdmDoc(cda_document(CITIZEN)),
        XdmDoc(
            cda_document(OTHER_CITIZEN),
            name="DOC0002.XML",
            entry_id="Document02",
            patient_ins=OTHER_CITIZEN,
        ),
    ]
    refusal = refused(build_xdm(docs))
    assert refusal.reason is Reason.PATIENT_INCONSISTENT
    assert CITIZEN in refusal.text and OTHER_CITIZEN in refusal.text


def test_a_package_for_another_patient_than_the_recipient_is_refused() -> None:
    data = build_xdm([XdmDoc(cda_document(OTHER_CITIZEN))], patient_ins=OTHER_CITIZEN)
    refusal = refused(data, expected_ins=CITIZEN)
    assert refusal.reason is Reason.WRONG_PATIENT
    assert f"INS-NIR {OTHER_CITIZEN}" in refusal.text
    assert isinstance(read_xdm(data, expected_ins=OTHER_CITIZEN), XdmPackage)
    local = build_xdm(
        [XdmDoc(cda_document("PAT-42", ins_root="1.2.250.1.999"))],
        patient_ins="PAT-42",
        patient_oid="1.2.250.1.999",
    )
    assert isinstance(read_xdm(local, expected_ins=CITIZEN), XdmPackage)  # no INS to compare


@pytest.mark.parametrize(
    ("codes", "codecda", "ins", "expected"),
    [
        (["11490-0"], "11490-0", "O", []),
        (["11490-0", "11502-2"], "11502-2,11490-0", "O", []),
        (["11490-0"], " 11490-0 , 11502-2", "O", ["codecda-not-in-package"]),
        (["11490-0", "11502-2"], "11490-0", "O", ["codecda-missing"]),
        (["11490-0"], "11502-2", "O", ["codecda-not-in-package", "codecda-missing"]),
        (["11490-0"], None, None, ["codecda-absent", "ins-header-absent"]),
        (["11490-0"], "11490-0", "N", ["ins-header-says-unqualified"]),
        (["11490-0"], "11490-0", "maybe", ["ins-header-invalid"]),
        (["11490-0"], "11490-0", " o ", []),
    ],
)
def test_mss_headers_are_checked_and_mismatches_reported_not_fatal(
    codes: list[str], codecda: str | None, ins: str | None, expected: list[str]
) -> None:
    docs = [
        XdmDoc(
            cda_document(code=code), name=f"DOC{i}.XML", entry_id=f"Document0{i}", type_code=code
        )
        for i, code in enumerate(codes, start=1)
    ]
    package = read_ok(build_xdm(docs), headers=MssHeaders(codecda=codecda, ins=ins))
    assert [m.reason for m in package.header_mismatches] == expected
    assert all(m.text for m in package.header_mismatches)


def test_x_mss_ins_o_without_a_qualified_ins_is_reported() -> None:
    local = build_xdm(
        [XdmDoc(cda_document("PAT-42", ins_root="1.2.250.1.999"))],
        patient_ins="PAT-42",
        patient_oid="1.2.250.1.999",
    )
    package = read_ok(local, headers=MssHeaders(codecda="11490-0", ins="O"))
    assert [m.reason for m in package.header_mismatches] == ["ins-header-says-qualified"]
    bad_key = CITIZEN[:-2] + "00"
    wrong_key = build_xdm([XdmDoc(cda_document(bad_key))], patient_ins=bad_key)
    package = read_ok(wrong_key, headers=MssHeaders(codecda="11490-0", ins="O"))
    assert not package.has_qualified_ins
    assert [m.reason for m in package.header_mismatches] == ["ins-header-says-qualified"]


def test_a_non_cda_package_needs_no_mss_headers() -> None:
    package = read_ok(build_xdm([XdmDoc(PDF, name="CR.PDF", mime_type="application/pdf")]))
    assert package.header_mismatches == ()
