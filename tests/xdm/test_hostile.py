"""Hostile IHE_XDM.zip packages: each refused with its reason, in bounded memory.

Memory is measured with tracemalloc around the read (the package itself is allocated before);
time is bounded by construction (nothing is decompressed before the directory's declared sizes
pass the limits) and by pytest-timeout, never by a timed assertion.
"""

from __future__ import annotations

import hashlib
import tracemalloc
import warnings
import zipfile

import pytest
from plitest.xdm import (
    BILLION_LAUGHS,
    EXTERNAL_ENTITY,
    XdmDoc,
    build_xdm,
    cda_document,
    deep_xml,
    huge_xml,
    lying_size_bomb,
    metadata_xml,
    patch_entry,
    symlink_info,
    zip_bomb,
    zip_entries,
)

from pli.mailbox.xdm import Reason, XdmPackage, XdmRefusal, read_xdm
from pli.mailbox.xdm.cda import MAX_HEADER_ELEMENTS
from pli.mailbox.xdm.limits import MAX_ENTRIES, MAX_PACKAGE_SIZE, MAX_TOTAL_UNCOMPRESSED

MiB = 1024 * 1024


def refusal_of(data: bytes) -> XdmRefusal:
    result = read_xdm(data)
    assert isinstance(result, XdmRefusal), result
    assert result.text
    return result


def peak_while_reading(data: bytes) -> tuple[object, int]:
    tracemalloc.start()
    try:
        result = read_xdm(data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return result, peak


def test_a_zip_bomb_is_refused_from_its_directory_without_inflating() -> None:
    bomb = zip_bomb(MAX_TOTAL_UNCOMPRESSED + MiB)
    assert len(bomb) < MiB  # ~1000-fold
    result, peak = peak_while_reading(bomb)
    assert isinstance(result, XdmRefusal)
    assert result.reason is Reason.BOMB
    assert peak < 4 * MiB


def test_an_entry_that_compresses_too_well_is_refused() -> None:
    result = refusal_of(zip_bomb(2 * MiB))
    assert result.reason is Reason.BOMB
    assert "fold" in result.text


def test_an_entry_lying_about_its_size_inflates_no_further_than_it_says() -> None:
    real, declared = 40 * MiB, 1000
    data = lying_size_bomb(real, declared)
    result, peak = peak_while_reading(data)
    assert isinstance(result, XdmRefusal)
    assert result.reason is Reason.CORRUPT_ENTRY
    assert peak < 4 * MiB


def test_a_document_whose_header_and_metadata_agree_on_a_wrong_size_fails_its_crc() -> None:
    name = "IHE_XDM/SUBSET01/DOC0001.XML"
    data = patch_entry(build_xdm([XdmDoc(cda_document(), size=100)]), name, size=100)
    result = refusal_of(data)
    assert result.reason is Reason.CORRUPT_ENTRY


def test_a_package_larger_than_a_message_is_refused_unread() -> None:
    result = refusal_of(b"PK" + b"\0" * MAX_PACKAGE_SIZE)
    assert result.reason is Reason.TOO_LARGE


@pytest.mark.parametrize(
    "name",
    [
        "../evil.xml",
        "IHE_XDM/SUBSET01/../../../evil.xml",
        "/etc/passwd",
        "C:/Windows/evil.dll",
        "IHE_XDM\\SUBSET01\\..\\..\\evil.xml",
        "IHE_XDM/SUBSET01/bell\x07.xml",
        "IHE_XDM/SUBSET01/new\nline.xml",
    ],
)
def test_entry_names_that_could_escape_are_refused(name: str) -> None:
    data = build_xdm([XdmDoc(cda_document())], extra=[(name, b"x")])
    result = refusal_of(data)
    assert result.reason is Reason.UNSAFE_NAME
    assert "has" in result.text


def test_a_symbolic_link_is_refused() -> None:
    data = build_xdm([XdmDoc(cda_document())], extra=[(symlink_info("IHE_XDM/link"), b"/etc")])
    assert refusal_of(data).reason is Reason.SYMLINK


def test_encrypted_and_exotically_compressed_entries_are_refused() -> None:
    name = "IHE_XDM/SUBSET01/DOC0001.XML"
    data = patch_entry(build_xdm([XdmDoc(cda_document())]), name, flags=0x1)
    assert refusal_of(data).reason is Reason.ENCRYPTED
    bzip = zipfile.ZipInfo("IHE_XDM/SUBSET01/DOC0001.XML")
    bzip.compress_type = zipfile.ZIP_BZIP2
    data = build_xdm([], metadata=metadata_xml([XdmDoc(b"x")]), extra=[(bzip, b"x")])
    assert refusal_of(data).reason is Reason.UNSUPPORTED_COMPRESSION


def test_duplicate_names_even_by_case_are_refused() -> None:
    cda = cda_document()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # zipfile warns on duplicates
        same = build_xdm([XdmDoc(cda)], extra=[("IHE_XDM/SUBSET01/DOC0001.XML", b"other")])
    assert refusal_of(same).reason is Reason.DUPLICATE_NAME
    folded = build_xdm([XdmDoc(cda)], extra=[("ihe_xdm/subset01/doc0001.xml", b"other")])
    assert refusal_of(folded).reason is Reason.DUPLICATE_NAME


def test_too_many_entries_or_an_oversized_directory_are_refused_before_parsing() -> None:
    many = zip_entries([(f"IHE_XDM/SUBSET01/F{i}", b"") for i in range(MAX_ENTRIES + 1)])
    assert refusal_of(many).reason is Reason.TOO_MANY_ENTRIES
    long_names = zip_entries([(f"IHE_XDM/{i:04d}" + "n" * 1200, b"") for i in range(900)])
    result, peak = peak_while_reading(long_names)
    assert isinstance(result, XdmRefusal)
    assert result.reason is Reason.TOO_MANY_ENTRIES
    assert peak < 2 * MiB


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"not a zip at all",
        b"PK\x03\x04" + b"\0" * 100,
        b"PK\x05\x06" + b"\xff" * 18,
        b"\0" * 1000 + b"PK\x05\x06" + b"\0" * 8 + b"\xff\xff\xff\xff" * 2 + b"\0\0",
    ],
)
def test_what_is_not_a_zip_is_refused(data: bytes) -> None:
    assert refusal_of(data).reason in (Reason.NOT_ZIP, Reason.TOO_MANY_ENTRIES)


