"""MAIL and RCPT arguments: paths and ESMTP parameters (RFC 5321, 1870, 6152, 6531, 3461, 4954);
hypothesis: the only exception that escapes is SmtpError."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pli.mailgateway.smtp.params import (
    MailParams,
    RcptParams,
    parse_mail,
    parse_rcpt,
    xtext_decode,
    xtext_encode,
)
from pli.mailgateway.smtp.replies import SmtpError


def refusal(call: object, *args: object, **kwargs: object) -> str:
    with pytest.raises(SmtpError) as error:
        call(*args, **kwargs)  # type: ignore[operator]
    return error.value.reply.line


def test_a_plain_sender_and_the_null_path() -> None:
    assert parse_mail("FROM:<Dr.Martin@Hopital-Demo.MSSante.fr>") == (
        "Dr.Martin@hopital-demo.mssante.fr",
        MailParams(),
    )
    assert parse_mail("FROM:<>") == ("", MailParams())
    assert parse_mail("from: <a@b.fr>") == ("a@b.fr", MailParams())  # space after ':' tolerated


def test_mail_parameters() -> None:
    _, params = parse_mail(
        "FROM:<a@b.fr> SIZE=1000 BODY=8BITMIME SMTPUTF8 RET=HDRS ENVID=QQ+2B1 AUTH=<>"
    )
    assert params == MailParams(
        size=1000, body="8BITMIME", smtputf8=True, ret="HDRS", envid="QQ+1", auth="<>"
    )


@pytest.mark.parametrize(
    ("argument", "expected"),
    [
        ("FROM:a@b.fr", "501 5.5.2 Address must be enclosed in <>"),
        ("FROM:<a@b.fr>SIZE=1", "501 5.5.2 Expected a space before parameters"),
        ("FROM:<a@b.fr> SIZE=x", "501 5.5.2 SIZE must be a number"),
        ("FROM:<a@b.fr> SIZE=1 SIZE=2", "501 5.5.2 Parameter SIZE given twice"),
        ("FROM:<a@b.fr> BODY=BINARYMIME", "501 5.5.2 BODY must be 7BIT or 8BITMIME"),
        ("FROM:<a@b.fr> RET=ALL", "501 5.5.2 RET must be FULL or HDRS"),
        ("FROM:<a@b.fr> ENVID=a+zz", "501 5.5.2 Malformed xtext value"),
        ("FROM:<a@b.fr> XFOO=1", "555 5.5.4 Parameter XFOO not recognized"),
        ("FROM:<a@b@c.fr>", "553 5.1.7 Malformed sender address"),
        ("FROM:<é@b.fr>", "553 5.6.7 Non-ASCII address requires SMTPUTF8"),
        ("FROM:<" + "a" * 65 + "@b.fr>", "553 5.1.7 Local part longer than 64 octets"),
        ("TO:<a@b.fr>", "501 5.5.2 Syntax: FROM:<address> [parameters]"),
    ],
)
def test_mail_refusals(argument: str, expected: str) -> None:
    assert refusal(parse_mail, argument) == expected


def test_utf8_addresses_with_smtputf8() -> None:
    assert parse_mail("FROM:<élodie@hôpital.fr> SMTPUTF8")[0] == "élodie@hôpital.fr"
    assert parse_rcpt("TO:<josé@exemple.fr>", smtputf8=True)[0] == "josé@exemple.fr"


def test_source_routes_are_accepted_and_ignored() -> None:
    assert parse_mail("FROM:<@relay.fr,@other.fr:a@b.fr>")[0] == "a@b.fr"  # RFC 5321 §4.1.2


def test_rcpt_dsn_parameters() -> None:
    address, params = parse_rcpt("TO:<a@b.fr> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;a+2Bx@b.fr")
    assert address == "a@b.fr"
    assert params == RcptParams(notify=("SUCCESS", "FAILURE"), orcpt="rfc822;a+x@b.fr")
    assert parse_rcpt("TO:<a@b.fr> NOTIFY=NEVER")[1].notify == ("NEVER",)


@pytest.mark.parametrize(
    ("argument", "expected"),
    [
        (
            "TO:<a@b.fr> NOTIFY=NEVER,SUCCESS",
            "501 5.5.2 NOTIFY must be NEVER or SUCCESS,FAILURE,DELAY",
        ),
        (
            "TO:<a@b.fr> NOTIFY=SUCCESS,SUCCESS",
            "501 5.5.2 NOTIFY must be NEVER or SUCCESS,FAILURE,DELAY",
        ),
        ("TO:<a@b.fr> ORCPT=a@b.fr", "501 5.5.2 ORCPT must be addr-type;address"),
        ("TO:<a@b.fr> SIZE=1", "555 5.5.4 Parameter SIZE not recognized"),
        ("TO:<>", "553 5.1.3 Malformed address"),
        ("TO:<a@-bad-.fr>", "553 5.1.3 Malformed address"),
    ],
)
def test_rcpt_refusals(argument: str, expected: str) -> None:
    assert refusal(parse_rcpt, argument) == expected


def test_postmaster_without_a_domain() -> None:
    assert parse_rcpt("TO:<Postmaster>")[0] == "postmaster"  # RFC 5321 §4.5.1


def test_address_literals() -> None:
    assert parse_rcpt("TO:<a@[192.0.2.1]>")[0] == "a@[192.0.2.1]"
    assert parse_rcpt("TO:<a@[IPv6:2001:db8::1]>")[0] == "a@[ipv6:2001:db8::1]"
    assert refusal(parse_rcpt, "TO:<a@[300.0.0.1]>") == "553 5.1.3 Malformed address"


def test_quoted_local_parts() -> None:
    assert parse_rcpt('TO:<"john doe"@b.fr>')[0] == '"john doe"@b.fr'
    assert parse_rcpt('TO:<"a>b"@b.fr>')[0] == '"a>b"@b.fr'


@given(st.text(max_size=200))
def test_xtext_round_trips(text: str) -> None:
    encoded = xtext_encode(text)
    assert all("!" <= c <= "~" for c in encoded)
    assert xtext_decode(encoded) == text


@given(st.text(max_size=300))
def test_any_mail_argument_gives_a_result_or_a_protocol_error(text: str) -> None:
    with contextlib.suppress(SmtpError):
        parse_mail(text)


@given(st.text(max_size=300), st.booleans())
def test_any_rcpt_argument_gives_a_result_or_a_protocol_error(text: str, utf8: bool) -> None:
    with contextlib.suppress(SmtpError):
        parse_rcpt(text, smtputf8=utf8)


@given(
    st.from_regex(
        r"FROM:<[a-z.]{1,10}@[a-z]{1,10}\.fr>( [A-Z0-9=+;,.-]{0,30}){0,4}", fullmatch=True
    )
)
def test_near_valid_mail_arguments(text: str) -> None:
    try:
        parse_mail(text)
    except SmtpError as error:
        assert error.reply.code in (501, 553, 555)
