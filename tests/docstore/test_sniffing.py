"""What a document is, from its bytes, against what it claims to be (docstore/sniffing.py)."""

from __future__ import annotations

import codecs

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pli.docstore.limits import PDF_TAIL, SNIFF_HEAD
from pli.docstore.sniffing import ContentRefused, classify

PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n%%EOF\n"
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 32
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + b"\x00" * 16
TIFF = b"II*\x00\x08\x00\x00\x00" + b"\x00" * 16
DICOM = b"\x00" * 128 + b"DICM" + b"\x02\x00"
CDA = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<?xml-stylesheet type="text/xsl" href="c.xsl"?>\n'
    b'<!-- a comment -->\n<ClinicalDocument xmlns="urn:hl7-org:v3"><code code="11490-0"/>'
)
TEXT = "Résultat : normal.\r\nÀ revoir dans 6 mois.\n".encode()


def sniff(content: bytes, declared: str | None) -> tuple[str, str | None]:
    result = classify(content[:SNIFF_HEAD], content[-PDF_TAIL:], declared)
    return result.mime_type, result.note


@pytest.mark.parametrize(
    ("content", "declared", "stored"),
    [
        (PDF, "application/pdf", "application/pdf"),
        (JPEG, "image/jpeg", "image/jpeg"),
        (PNG, "image/png", "image/png"),
        (TIFF, "image/tiff", "image/tiff"),
        (DICOM, "application/dicom", "application/dicom"),
        (CDA, "text/xml", "text/xml"),
        (TEXT, "text/plain; charset=utf-8", "text/plain"),
        (TEXT.decode().encode("cp1252"), "text/plain", "text/plain"),
        (
            codecs.BOM_UTF16_LE + '<ClinicalDocument xmlns="urn:hl7-org:v3">'.encode("utf-16-le"),
            "text/xml",
            "text/xml",
        ),
    ],
)
def test_a_document_of_the_declared_type_is_stored_as_such(
    content: bytes, declared: str, stored: str
) -> None:
    assert sniff(content, declared) == (stored, None)


@pytest.mark.parametrize(
    ("content", "declared", "stored", "note"),
    [
        (
            PDF,
            "application/octet-stream",
            "application/pdf",
            "declared application/octet-stream; recognised as application/pdf",
        ),
        (JPEG, None, "image/jpeg", "declared no type; recognised as image/jpeg"),
        (JPEG, "IMAGE/JPG", "image/jpeg", "declared image/jpg, stored as image/jpeg"),
        (
            CDA,
            "application/hl7-cda+xml",
            "text/xml",
            "declared application/hl7-cda+xml, stored as text/xml",
        ),
        (TEXT, "text/csv", "text/plain", "declared text/csv, stored as text/plain"),
    ],
)
def test_a_generic_or_aliased_declaration_is_normalised_with_a_note(
    content: bytes, declared: str | None, stored: str, note: str
) -> None:
    assert sniff(content, declared) == (stored, note)


@pytest.mark.parametrize(
    ("content", "declared", "reason"),
    [
        (PDF, "image/jpeg", "content-type-mismatch"),
        (JPEG, "application/pdf", "content-type-mismatch"),
        (TEXT, "application/pdf", "content-type-mismatch"),
        (b"", "application/pdf", "empty-document"),
        (b"PK\x03\x04" + b"\x00" * 40, "application/zip", "archive-refused"),
        (b"PK\x03\x04" + b"\x00" * 40, "application/pdf", "archive-refused"),
        (b"<!DOCTYPE html><html><script>alert(1)</script>", "text/plain", "active-content-refused"),
        (b"<html><body>hi</body></html>", "text/html", "active-content-refused"),
        (
            b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"><script/></svg>',
            "image/svg+xml",
            "active-content-refused",
        ),
        (b"hello <script>alert(1)</script>", "text/plain", "active-content-refused"),
        (b"MZ\x90\x00\x03" + b"\x00" * 60, "application/pdf", "unsupported-type"),
        (b"\x7fELF\x02\x01\x01" + b"\x00" * 30, None, "unsupported-type"),
        (b'<?xml version="1.0"?><invoice/>', "text/xml", "unsupported-type"),
        (bytes(range(256)), "application/octet-stream", "unsupported-type"),
        (b"%PDF-1.4\n1 0 obj\n", "application/pdf", "truncated-document"),
    ],
)
def test_hostile_or_mislabelled_content_is_refused_with_a_reason(
    content: bytes, declared: str | None, reason: str
) -> None:
    with pytest.raises(ContentRefused) as refused:
        sniff(content, declared)
    assert refused.value.reason == reason
    assert refused.value.text


@given(st.binary(max_size=600), st.one_of(st.none(), st.text(max_size=40)))
def test_classify_only_ever_refuses_or_classifies(content: bytes, declared: str | None) -> None:
    try:
        result = classify(content[:SNIFF_HEAD], content[-PDF_TAIL:], declared)
    except ContentRefused as refused:
        assert refused.reason
    else:
        assert result.mime_type in {
            "application/pdf",
            "image/jpeg",
            "image/png",
            "image/tiff",
            "application/dicom",
            "text/plain",
            "text/xml",
        }


@given(st.sampled_from([PDF, JPEG, PNG, CDA, TEXT]), st.binary(max_size=64))
def test_any_suffix_keeps_the_recognised_type_of_a_known_head(head: bytes, suffix: bytes) -> None:
    content = head + suffix
    if head is PDF:
        content += b"\n%%EOF\n"
    try:
        mime, _ = sniff(content, None)
    except ContentRefused as refused:  # text made binary by the suffix
        assert head in (TEXT, CDA)
        assert refused.reason == "unsupported-type"
    else:
        assert mime == sniff(head if head is not PDF else content, None)[0]
