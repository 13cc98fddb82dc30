"""The IMAP cache parser: ENVELOPE, MIME tree with byte offsets, defensive on any input."""

from __future__ import annotations

import email
import email.policy
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from plitest.store import build_message

from pli.mailbox.mime.addresses import MAX_ADDRESSES, parse_address_list, parse_tokens
from pli.mailbox.mime.cache import MAX_REFERENCES, attachments, message_ids, parse_message
from pli.mailbox.mime.headers import MAX_FIELD_CHARS, MAX_HEADER_FIELDS, parse_header
from pli.mailbox.mime.structure import MAX_MIME_DEPTH, iter_parts, parse_structure
from pli.mailbox.mime.text import text_codec


def slice_of(raw: bytes, span: list[int]) -> bytes:
    return raw[span[0] : span[1]]


MULTIPART = (
    b"From: A <a@x.fr>\r\nTo: b@y.fr\r\nSubject: test\r\n"
    b'Content-Type: multipart/mixed; boundary="XX"\r\n\r\n'
    b"preamble\r\n"
    b"--XX\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nline one\r\nline two\r\n"
    b"--XX\r\nContent-Type: message/rfc822\r\n\r\n"
    b"From: inner@z.fr\r\nSubject: inner\r\n"
    b'Content-Type: multipart/alternative; boundary="YY"\r\n\r\n'
    b"--YY\r\nContent-Type: text/plain\r\n\r\nplain\r\n"
    b"--YY\r\nContent-Type: text/html\r\n\r\n<b>html</b>\r\n--YY--\r\n"
    b"\r\n--XX\r\nContent-Type: application/pdf; name=a.pdf\r\n"
    b'Content-Disposition: attachment; filename="r\xc3\xa9sultat.pdf"\r\n'
    b"Content-Transfer-Encoding: base64\r\nContent-Language: fr, en\r\n"
    b"Content-ID: <part3@x>\r\nContent-MD5: Q2hlY2sgSW50ZWdyaXR5IQ==\r\n\r\nJVBERg==\r\n"
    b"--XX--\r\nepilogue\r\n"
)


def test_multipart_offsets_are_byte_slices_of_each_section() -> None:
    root = parse_structure(MULTIPART)
    assert (root["type"], root["subtype"]) == ("multipart", "mixed")
    text, message, pdf = root["parts"]
    assert slice_of(MULTIPART, text["header"]) == b"Content-Type: text/plain; charset=utf-8\r\n\r\n"
    assert slice_of(MULTIPART, text["body"]) == b"line one\r\nline two"  # CRLF before -- excluded
    assert text["lines"] == 2 and text["size"] == len(b"line one\r\nline two")
    assert text["params"] == [["charset", "utf-8"]]
    inner = message["message"]
    assert slice_of(MULTIPART, inner["header"]).startswith(b"From: inner@z.fr")
    assert message["envelope"][1] == "inner"
    assert [p["subtype"] for p in inner["parts"]] == ["plain", "html"]
    assert slice_of(MULTIPART, inner["parts"][1]["body"]) == b"<b>html</b>"
    assert pdf["encoding"] == "BASE64"
    assert pdf["disposition"][0] == "attachment"
    assert pdf["language"] == ["fr", "en"]
    assert pdf["id"] == "<part3@x>" and pdf["md5"] == "Q2hlY2sgSW50ZWdyaXR5IQ=="
    assert slice_of(MULTIPART, pdf["body"]) == b"JVBERg=="
    sections = [number for number, _ in iter_parts(root)]
    assert sections == ["", "1", "2", "2.1", "2.2", "3"]


def test_sections_match_python_email_payloads() -> None:
    raw = build_message(attachments=[("a.bin", "application/octet-stream", b"\x00\x01" * 50)])
    root = parse_structure(raw)
    parsed = email.message_from_bytes(raw, policy=email.policy.compat32)
    ours = [part for _, part in iter_parts(root) if "parts" not in part]
    theirs = [part for part in parsed.walk() if not part.is_multipart()]
    assert len(ours) == len(theirs)
    for mine, reference in zip(ours, theirs, strict=True):
        body = slice_of(raw, mine["body"]).replace(b"\r\n", b"\n")
        assert body.rstrip(b"\n") == reference.get_payload().encode().replace(
            b"\r\n", b"\n"
        ).rstrip(b"\n")


