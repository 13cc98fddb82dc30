"""DN strings: the forms found in ANS's list, comparison with certificate names, hostile input."""

from __future__ import annotations

import contextlib
import re

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID
from hypothesis import given
from hypothesis import strategies as st

from pli.certs.names import (
    MAX_DN_ATTRIBUTES,
    MAX_DN_LENGTH,
    DnSyntaxError,
    dn_key,
    dn_string,
    dns_equal,
    parse_dn,
)

CN, OU, ORG, ST, C = "2.5.4.3", "2.5.4.11", "2.5.4.10", "2.5.4.8", "2.5.4.6"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (  # the list's most common row
            "CN=medimail-asip.mipih.fr,OU=318310021300028,O=GIP MIPIH,ST=Haute-Garonne (31),C=FR",
            [
                [(CN, "medimail-asip.mipih.fr")],
                [(OU, "318310021300028")],
                [(ORG, "GIP MIPIH")],
                [(ST, "Haute-Garonne (31)")],
                [(C, "FR")],
            ],
        ),
        (  # RFC 2253 quoting, as the list writes values with double spaces
            'CN=mss.ch-cadillac.fr,O="C.H. DE  CADILLAC",C=FR',
            [[(CN, "mss.ch-cadillac.fr")], [(ORG, "C.H. DE  CADILLAC")], [(C, "FR")]],
        ),
        (  # unescaped quotes inside a value (also in the list)
            'O=CRLCC "PAUL STRAUSS",C=FR',
            [[(ORG, 'CRLCC "PAUL STRAUSS"')], [(C, "FR")]],
        ),
        ('O="A, B; C+D",C=FR', [[(ORG, "A, B; C+D")], [(C, "FR")]]),
        (r"CN=a\,b\+c\;d\\e\"f,C=FR", [[(CN, 'a,b+c;d\\e"f')], [(C, "FR")]]),
        (r"CN=Am\C3\A9lie", [[(CN, "Amélie")]]),
        (r"CN=\ lead\ ", [[(CN, " lead ")]]),
        ("CN=#0C03616263", [[(CN, "abc")]]),
        ("CN=#04020102", [[(CN, "#04020102")]]),  # not a string type: kept as its bytes
        ("cn = x , ou=y;o=z", [[(CN, "x")], [(OU, "y")], [(ORG, "z")]]),
        ("OID.2.5.4.3=x+2.5.4.11=y", [[(CN, "x"), (OU, "y")]]),
        (
            "SERIALNUMBER=810003461033,GN=Jean,SN=DUPONT",
            [[("2.5.4.5", "810003461033")], [("2.5.4.42", "Jean")], [("2.5.4.4", "DUPONT")]],
        ),
        ("", []),
        ("   ", []),
        ("CN=", [[(CN, "")]]),
    ],
)
def test_parse_dn_reads_every_form_in_use(text: str, expected: list[list[tuple[str, str]]]) -> None:
    assert parse_dn(text) == tuple(tuple(rdn) for rdn in expected)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("CN", "at offset 2: expected an attribute such as 'CN=…', found end of text"),
        ("XX=1", "at offset 0: expected an attribute type"),
        ("CN=a,", "at offset 5: expected an attribute such as 'CN=…'"),
        ('CN="abc', "at offset 7: expected a closing '\"'"),
        ('CN="a"b', "at offset 6: expected ',' or '+' after the value"),
        ("CN=a\\", "at offset 5: expected a character or two hexadecimal digits after '\\'"),
        ("CN=#abc", "at offset 7: expected an even number of hexadecimal digits after '#'"),
        ("CN=#", "at offset 4: expected an even number of hexadecimal digits"),
        (r"CN=\ff", "before offset 6: escaped bytes are not UTF-8"),
        ("=x", "at offset 0: expected an attribute type"),
        ("C N=x", "at offset 0: expected an attribute type"),
    ],
)
def test_parse_dn_names_the_offset_of_the_problem(text: str, message: str) -> None:
    with pytest.raises(DnSyntaxError) as refused:
        parse_dn(text)
    assert str(refused.value).startswith(message)


def test_limits_bound_the_work() -> None:
    with pytest.raises(DnSyntaxError, match=f"longer than {MAX_DN_LENGTH}"):
        parse_dn("CN=" + "a" * MAX_DN_LENGTH)
    parse_dn("CN=" + "a" * (MAX_DN_LENGTH - 3))
    with pytest.raises(DnSyntaxError, match=f"more than {MAX_DN_ATTRIBUTES} attributes"):
        parse_dn(",".join(["C=FR"] * (MAX_DN_ATTRIBUTES + 1)))
    assert len(parse_dn(",".join(["C=FR"] * MAX_DN_ATTRIBUTES))) == MAX_DN_ATTRIBUTES


