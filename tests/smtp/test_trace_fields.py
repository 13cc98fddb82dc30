"""Header fields dropped on raw bytes (every other byte kept) and the Return-Path of the final
delivery (RFC 5321 §4.4); hypothesis: only the named fields go, whatever the header holds."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pli.mailgateway.fields import drop_fields
from pli.mailgateway.smtp.trace import with_return_path

RETURN_PATH = frozenset({b"return-path"})


def test_return_path_first_and_the_message_own_removed_with_its_folding() -> None:
    message = (
        b"Return-Path: <forged@elsewhere.test>\r\n"
        b"Subject: s\r\n"
        b"RETURN-PATH :\r\n\t<folded@elsewhere.test>\r\n"
        b"X-Return-Path: kept\r\n"
        b"not a field line\r\n"
        b"\r\n"
        b"Return-Path: <in the body, kept>\r\n"
    )
    assert with_return_path(message, "dr.martin@hopital-demo.mssante.fr") == (
        b"Return-Path: <dr.martin@hopital-demo.mssante.fr>\r\n"
        b"Subject: s\r\n"
        b"X-Return-Path: kept\r\n"
        b"not a field line\r\n"
        b"\r\n"
        b"Return-Path: <in the body, kept>\r\n"
    )


def test_the_null_reverse_path_and_utf8_addresses() -> None:
    assert with_return_path(b"Subject: s\r\n\r\nbody\r\n", "") == (
        b"Return-Path: <>\r\nSubject: s\r\n\r\nbody\r\n"
    )
    assert with_return_path(b"\r\nbody only\r\n", "jérôme@exemple.fr").startswith(
        "Return-Path: <jérôme@exemple.fr>\r\n\r\nbody only".encode()
    )


@pytest.mark.parametrize("sender", ["a@b.test\r\nBcc: x@y.test", "a\n@b.test", "a\x00@b.test"])
def test_a_reverse_path_with_a_control_character_is_refused(sender: str) -> None:
    with pytest.raises(ValueError, match="control character"):
        with_return_path(b"Subject: s\r\n\r\n", sender)


def test_a_header_without_the_field_comes_back_as_it_is() -> None:
    message = b"Subject: s\r\nbroken\nline\r\n\r\nReturn-Path: <body>\r\n"
    assert drop_fields(message, RETURN_PATH) is message


_NAME = st.sampled_from([b"Subject", b"Return-Path", b"return-path", b"X-Return-Path", b"To"])
_VALUE = st.binary(max_size=20).map(lambda v: v.replace(b"\r", b"").replace(b"\n", b""))
_FIELD = st.tuples(_NAME, _VALUE, st.lists(_VALUE.map(lambda v: b"\t" + v), max_size=2))


@given(st.lists(_FIELD, max_size=8), st.binary(max_size=40))
def test_only_the_named_fields_go_every_other_byte_stays(
    fields: list[tuple[bytes, bytes, list[bytes]]], body: bytes
) -> None:
    def render(selected: list[tuple[bytes, bytes, list[bytes]]]) -> bytes:
        header = b"".join(
            name + b":" + value + b"\r\n" + b"".join(line + b"\r\n" for line in more)
            for name, value, more in selected
        )
        return header + b"\r\n" + body

    kept = [f for f in fields if f[0].lower() != b"return-path"]
    assert drop_fields(render(fields), RETURN_PATH) == render(kept)
