"""ANS's whitelist: the real file, the questions it answers, and every way a list is refused."""

from __future__ import annotations

import contextlib
import datetime as dt

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from plitest.pki import SessionPki

from pli.certs.names import dn_key
from pli.certs.profiles import Holder
from pli.certs.whitelist import (
    MAX_SKIPPED_ENTRIES,
    Whitelist,
    WhitelistEntry,
    WhitelistError,
    parse_whitelist,
    render_whitelist,
)

MIPIH = "CN=medimail-asip.mipih.fr,OU=318310021300028,O=GIP MIPIH,ST=Haute-Garonne (31),C=FR"


@pytest.fixture(scope="module")
def real(real_list: bytes) -> Whitelist:
    return parse_whitelist(real_list)


def test_the_real_list_is_read_whole(real: Whitelist) -> None:
    assert real.generated_at == dt.datetime(2025, 3, 13, 14, 54, 10, tzinfo=dt.UTC)
    # 6,554 <Domaine> entries, one with a "domain" that is an address (left out, said why)
    assert len(real) + len(real.skipped) == 6554
    assert real.skipped == (
        "entry 6055: <Nom> 'sessad@ase.ditepbeziers.mssante.fr' is not a domain name",
    )
    assert real.domain_count == 5001  # 5,002 distinct names minus the bad one
    assert real.dn_count == 384  # 392 DN strings, some equal once normalised
    # ANS's file ends after </ListeDomaines>, its root element never closed
    assert real.root_unclosed


def test_real_rows_answer_the_questions(real: Whitelist) -> None:
    assert real.allows(MIPIH, "adsea29.mssante.fr")
    assert real.allows(MIPIH, "ADSEA29.MSSANTE.FR.")
    assert not real.allows(MIPIH, "zenidoc.mssante.fr")
    assert real.dns_for("zenidoc.mssante.fr") == (  # four servers of two operators
        "CN=smtp-1.sante.santnet.com,OU=341459958900028,O=DEDALUS HEALTHCARE FRANCE,"
        "ST=Gironde (33),C=FR",
        "CN=smtp-2.sante.santnet.com,OU=341459958900028,O=DEDALUS HEALTHCARE FRANCE,"
        "ST=Gironde (33),C=FR",
        "CN=smtp-1.mssante.adista.fr,OU=332315971500305,O=ADISTA,ST=Meurthe-et-Moselle (54),C=FR",
        "CN=smtp-2.mssante.adista.fr,OU=332315971500305,O=ADISTA,ST=Meurthe-et-Moselle (54),C=FR",
    )
    assert real.dns_for("patient.mssante.fr") == (
        "CN=smtps1.ens.atos-infogerance.fr,OU=318003502400041,O=CNAM,ST=Paris (75),C=FR",
        "CN=smtps2.ens.atos-infogerance.fr,OU=318003502400041,O=CNAM,ST=Paris (75),C=FR",
    )
    assert len(real.domains_for(MIPIH)) == 2768
    assert real.dns_for("nowhere.mssante.fr") == () and not real.has_domain("nowhere.mssante.fr")
    assert real.has_domain("mssante.apicrypt.org")  # one of the two non-.mssante.fr bridges


def _subject(*pairs: tuple[x509.ObjectIdentifier, str]) -> x509.Name:
    return x509.Name([x509.NameAttribute(oid, value) for oid, value in pairs])


def test_a_certificate_with_a_listed_subject_is_allowed(real: Whitelist, pki: SessionPki) -> None:
    holder = Holder("GIP MIPIH", "318310021300028", "Haute-Garonne (31)")
    from pli.certs.profiles import server_subject

    credential = pki.issue_operator("medimail-asip.mipih.fr", holder=holder)
    assert credential.dn == MIPIH
    assert real.allows(credential.certificate.subject, "adsea29.mssante.fr")
    assert real.allows(dn_key(credential.certificate.subject), "adsea29.mssante.fr")
    assert len(real.domains_for(server_subject("medimail-asip.mipih.fr", holder))) == 2768


