"""BINARY (RFC 3516): decoded part contents, their sizes, literal8 for NUL octets, APPEND of a
literal8 with binary parts, and the quoted-printable decoding rules of RFC 2045 §6.7."""

from __future__ import annotations

import base64

from hypothesis import given
from hypothesis import strategies as st
from plitest.imap import InMemoryImap

from pli.mailbox.imap import commands as c
from pli.mailbox.imap.fetch import FetchBinarySize, FetchBody, Section
from pli.mailbox.imap.parser import parse_command
from pli.mailbox.imap.session.sections import (
    UnknownEncoding,
    base64_content,
    decoded,
    extract,
    quoted_printable,
)
from pli.mailbox.mime.structure import parse_structure
from pli.mailbox.store import Account, DeliveryTarget, Store

PAYLOAD = b"%PDF\x00\x01binary\xff"
MESSAGE = (
    b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
    b"--b\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\ncaf=C3=A9 =\r\nau lait  \r\n"
    b"--b\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    + base64.encodebytes(PAYLOAD)
    + b"--b\r\nContent-Transfer-Encoding: x-unknown\r\n\r\nzzz\r\n--b--\r\n"
)


def test_binary_attributes_parse() -> None:
    command = parse_command([b"a FETCH 1 (BINARY.PEEK[1]<0.4> BINARY[] BINARY.SIZE[2.1])"])
    assert isinstance(command, c.Fetch)
    assert command.attributes == (
        FetchBody(Section((1,)), peek=True, partial=(0, 4), binary=True),
        FetchBody(Section(), binary=True),
        FetchBinarySize(Section((2, 1))),
    )


def test_quoted_printable_drops_padding_and_joins_soft_breaks() -> None:
    assert quoted_printable(b"a  \r\nb=\r\nc =\t\r\n=3D=\r\nd\r\n") == b"a\r\nbc =d\r\n"
    assert quoted_printable(b"=4x =ZZ end") == b"=4x =ZZ end"  # kept as it is


async def test_binary_fetch(store: Store, account: Account, imap: InMemoryImap) -> None:
    await store.messages.deliver(MESSAGE, [DeliveryTarget(account.id)])
    await imap.command("SELECT INBOX")
    sizes = await imap.command("FETCH 1 (BINARY.SIZE[1] BINARY.SIZE[2])")
    assert sizes.lines == [
        b"* 1 FETCH (BINARY.SIZE[1] %d BINARY.SIZE[2] %d)\r\n"
        % (len("café au lait".encode()), len(PAYLOAD))  # the last CRLF is the delimiter's
    ]
    text = await imap.command("FETCH 1 BINARY.PEEK[1]")
    assert text.lines == [b"* 1 FETCH (BINARY[1] {13}\r\ncaf\xc3\xa9 au lait)\r\n"]
    pdf = await imap.command("FETCH 1 BINARY.PEEK[2]<4.2>")
    assert pdf.lines == [b"* 1 FETCH (BINARY[2]<4> ~{2}\r\n\x00\x01)\r\n"]  # literal8: NUL
    assert (await imap.command("FETCH 1 BINARY.PEEK[9]")).lines == [
        b"* 1 FETCH (BINARY[9] NIL)\r\n"
    ]
    unknown = await imap.command("FETCH 1 BINARY.PEEK[3]")
    assert b"NO [UNKNOWN-CTE]" in unknown.tagged
    seen = await imap.command("FETCH 1 BINARY[1]")
    assert b"FLAGS (\\Recent \\Seen)" in seen.lines[0]  # BINARY sets \Seen like BODY


async def test_a_literal8_append_keeps_no_nul_in_the_stored_message(
    store: Store, account: Account, imap: InMemoryImap
) -> None:
    raw = (
        b"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n\r\n"
        + PAYLOAD
    )
    assert (await imap.command(b"APPEND INBOX ~{%d+}\r\n%b" % (len(raw), raw))).ok
    await imap.command("SELECT INBOX")
    body = await imap.command("FETCH 1 BODY.PEEK[1]")
    assert b"\x00" not in body.lines[0]
    decoded = await imap.command("FETCH 1 BINARY.PEEK[1]")
    assert decoded.lines == [b"* 1 FETCH (BINARY[1] ~{%d}\r\n%b)\r\n" % (len(PAYLOAD), PAYLOAD)]


@given(st.binary(max_size=200))
def test_base64_and_quoted_printable_decode_anything(body: bytes) -> None:
    assert isinstance(base64_content(body), bytes)
    assert isinstance(quoted_printable(body), bytes)
    assert base64_content(base64.encodebytes(body)) == body  # and undo what encoding did


@given(st.binary(max_size=300), st.lists(st.integers(0, 4), max_size=4), st.booleans())
def test_sections_of_any_message_never_raise_but_unknown_encoding(
    raw: bytes, part: list[int], binary: bool
) -> None:
    structure = parse_structure(raw)
    section = Section(tuple(part))
    try:
        result = decoded(raw, structure, section) if binary else extract(raw, structure, section)
    except UnknownEncoding:
        return
    assert result is None or isinstance(result, bytes)
