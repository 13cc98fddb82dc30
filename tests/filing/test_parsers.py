"""The pure pieces, table-tested and held by Hypothesis to "no exception but the named one":
transfer decoding, Retry-After, the reading of the store's answers, idempotency keys, the
documents built from any bytes, the header facts."""

from __future__ import annotations

import base64
import quopri
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from plitest.filing import PDF, xdm_message
from plitest.store import build_message
from plitest.xdm import XdmDoc, cda_document

from pli.mailbox.filing.client import Filed, Refused, TryLater, classify, parse_retry_after
from pli.mailbox.filing.documents import Prepared, Sender, prepare, text_field
from pli.mailbox.filing.keys import actor_id, idempotency_key, source_key
from pli.mailbox.filing.limits import IDEMPOTENCY_KEY_LENGTH, MAX_RETRY_AFTER, NAME_LENGTH
from pli.mailbox.filing.source import UndecodableBody, decode_body, message_facts

NOW = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
ENCODINGS = ["base64", "BASE64", "quoted-printable", "7bit", "8bit", "binary", "", "x-uuencode"]


@pytest.mark.parametrize(
    ("encoded", "expected"),
    [
        (base64.encodebytes(PDF), PDF),
        (base64.b64encode(PDF).replace(b"=", b""), PDF),  # padding missing
        (b"JVBE\r\nRi0x\r\n", b"%PDF-1"),
        (b"JVBE*Ri0x!!\n", b"%PDF-1"),  # outside the alphabet: ignored (RFC 2045 §6.8)
        (b"QUJD\nRA==\nRUY=\n", b"ABCDEF"),  # padding in the middle (two encodings joined)
        (b"QUJDR", b"ABC"),  # a last sextet that makes no byte
        (b"", b""),
    ],
)
def test_base64_bodies_are_decoded_leniently(encoded: bytes, expected: bytes) -> None:
    assert decode_body(encoded, "base64") == expected


def test_quoted_printable_and_identity_bodies() -> None:
    text = "Résultat : normal =\n".encode("latin-1") * 50
    assert decode_body(quopri.encodestring(text), "Quoted-Printable") == text
    assert decode_body(b"=ZZ broken =\n", "quoted-printable") == b"=ZZ broken "
    for identity in ("7bit", "8BIT", "binary", ""):
        assert decode_body(b"\x00\xff as is", identity) == b"\x00\xff as is"
    with pytest.raises(UndecodableBody, match="x-uuencode"):
        decode_body(b"begin 644 a", "x-uuencode")


@given(st.binary(max_size=2000), st.sampled_from(ENCODINGS))
def test_decoding_any_body_gives_bytes_or_the_named_refusal(data: bytes, encoding: str) -> None:
    try:
        assert isinstance(decode_body(data, encoding), bytes)
    except UndecodableBody:
        assert encoding == "x-uuencode"


@given(st.binary(max_size=3000))
def test_base64_round_trips(data: bytes) -> None:
    assert decode_body(base64.encodebytes(data), "base64") == data


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("7", 7.0),
        (" 120 ", 120.0),
        ("0", 0.0),
        ("999999999999999999999", MAX_RETRY_AFTER),
        ("-5", None),
        ("1.5", None),
        ("soon", None),
        ("", None),
        (None, None),
        (format_datetime(NOW + timedelta(seconds=90), usegmt=True), 90.0),
        (format_datetime(NOW - timedelta(days=1), usegmt=True), 0.0),
        (format_datetime(NOW + timedelta(days=3), usegmt=True), MAX_RETRY_AFTER),
        ("Sun, 06 Nov 1994 08:49:37", 0.0),  # no zone: taken as UTC, long past
    ],
)
def test_retry_after_is_seconds_or_a_date_within_bounds(
    value: str | None, expected: float | None
) -> None:
    assert parse_retry_after(value, NOW) == expected


@given(st.text(max_size=80))
def test_any_retry_after_is_none_or_within_bounds(value: str) -> None:
    found = parse_retry_after(value, NOW)
    assert found is None or 0 <= found <= MAX_RETRY_AFTER


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (201, b'{"id": "d1"}', Filed("d1", created=True)),
        (200, b'{"id": "d1"}', Filed("d1", created=False)),
        (200, b'{"id": ""}', TryLater("200 without a document id", status=200)),
        (201, b"not json", TryLater("201 without a document id", status=201)),
        (
            409,
            b'{"reason": "idempotency-key-reused", "detail": "d"}',
            Refused(409, "idempotency-key-reused", "d"),
        ),
        (409, b'{"reason": "busy"}', TryLater("409 busy", status=409)),
        (
            410,
            b'{"reason": "document-deleted", "detail": "gone"}',
            Refused(410, "document-deleted", "gone"),
        ),
        (415, b"[]", Refused(415, "store-refused", "")),
        (401, b'{"reason": "unauthenticated"}', TryLater("401 unauthenticated", status=401)),
        (503, b"", TryLater("503 no reason", status=503)),
        (302, b"", TryLater("unexpected status 302", status=302)),
    ],
)
def test_answers_are_read_as_filed_later_or_refused(
    status: int, body: bytes, expected: object
) -> None:
    assert classify(status, None, body, NOW) == expected