def test_a_truncated_package_is_refused() -> None:
    data = build_xdm([XdmDoc(cda_document())])
    for cut in (10, len(data) // 2, len(data) - 10):
        assert isinstance(read_xdm(data[:cut]), XdmRefusal)


def test_a_corrupted_byte_in_a_document_is_refused() -> None:
    cda = cda_document(padding=4000)
    data = bytearray(
        zip_entries(
            [
                ("IHE_XDM/SUBSET01/METADATA.XML", metadata_xml([XdmDoc(cda)])),
                ("IHE_XDM/SUBSET01/DOC0001.XML", cda),
            ],
            deflate=False,
        )
    )
    position = bytes(data).find(b"Observation Observation")
    data[position] ^= 0x20
    result = refusal_of(bytes(data))
    assert result.reason is Reason.CORRUPT_ENTRY  # stored: the CRC-32 catches it
    assert "CRC" in result.text


@pytest.mark.parametrize(
    ("metadata", "reason"),
    [
        (BILLION_LAUGHS, Reason.METADATA_FORBIDDEN_XML),
        (EXTERNAL_ENTITY, Reason.METADATA_FORBIDDEN_XML),
        (deep_xml(50_000), Reason.METADATA_MALFORMED),
        (b"<r>" + b"<a/>" * 150_000 + b"</r>", Reason.METADATA_MALFORMED),
        (huge_xml(3 * MiB), Reason.METADATA_TOO_LARGE),
        (b"<unclosed>", Reason.METADATA_MALFORMED),
    ],
)
def test_hostile_metadata_xml_is_refused(metadata: bytes, reason: Reason) -> None:
    data = build_xdm([], metadata=metadata)
    result, peak = peak_while_reading(data)
    assert isinstance(result, XdmRefusal)
    assert result.reason is reason
    assert peak < 32 * MiB


def test_a_cda_document_with_a_dtd_is_refused() -> None:
    bomb = BILLION_LAUGHS.replace(b"lcm:SubmitObjectsRequest", b"ClinicalDocument")
    result = refusal_of(build_xdm([XdmDoc(bomb)]))
    assert result.reason is Reason.DOCUMENT_FORBIDDEN_XML
    assert "DOC0001.XML" in result.text


def test_a_nested_zip_is_a_document_never_expanded() -> None:
    inner = zip_bomb(2 * MiB)
    doc = XdmDoc(inner, name="ARCHIVE.ZIP", mime_type="application/zip")
    result = read_xdm(build_xdm([doc]))
    assert isinstance(result, XdmPackage)
    (document,) = result.documents
    assert document.content == inner
    assert document.sha1 == hashlib.sha1(inner).hexdigest()


def test_too_many_documents_are_refused() -> None:
    docs = [
        XdmDoc(b"%d" % i, name=f"D{i}.TXT", mime_type="text/plain", entry_id=f"Doc{i:03d}")
        for i in range(101)
    ]
    assert refusal_of(build_xdm(docs)).reason is Reason.TOO_MANY_DOCUMENTS


def test_a_cda_header_is_read_no_further_than_its_bound() -> None:
    padded = cda_document(code="11502-2").replace(
        b'<realmCode code="FR"/>', b"<templateId/>" * (MAX_HEADER_ELEMENTS + 10)
    )
    # the mismatching code sits past the bound: not seen, not compared
    result = read_xdm(build_xdm([XdmDoc(padded, type_code="11490-0")]))
    assert isinstance(result, XdmPackage)
    near = cda_document(code="11502-2").replace(b'<realmCode code="FR"/>', b"<templateId/>" * 100)
    result = read_xdm(build_xdm([XdmDoc(near, type_code="11490-0")]))
    assert isinstance(result, XdmRefusal)
    assert result.reason is Reason.CDA_INCONSISTENT