def test_quoted_and_unquoted_rows_are_the_same_dn(real: Whitelist) -> None:
    # The list writes the same certificate twice: O="C.H. DE  CADILLAC" and O=C.H. DE  CADILLAC.
    quoted, plain = real.dns_for("ch-cadillac.mssante.fr")
    assert 'O="C.H. DE  CADILLAC"' in quoted and "O=C.H. DE  CADILLAC," in plain
    assert dn_key(quoted) == dn_key(plain)
    # the certificate's O may carry one space or two (RFC 4518: inner spaces insignificant)
    for organisation in ("C.H. DE CADILLAC", "C.H. DE  CADILLAC"):
        subject = _subject(
            (NameOID.COUNTRY_NAME, "FR"),
            (NameOID.STATE_OR_PROVINCE_NAME, "Gironde (33)"),
            (NameOID.ORGANIZATION_NAME, organisation),
            (NameOID.ORGANIZATIONAL_UNIT_NAME, "1330781295"),
            (NameOID.COMMON_NAME, "mss.ch-cadillac.fr"),
        )
        assert real.allows(subject, "ch-cadillac.mssante.fr")


def test_a_value_with_inner_quotes_matches_the_certificate(real: Whitelist) -> None:
    subject = _subject(
        (NameOID.COUNTRY_NAME, "FR"),
        (NameOID.STATE_OR_PROVINCE_NAME, "Bas-Rhin (67)"),
        (NameOID.ORGANIZATION_NAME, 'CRLCC "PAUL STRAUSS"'),
        (NameOID.ORGANIZATIONAL_UNIT_NAME, "1670000033"),
        (NameOID.COMMON_NAME, "mss.strasbourg.unicancer.fr"),
    )
    served = real.domains_for(subject)
    assert served and all(real.allows(subject, domain) for domain in served)
    assert not real.domains_for(subject.rfc4514_string().replace("PAUL", "PAULE"))


def test_two_certificates_of_one_operator_are_distinct(real: Whitelist) -> None:
    first, second = real.dns_for("patient.mssante.fr")
    assert real.allows(first, "patient.mssante.fr") and real.allows(second, "patient.mssante.fr")
    assert dn_key(first) != dn_key(second)


# -- refusals --------------------------------------------------------------------------------------


def _entry(
    domain: str = "a.mssante.fr", dn: str = "CN=mx.a.fr,OU=1990000001,O=A,C=FR"
) -> WhitelistEntry:
    return WhitelistEntry(domain, dn, "", "")


def _list(*entries: WhitelistEntry) -> bytes:
    return render_whitelist(list(entries), dt.datetime(2025, 1, 1, tzinfo=dt.UTC))


def test_a_rendered_list_reads_back() -> None:
    listed = parse_whitelist(_list(_entry(), _entry("b.mssante.fr", "CN=x & y <z>,C=FR")))
    assert not listed.root_unclosed and listed.skipped == ()
    assert listed.dns_for("b.mssante.fr") == ("CN=x & y <z>,C=FR",)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "the file is empty"),
        (b"  \n", "the file is empty"),
        (
            b"<html><body>502 Bad Gateway</body></html>",
            "root element is <html>, expected <ListeBlancheMSSante>",
        ),
        (b"not xml", "not well-formed XML at line 1, column 0"),
        (
            b'<ListeBlancheMSSante xmlns="https://listeblanche.mssante.fr/schema"><ListeDomaines>'
            b"<Domaine><Nom>a.mssante.fr</Nom><DNCertificatOperateur>CN=a</DNCertificatOperateur>"
            b"</Domaine></ListeDomaines></ListeBlancheMSSante>",
            "no <DateDeGeneration>",
        ),
        (
            b"<ListeBlancheMSSante><DateDeGeneration>hier</DateDeGeneration><ListeDomaines>"
            b"<Domaine><Nom>a.mssante.fr</Nom><DNCertificatOperateur>CN=a</DNCertificatOperateur>"
            b"</Domaine></ListeDomaines></ListeBlancheMSSante>",
            "<DateDeGeneration> 'hier' is not a date",
        ),
        (
            b"<ListeBlancheMSSante><DateDeGeneration>2025-01-01T00:00:00Z</DateDeGeneration>"
            b"</ListeBlancheMSSante>",
            "no <ListeDomaines>",
        ),
        (
            b"<ListeBlancheMSSante><DateDeGeneration>2025-01-01T00:00:00Z</DateDeGeneration>"
            b"<ListeDomaines></ListeDomaines></ListeBlancheMSSante>",
            "no usable <Domaine> entry",
        ),
    ],
)
def test_malformed_lists_are_refused_with_the_reason(data: bytes, reason: str) -> None:
    with pytest.raises(WhitelistError) as refused:
        parse_whitelist(data)
    assert str(refused.value).startswith(reason)