@given(
    st.integers(100, 599),
    st.one_of(st.none(), st.text(max_size=40)),
    st.one_of(
        st.binary(max_size=300),
        st.builds(str.encode, st.from_regex(r'\{"(id|reason|detail)": ?.{0,20}\}')),
    ),
)
def test_any_answer_is_read_without_error(
    status: int, retry_after: str | None, body: bytes
) -> None:
    outcome = classify(status, retry_after, body, NOW)
    assert isinstance(outcome, Filed | TryLater | Refused)
    if isinstance(outcome, Filed):
        assert status in (200, 201)
    if isinstance(outcome, Refused):
        assert 400 <= outcome.status < 500


@given(st.text(max_size=1500), st.text(max_size=300), st.integers(0, 5))
def test_idempotency_keys_are_header_safe_bounded_and_stable(
    source: str, part: str, generation: int
) -> None:
    digest = "ab" * 32
    key = idempotency_key(source, part, digest, generation)
    assert key.isascii() and key.isprintable() and " " not in key
    assert 0 < len(key) <= IDEMPOTENCY_KEY_LENGTH
    assert key == idempotency_key(source, part, digest, generation)


def test_keys_name_the_source_the_part_the_content_and_the_generation() -> None:
    base = idempotency_key("m@x", "2", "ab" * 32, 0)
    assert base == "pli:m@x#2@" + "ab" * 16
    assert idempotency_key("m@x", "2", "ab" * 32, 1) == base + "~1"
    others = {
        idempotency_key("m@y", "2", "ab" * 32, 0),
        idempotency_key("m@x", "3", "ab" * 32, 0),
        idempotency_key("m@x", "2", "cd" * 32, 0),
    }
    assert base not in others and len(others) == 3
    assert idempotency_key("é@x", "2", "ab" * 32, 0).startswith("pli:sha256:")
    assert source_key("m@x", "2") != source_key("m@x#2", "")  # no ambiguity in the join
    assert actor_id("146026322000196", "x") == "146026322000196"
    assert actor_id("with space", "fallback") == "fallback"


def test_text_fields_lose_control_characters_and_are_cut() -> None:
    assert text_field("Compte\r\nrendu\t\x00 final\x7f", 100) == "Compte rendu final"
    assert text_field("x" * 2000, 1024) == "x" * 1024
    assert text_field(None, 10) == "" and text_field("   ", 10) == ""


def test_the_header_facts_of_a_message() -> None:
    raw = build_message(
        sender='"Dr =?utf-8?q?J=C3=A9r=C3=B4me?= Petit" <J.Petit@CH-X.mssante.fr>',
        subject="=?utf-8?q?R=C3=A9sultats?=",
        headers={"X-MSS-CODECDA": "11490-0", "X-MSS-INS": "O"},
    )
    facts = message_facts(raw)
    assert (facts.sender, facts.sender_domain) == ("j.petit@ch-x.mssante.fr", "ch-x.mssante.fr")
    assert facts.sender_name == "Dr Jérôme Petit"
    assert facts.subject == "Résultats"
    assert (facts.codecda, facts.ins_flag) == ("11490-0", "O")
    assert facts.sent_at is not None
    assert message_facts(b"no header at all").sender == ""


def with_attachment(name: str, body: bytes, encoding: str) -> bytes:
    """A two-part message (text, then the attachment) built without randomness."""
    encoded = base64.encodebytes(body) if encoding == "base64" else body
    return (
        b"From: a@hopital-demo.mssante.fr\r\nMIME-Version: 1.0\r\n"
        b"Content-Type: multipart/mixed; boundary=B\r\n\r\n"
        b"--B\r\nContent-Type: text/plain\r\n\r\nhi\r\n--B\r\n"
        b"Content-Type: application/zip\r\nContent-Disposition: attachment; filename="
        + name.encode()
        + b"\r\nContent-Transfer-Encoding: "
        + encoding.encode()
        + b"\r\n\r\n"
        + encoded
        + b"\r\n--B--\r\n"
    )


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.one_of(
        st.binary(max_size=3000),
        st.builds(
            lambda body, name, encoding: with_attachment(name, body, encoding),
            st.binary(max_size=2000),
            st.sampled_from(["IHE_XDM.zip", "a.pdf"]),
            st.sampled_from(["base64", "quoted-printable", "binary", "x-unknown"]),
        ),
    ),
    st.sampled_from(["1", "2", "3", "1.1", "2.1", "", "0"]),
)
def test_preparing_any_bytes_gives_documents_or_a_refusal_never_an_exception(
    raw: bytes, part: str
) -> None:
    prepared = prepare(
        raw, part, ins="146026322000196", message_id="", facts=message_facts(raw), sender=Sender("")
    )
    assert isinstance(prepared, Prepared)
    assert prepared.documents or prepared.refusal is not None
    for document in prepared.documents:
        assert len(document.fields["sha256"]) == 64 and document.fields["title"]


def test_a_package_entry_with_a_name_too_long_for_the_store_is_named_by_its_position() -> None:
    long_name = "L" * 246 + ".XML"
    raw = xdm_message(docs=[XdmDoc(cda_document("146026322000196"), name=long_name)])
    prepared = prepare(
        raw,
        "2",
        ins="146026322000196",
        message_id="m@x",
        facts=message_facts(raw),
        sender=Sender(""),
    )
    assert prepared.refusal is None
    [document] = prepared.documents
    assert len("2/IHE_XDM/SUBSET01/" + long_name) > NAME_LENGTH
    assert document.fields["source_part"] == document.source_part == "2/#1"