def test_envelope_members_in_rfc3501_order_with_defaults_and_groups() -> None:
    raw = (
        b"Date: Mon, 7 Feb 1994 21:52:25 -0800\r\nSubject: =?utf-8?q?R=C3=A9sultat?=\r\n"
        b'From: "Martin, Claire" <claire@x.fr>\r\nTo: team: a@b.fr, B <b@c.fr>;, d@e.fr\r\n'
        b"In-Reply-To: <prev@x>\r\nMessage-ID: <id@x>\r\n\r\nbody"
    )
    envelope = parse_message(raw).envelope
    assert envelope[0] == "Mon, 7 Feb 1994 21:52:25 -0800"
    assert envelope[1] == "=?utf-8?q?R=C3=A9sultat?="  # encoded words left as they are
    assert envelope[2] == [["Martin, Claire", None, "claire", "x.fr"]]
    assert envelope[3] == envelope[2] and envelope[4] == envelope[2]  # RFC 3501 defaults
    assert envelope[5] == [
        [None, None, "team", None],
        [None, None, "a", "b.fr"],
        ["B", None, "b", "c.fr"],
        [None, None, None, None],
        [None, None, "d", "e.fr"],
    ]
    assert envelope[6] is None and envelope[7] is None
    assert envelope[8:] == ["<prev@x>", "<id@x>"]
    search = parse_message(raw).search
    assert search.subject == "résultat" and search.in_reply_to == "prev@x"


def test_eight_bit_header_bytes_survive_as_surrogate_escapes() -> None:
    raw = b"Subject: caf\xe9 \xff\r\n\r\nx"
    cache = parse_message(raw)
    assert cache.envelope[1].encode("utf-8", "surrogateescape") == b"caf\xe9 \xff"
    again = json.loads(cache.envelope_json())
    assert again[1].encode("utf-8", "surrogateescape") == b"caf\xe9 \xff"
    assert "\ufffd" in cache.search.subject  # search text is clean Unicode


def test_missing_boundary_and_missing_close_delimiter_are_best_effort() -> None:
    no_boundary = b"Content-Type: multipart/mixed\r\n\r\nhello\r\n"
    root = parse_structure(no_boundary)
    assert (root["type"], root["subtype"]) == ("text", "plain")
    unclosed = (
        b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\n\r\nfirst\r\n--b\r\n\r\nlast'
    )
    root = parse_structure(unclosed)
    assert [slice_of(unclosed, p["body"]) for p in root["parts"]] == [b"first", b"last"]


def test_lf_only_messages_and_headers_without_body() -> None:
    raw = (
        b"Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\n\nhi\n--b--\n"
    )
    root = parse_structure(raw)
    assert slice_of(raw, root["parts"][0]["body"]) == b"hi"
    only_header = parse_structure(b"Subject: x\r\n")
    assert only_header["body"] == [len(b"Subject: x\r\n")] * 2


def test_limits_on_hostile_headers() -> None:
    many = (
        b"".join(b"X-%d: v\r\n" % i for i in range(MAX_HEADER_FIELDS + 50))
        + b"Subject: late\r\n\r\n"
    )
    assert parse_header(many).first("subject") is None  # past the field limit
    huge = b"Subject: " + b"a" * (MAX_FIELD_CHARS * 3) + b"\r\n\r\n"
    assert len(parse_message(huge).envelope[1]) == MAX_FIELD_CHARS
    addresses = ", ".join(f"u{i}@x.fr" for i in range(MAX_ADDRESSES + 10))
    assert len(parse_address_list(addresses) or []) == MAX_ADDRESSES
    references = " ".join(f"<r{i}@x>" for i in range(MAX_REFERENCES * 2))
    raw = f"References: {references}\r\n\r\n".encode()
    kept = parse_message(raw).search.references
    assert (
        len(kept) == MAX_REFERENCES
        and kept[0] == "r0@x"
        and kept[-1] == f"r{MAX_REFERENCES * 2 - 1}@x"
    )


def test_nesting_beyond_the_limit_becomes_an_opaque_leaf() -> None:
    raw = b""
    for _ in range(MAX_MIME_DEPTH + 5):
        raw = b"Content-Type: message/rfc822\r\n\r\n" + raw
    raw += b"Subject: deep\r\n\r\nbody"
    root = parse_structure(raw)
    depth = 0
    part = root
    while "message" in part:
        part = part["message"]
        depth += 1
    assert depth == MAX_MIME_DEPTH
    assert (part["type"], part["subtype"]) == ("application", "octet-stream")