def test_entity_and_dtd_tricks_are_refused() -> None:
    bomb = (
        b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa">'
        b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>'
        b"<ListeBlancheMSSante><DateDeGeneration>&b;</DateDeGeneration></ListeBlancheMSSante>"
    )
    with pytest.raises(WhitelistError, match=r"forbidden XML construct \(DTDForbidden\)"):
        parse_whitelist(bomb)
    external = (
        b'<?xml version="1.0"?><!DOCTYPE l SYSTEM "http://127.0.0.1:1/x.dtd"><ListeBlancheMSSante/>'
    )
    with pytest.raises(WhitelistError, match="forbidden XML construct"):
        parse_whitelist(external)


def test_a_truncated_real_list_is_refused_wherever_it_is_cut(real_list: bytes) -> None:
    end = real_list.rindex(b"</ListeDomaines>")
    for cut in (200, len(real_list) // 2, end - 1, end + 5):
        with pytest.raises(WhitelistError, match="not well-formed XML"):
            parse_whitelist(real_list[:cut])
    # cut exactly where ANS's own file ends: accepted (see parse_whitelist)
    assert parse_whitelist(real_list[: end + len(b"</ListeDomaines>")]).root_unclosed


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.integers(min_value=0, max_value=4000))
def test_any_cut_of_a_list_is_refused_or_complete(cut: int) -> None:
    data = _list(*[_entry(f"d{i}.mssante.fr") for i in range(40)])
    closed_at = data.index(b"</ListeDomaines>") + len(b"</ListeDomaines>")
    try:
        listed = parse_whitelist(data[:cut])
    except WhitelistError:
        assert cut < closed_at
    else:
        assert cut >= closed_at and len(listed) == 40


@given(st.binary(max_size=600))
def test_any_bytes_are_a_list_or_a_whitelist_error(data: bytes) -> None:
    with contextlib.suppress(WhitelistError):
        parse_whitelist(data)


def test_bad_entries_are_left_out_up_to_a_bound() -> None:
    good = [_entry(f"ok{i}.mssante.fr") for i in range(10)]
    bad = [
        _entry("not a domain"),
        _entry("dn.mssante.fr", "CN"),
        WhitelistEntry("nodn.mssante.fr", "", "", ""),
    ]
    listed = parse_whitelist(_list(*good, *bad))
    assert len(listed) == 10
    assert listed.skipped == (
        "entry 11: <Nom> 'not a domain' is not a domain name",
        "entry 12: dn.mssante.fr: DN 'CN': at offset 2: expected an attribute such as 'CN=…', "
        "found end of text",
        "entry 13: nodn.mssante.fr: no <DNCertificatOperateur>",
    )
    too_many = [_entry(f"bad{i}") for i in range(MAX_SKIPPED_ENTRIES + 1)]
    with pytest.raises(WhitelistError, match=f"{MAX_SKIPPED_ENTRIES + 1} of 21 entries unusable"):
        parse_whitelist(_list(*good, *too_many))
    with pytest.raises(WhitelistError, match="no usable <Domaine> entry \\(first: entry 1: "):
        parse_whitelist(_list(_entry("bad")))


def test_lists_without_namespace_or_with_a_closed_root_are_read() -> None:
    plain = (
        b"<ListeBlancheMSSante><DateDeGeneration>2025-01-01T00:00:00</DateDeGeneration>"
        b"<ListeDomaines><Domaine><Nom>a.mssante.fr</Nom>"
        b"<DNCertificatOperateur>CN=a,C=FR</DNCertificatOperateur></Domaine>"
        b"</ListeDomaines></ListeBlancheMSSante>"
    )
    listed = parse_whitelist(plain)
    assert listed.generated_at.tzinfo is dt.UTC
    assert listed.allows("C=FR,CN=a", "a.mssante.fr")
