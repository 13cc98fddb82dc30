"""National identifiers, certificate subjects of each kind, and who a certificate names."""

from __future__ import annotations

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from plitest.pki import SessionPki

from pli.certs.identity import IdentityKind, identity
from pli.certs.names import dn_key
from pli.certs.profiles import (
    Holder,
    ProfileError,
    organisation_subject,
    person_national_id,
    person_subject,
    server_subject,
    structure_national_id,
)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("990000001", "1990000001"),  # FINESS → 1 + FINESS
        ("2A0000012", "12A0000012"),  # Corsica
        ("18310021300028", "318310021300028"),  # SIRET → 3 + SIRET
        ("1630013605", "1630013605"),  # already an idNat_Struct (the list's OUs)
        ("318310021300028", "318310021300028"),
        (" 990000001 ", "1990000001"),
    ],
)
def test_structure_identifiers(given: str, expected: str) -> None:
    assert structure_national_id(given) == expected


@pytest.mark.parametrize("bad", ["", "12345", "99000000X", "4990000001", "3183100213000280"])
def test_bad_structure_identifiers_are_refused(bad: str) -> None:
    with pytest.raises(ProfileError, match="is not a FINESS"):
        structure_national_id(bad)


def test_person_identifiers() -> None:
    assert person_national_id("10003461033") == "810003461033"
    assert person_national_id("810003461033") == "810003461033"
    assert person_national_id("0123456789") == "0123456789"  # 0 + ADELI
    for bad in ("1000346103", "710003461033", "RPPS"):
        with pytest.raises(ProfileError, match="is not an RPPS"):
            person_national_id(bad)


def test_subjects_have_the_whitelists_shape() -> None:
    holder = Holder("GIP MIPIH", "318310021300028", "Haute-Garonne (31)")
    server = server_subject("Medimail-Asip.mipih.fr.", holder)
    assert server.rfc4514_string() == (
        "CN=medimail-asip.mipih.fr,OU=318310021300028,O=GIP MIPIH,ST=Haute-Garonne (31),C=FR"
    )
    org = organisation_subject(
        "CLIENT_TEST_RORN", Holder("GIP - TEST3012", "1750000000", "Paris (75)")
    )
    assert org.rfc4514_string() == (
        "CN=CLIENT_TEST_RORN,OU=1750000000,O=GIP - TEST3012,ST=Paris (75),C=FR"
    )
    with pytest.raises(ProfileError, match="not a host name"):
        server_subject("not a host", holder)
    with pytest.raises(ProfileError, match="service name"):
        organisation_subject("  ", holder)
    with pytest.raises(ProfileError, match="surname and a given name"):
        person_subject("10003461033", "", "Jean")


def test_identity_of_an_operator(pki: SessionPki) -> None:
    credential = pki.issue_operator("smtp-1.operateur-test.fr")
    found = identity(credential.certificate)
    assert found.kind is IdentityKind.OPERATOR
    assert (
        found.dn
        == "CN=smtp-1.operateur-test.fr,OU=1990000001,O=PLI DEMO OPERATEUR,ST=Paris (75),C=FR"
    )
    assert found.dn_key == dn_key(found.dn)
    assert found.common_name == "smtp-1.operateur-test.fr"
    assert found.structure_id == "1990000001" and found.finess == "990000001"
    assert found.siret is None and found.rpps is None
    assert found.hostnames == ("smtp-1.operateur-test.fr",)
    assert found.label == "operator smtp-1.operateur-test.fr"
    assert len(found.fingerprint_sha256) == 64


def test_identity_of_a_person(pki: SessionPki) -> None:
    holder = Holder("CABINET DUPONT", structure_national_id("18310021300028"), "")
    credential = pki.issue_person(
        "10003461033", "Dupont", "Jean", holder=holder, emails=["jean.dupont@ch.mssante.fr"]
    )
    found = identity(credential.certificate)
    assert found.kind is IdentityKind.PERSON
    assert found.national_id == "810003461033"
    assert found.rpps == "10003461033"
    assert (found.surname, found.given_name) == ("DUPONT", "Jean")
    assert found.structure_id == "318310021300028" and found.siret == "18310021300028"
    assert found.emails == ("jean.dupont@ch.mssante.fr",)
    assert found.dn.startswith("CN=810003461033,GN=Jean,SN=DUPONT,")
    assert found.label == "person 810003461033"


def test_identity_of_an_organisation(pki: SessionPki) -> None:
    credential = pki.issue_org("990000001", "CH EXEMPLE", service="CR-AUTOMATIQUES")
    assert credential.certificate.extensions.get_extension_for_class is not None
    with pytest.raises(x509.ExtensionNotFound):  # ORG AUTH_CLI: no SAN
        credential.certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    found = identity(credential.certificate)
    assert found.kind is IdentityKind.ORGANISATION
    assert found.structure_id == "1990000001" and found.finess == "990000001"
    assert found.common_name == "CR-AUTOMATIQUES"
    assert found.organisation == "CH EXEMPLE"
    assert found.national_id is None and found.hostnames == ()
    assert found.label == "organisation 1990000001 CR-AUTOMATIQUES"


@pytest.mark.parametrize(
    ("attributes", "national_id"),
    [
        (
            [(NameOID.SERIAL_NUMBER, "810003461033"), (NameOID.COMMON_NAME, "Jean DUPONT")],
            "810003461033",
        ),
        ([(NameOID.COMMON_NAME, "810003461033/12345")], "810003461033"),
        ([(NameOID.USER_ID, "0123456789"), (NameOID.COMMON_NAME, "X")], "0123456789"),
        ([(NameOID.SURNAME, "DUPONT"), (NameOID.COMMON_NAME, "Jean DUPONT")], None),
    ],
)
def test_person_variants_are_recognised(
    pki: SessionPki, attributes: list[tuple[x509.ObjectIdentifier, str]], national_id: str | None
) -> None:
    subject = x509.Name(
        [x509.NameAttribute(NameOID.COUNTRY_NAME, "FR")]
        + [x509.NameAttribute(oid, value) for oid, value in attributes]
    )
    found = identity(pki.issue("person", subject).certificate)
    assert found.kind is IdentityKind.PERSON
    assert found.national_id == national_id


def test_organisation_identifier_attribute_is_read(pki: SessionPki) -> None:
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "FR"),
            x509.NameAttribute(NameOID.ORGANIZATION_IDENTIFIER, "318310021300028"),
            x509.NameAttribute(NameOID.COMMON_NAME, "APPLI"),
        ]
    )
    found = identity(pki.issue("org", subject).certificate)
    assert found.kind is IdentityKind.ORGANISATION
    assert found.siret == "18310021300028"


def test_a_server_usage_makes_an_operator_even_without_a_host_name_cn(pki: SessionPki) -> None:
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "PASSERELLE")])
    credential = pki.issue("server", subject, usages=(ExtendedKeyUsageOID.SERVER_AUTH,))
    assert identity(credential.certificate).kind is IdentityKind.OPERATOR
