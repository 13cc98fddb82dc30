"""Hypothesis: whatever the bytes, reading an IHE_XDM.zip gives a package or a refusal, never an
exception; the HL7 v2 value parsers give a value, None, or ValueError (DTM) only."""

from __future__ import annotations

import warnings
import zipfile

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from plitest.xdm import XdmDoc, build_xdm, cda_document, metadata_xml, zip_entries

from pli.mailbox.xdm import XdmPackage, XdmRefusal, read_xdm
from pli.mailbox.xdm.hl7v2 import parse_cx, parse_dtm, parse_xcn, parse_xon_name, unescape

VALID = build_xdm([XdmDoc(cda_document())])
VALID_STORED = zip_entries(
    [
        ("IHE_XDM/SUBSET01/METADATA.XML", metadata_xml([XdmDoc(cda_document())])),
        ("IHE_XDM/SUBSET01/DOC0001.XML", cda_document()),
    ],
    deflate=False,
)
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def assert_result(data: bytes) -> None:
    result = read_xdm(data)
    assert isinstance(result, XdmPackage | XdmRefusal)
    if isinstance(result, XdmRefusal):
        assert result.text


@FUZZ
@given(st.binary(max_size=2000))
def test_random_bytes(data: bytes) -> None:
    assert_result(data)


@FUZZ
@given(
    st.sampled_from([VALID, VALID_STORED]),
    st.lists(
        st.tuples(st.integers(min_value=0), st.integers(min_value=0, max_value=255)),
        min_size=1,
        max_size=8,
    ),
)
def test_a_valid_package_with_bytes_changed(base: bytes, changes: list[tuple[int, int]]) -> None:
    data = bytearray(base)
    for position, value in changes:
        data[position % len(data)] = value
    assert_result(bytes(data))


@FUZZ
@given(st.sampled_from([VALID, VALID_STORED]), st.integers(min_value=0))
def test_a_valid_package_truncated(base: bytes, cut: int) -> None:
    assert_result(base[: cut % len(base)])


@FUZZ
@given(st.binary(max_size=3000) | st.text(max_size=1000).map(str.encode))
def test_any_metadata(metadata: bytes) -> None:
    assert_result(build_xdm([XdmDoc(cda_document())], metadata=metadata))


_XML_TEXT = st.text(
    alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"), max_size=80
)


@FUZZ
@given(
    uri=_XML_TEXT,
    creation=_XML_TEXT,
    title=_XML_TEXT,
    type_code=_XML_TEXT,
    size=st.integers(min_value=-5, max_value=10**20),
)
def test_any_metadata_values(
    uri: str, creation: str, title: str, type_code: str, size: int
) -> None:
    cleaned = [value.translate({c: None for c in range(32)}) for value in (uri, creation, title)]
    doc = XdmDoc(
        cda_document(),
        uri=cleaned[0],
        creation_time=cleaned[1],
        title=cleaned[2],
        type_code=type_code.translate({c: None for c in range(32)}),
        size=size,
    )
    assert_result(build_xdm([doc]))


@FUZZ
@given(st.lists(st.text(max_size=40), min_size=1, max_size=5))
def test_any_entry_names(names: list[str]) -> None:
    entries: list[tuple[str | zipfile.ZipInfo, bytes]] = [
        (name or "x", b"content") for name in names
    ]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # duplicate names
            data = build_xdm([XdmDoc(cda_document())], extra=entries)
    except (ValueError, UnicodeEncodeError, IndexError):
        return  # zipfile cannot even write that name
    assert_result(data)


@given(st.text(max_size=200))
def test_hl7_parsers_never_fail_unexpectedly(value: str) -> None:
    parse_cx(value)
    parse_xcn(value)
    parse_xon_name(value)
    unescape(value)
    try:
        instant = parse_dtm(value)
    except ValueError:
        return
    assert instant.tzinfo is not None