@pytest.mark.parametrize(
    "variant",
    [
        "CN=medimail-asip.mipih.fr,OU=318310021300028,O=GIP MIPIH,ST=Haute-Garonne (31),C=FR",
        "C=FR,ST=Haute-Garonne (31),O=GIP MIPIH,OU=318310021300028,CN=medimail-asip.mipih.fr",
        "cn=MEDIMAIL-ASIP.mipih.fr, ou=318310021300028, o=gip  mipih, st=haute-garonne (31), c=fr",
        "2.5.4.3=medimail-asip.mipih.fr;OU=318310021300028;O=GIP MIPIH;S=Haute-Garonne (31);C=FR",
        'CN=medimail-asip.mipih.fr,OU=318310021300028,O="GIP MIPIH",ST=Haute-Garonne (31),C=FR',
        r"CN=medimail\2Dasip.mipih.fr,OU=318310021300028,O=GIP MIPIH,ST=Haute-Garonne (31),C=FR",
    ],
)
def test_order_spacing_and_case_do_not_matter(variant: str) -> None:
    written = "CN=medimail-asip.mipih.fr,OU=318310021300028,O=GIP MIPIH,ST=Haute-Garonne (31),C=FR"
    assert dn_key(variant) == dn_key(written)


def test_a_different_value_is_a_different_dn() -> None:
    base = "CN=mss.ch-orthez.fr,OU=1640780813,O=CH ORTHEZ,C=FR"
    assert not dns_equal(base, "CN=mss.ch-orthez.fr,OU=1640780814,O=CH ORTHEZ,C=FR")
    assert not dns_equal(base, "CN=mss.ch-orthez.fr,OU=1640780813,O=CH ORTHEZ")  # C missing
    assert not dns_equal(base, base + ",L=Orthez")  # one attribute more
    assert not dns_equal("O=A,OU=B", "O=B,OU=A")  # values stay with their attribute


def _name(*pairs: tuple[x509.ObjectIdentifier, str]) -> x509.Name:
    return x509.Name([x509.NameAttribute(oid, value) for oid, value in pairs])


def test_a_certificate_name_compares_equal_to_the_string_the_list_writes() -> None:
    subject = _name(
        (NameOID.COUNTRY_NAME, "FR"),
        (NameOID.STATE_OR_PROVINCE_NAME, "Haute-Garonne (31)"),
        (NameOID.ORGANIZATION_NAME, "GIP MIPIH"),
        (NameOID.ORGANIZATIONAL_UNIT_NAME, "318310021300028"),
        (NameOID.COMMON_NAME, "medimail-asip.mipih.fr"),
    )
    written = "CN=medimail-asip.mipih.fr,OU=318310021300028,O=GIP MIPIH,ST=Haute-Garonne (31),C=FR"
    assert dn_string(subject) == written
    assert dns_equal(subject, written)


def test_quoted_values_with_inner_spaces_match_a_single_spaced_certificate() -> None:
    # RFC 4518 §2.6.1: inner runs of spaces are insignificant.
    subject = _name((NameOID.ORGANIZATION_NAME, "C.H. DE CADILLAC"), (NameOID.COUNTRY_NAME, "FR"))
    assert dns_equal(subject, 'O="C.H. DE  CADILLAC",C=FR')
    quoted = _name(
        (NameOID.ORGANIZATION_NAME, 'CRLCC "PAUL STRAUSS"'), (NameOID.COUNTRY_NAME, "FR")
    )
    assert dns_equal(quoted, 'O=CRLCC "PAUL STRAUSS",C=FR')
    assert dns_equal(quoted, r"O=CRLCC \"PAUL STRAUSS\",C=FR")


def test_igc_sante_attributes_are_written_with_their_short_names() -> None:
    subject = _name(
        (NameOID.COUNTRY_NAME, "FR"),
        (NameOID.SURNAME, "DUPONT"),
        (NameOID.GIVEN_NAME, "Jean"),
        (NameOID.SERIAL_NUMBER, "810003461033"),
        (NameOID.COMMON_NAME, "810003461033"),
    )
    text = dn_string(subject)
    assert text == "CN=810003461033,SERIALNUMBER=810003461033,GN=Jean,SN=DUPONT,C=FR"
    assert dn_key(text) == dn_key(subject)


_ATTRIBUTES = [
    NameOID.COMMON_NAME,
    NameOID.ORGANIZATIONAL_UNIT_NAME,
    NameOID.ORGANIZATION_NAME,
    NameOID.STATE_OR_PROVINCE_NAME,
    NameOID.LOCALITY_NAME,
    NameOID.SERIAL_NUMBER,
    NameOID.SURNAME,
    NameOID.GIVEN_NAME,
    NameOID.TITLE,
    NameOID.ORGANIZATION_IDENTIFIER,
    NameOID.DOMAIN_COMPONENT,
    NameOID.USER_ID,
]
_VALUE = st.text(
    alphabet=st.characters(blacklist_categories=["Cs", "Cc"]), min_size=1, max_size=20
).filter(lambda value: value.strip() == value and value.strip())


@given(st.lists(st.tuples(st.sampled_from(_ATTRIBUTES), _VALUE), min_size=1, max_size=8))
def test_any_certificate_name_survives_the_string_form(
    pairs: list[tuple[x509.ObjectIdentifier, str]],
) -> None:
    name = _name(*pairs)
    assert dn_key(dn_string(name)) == dn_key(name)


@given(st.text(max_size=300))
def test_any_text_parses_or_is_refused_with_a_syntax_error(text: str) -> None:
    try:
        dn_key(text)
    except DnSyntaxError as error:
        assert re.search(r"offset \d+|longer than|more than|UTF-8", str(error))


@given(st.text(alphabet='CNOU=,+;"\\# \t#0123456789abcdefAé', max_size=60))
def test_dn_shaped_noise_parses_or_is_refused_with_a_syntax_error(text: str) -> None:
    with contextlib.suppress(DnSyntaxError):
        parse_dn(text)