def test_attachments_listing_decodes_file_names() -> None:
    cache = parse_message(MULTIPART)
    found = attachments(cache.structure)
    assert [(a.section, a.filename, a.content_type) for a in found] == [
        ("3", "résultat.pdf", "application/pdf")
    ]
    rfc2231 = (
        b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
        b"--b\r\nContent-Type: text/plain\r\n\r\nx\r\n"
        b"--b\r\nContent-Type: application/pdf\r\n"
        b"Content-Disposition: attachment; filename*=utf-8''r%C3%A9sum%C3%A9.pdf\r\n"
        b"\r\nx\r\n--b--\r\n"
    )
    assert attachments(parse_message(rfc2231).structure)[0].filename == "résumé.pdf"


def test_message_ids() -> None:
    assert message_ids("<a@b> <c@d>") == ["a@b", "c@d"]
    assert message_ids("bare@id") == ["bare@id"]
    assert message_ids(None) == []


def _check_part(raw: bytes, part: dict, start: int, end: int) -> None:
    assert (
        start <= part["header"][0] <= part["header"][1] == part["body"][0] <= part["body"][1] <= end
    )
    assert part["size"] == part["body"][1] - part["body"][0]
    for child in part.get("parts", []):
        _check_part(raw, child, part["body"][0], part["body"][1])
    if "message" in part:
        _check_part(raw, part["message"], part["body"][0], part["body"][1])


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=3000))
def test_any_bytes_parse_without_exception_into_consistent_offsets(raw: bytes) -> None:
    cache = parse_message(raw)
    _check_part(raw, cache.structure, 0, len(raw))
    json.loads(cache.envelope_json())
    json.loads(cache.structure_json())
    assert len(cache.envelope) == 10


_line = st.sampled_from(
    [
        b"--b\r\n",
        b"--b--\r\n",
        b"--c\r\n",
        b"Content-Type: multipart/mixed; boundary=c\r\n",
        b"Content-Type: message/rfc822\r\n",
        b"Content-Type: text/plain\r\n",
        b"\r\n",
        b"\n",
        b"From: =?x?q?=FF?= <@a:b@c>\r\n",
        b"To: g: ;\r\n",
        b"Subject: \xff\xfe\r\n",
        b"text\r\n",
        b" folded\r\n",
        b"Content-Disposition: attachment; filename*0*=x'y'%ZZ\r\n",
    ]
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_line, max_size=60))
def test_mime_shaped_junk_parses_into_consistent_offsets(lines: list[bytes]) -> None:
    raw = b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n' + b"".join(lines)
    cache = parse_message(raw)
    _check_part(raw, cache.structure, 0, len(raw))
    attachments(cache.structure)
    for _, part in iter_parts(cache.structure):
        if "parts" in part:
            assert part["parts"], "a multipart always has at least one part"


@given(st.text(max_size=300))
def test_address_lists_never_raise_and_groups_balance(text: str) -> None:
    result = parse_address_list(text) or []
    depth = 0
    for address in result:
        assert len(address) == 4
        if address[3] is None:
            depth += 1 if address[2] is not None else -1
            assert depth in (0, 1)
        else:
            assert address[2]
    assert depth == 0


# Header values made of what the shortcuts of parse_address_list read, and what breaks them.
_address_like = st.text(alphabet=' \tab.Z9_-+@<>"(),:;\\é', max_size=40)


@settings(max_examples=500)
@given(st.one_of(_address_like, st.text(max_size=60)))
def test_address_lists_read_by_the_shortcuts_are_read_as_by_the_tokens(text: str) -> None:
    assert parse_address_list(text) == parse_tokens(text)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("dr.martin@hopital.mssante.fr", [[None, None, "dr.martin", "hopital.mssante.fr"]]),
        (" Jean  Dupont\t<j.d@x.fr> ", [["Jean Dupont", None, "j.d", "x.fr"]]),
        (
            "=?utf-8?q?J=C3=A9r=C3=B4me?= <j@x.fr>",
            [["=?utf-8?q?J=C3=A9r=C3=B4me?=", None, "j", "x.fr"]],
        ),
    ],
)
def test_the_common_address_shapes(value: str, expected: list[list[str | None]]) -> None:
    assert parse_address_list(value) == expected == parse_tokens(value)


def test_text_codec_falls_back_to_utf8_for_what_is_not_a_text_encoding() -> None:
    assert text_codec("ISO-8859-1") == "iso8859-1"
    assert text_codec(" Windows-1252 ") == "cp1252"
    assert text_codec(None) == "utf-8"
    for declared in ("x-unknown", "base64", "rot13", "iso-8859-1\x00", "utf-8\udc80", ""):
        assert text_codec(declared) == "utf-8", declared
