"""The shapes of IGC Santé certificates: national identifiers, subject names, extensions.

What is known (sources in docs/certs.md):

- IGC Santé (ANS) has one root per range ("gamme": ELEMENTAIRE, STANDARD, FORT), each with the
  intermediate CAs ``AC IGC-SANTE <GAMME> PERSONNES`` and ``… ORGANISATIONS``; server (SSL_SERV)
  and organisation (ORG AUTH_CLI) certificates come from ELEMENTAIRE ORGANISATIONS, CPS cards
  from FORT PERSONNES. The test chain ANS publishes is named ``TEST AC IGC-SANTE …``.
- Operator certificates, as the whitelist lists them: ``CN=<host>,OU=<structure id>,O=<name>,
  ST=<département (NN)>,C=FR``.
- Organisation (ORG AUTH_CLI) certificates have the same shape with a service name in CN
  (``CN=CLIENT_TEST_RORN,OU=33333333333,O=GIP - TEST3012,ST=Paris (75),C=FR``) and no SAN.
- National identifiers (ANS, "identifiant national"): a professional's ``idNat_PS`` is ``8`` +
  RPPS (11 digits) or ``0`` + ADELI; a structure's ``idNat_Struct`` is ``1`` + FINESS (9 digits)
  or ``3`` + SIRET (14 digits), both seen as OU in the whitelist.

What we decided (I, documented in docs/certs.md): a person certificate (CPS-like) carries
``CN=<idNat_PS>`` with ``SN``/``GN`` for the name and, when the person acts for a structure,
``O``/``OU`` like an organisation certificate. :mod:`pli.certs.identity` reads the identifier from
SERIALNUMBER, CN (``8…`` or ``8…/…``) or UID, so variants of the profile are still recognised.

This module builds names and extensions; it never signs (see :mod:`pli.certs.ca`).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID

CertificateKind = Literal["server", "operator", "person", "org"]
CERTIFICATE_KINDS: tuple[CertificateKind, ...] = ("server", "operator", "person", "org")

#: ANS national identifiers. RPPS: 11 digits; FINESS: 9 (the 2 first are the département, 2A/2B
#: allowed); SIRET: 14; ADELI: 9.
RPPS = re.compile(r"^[0-9]{11}$")
FINESS = re.compile(r"^[0-9][0-9AB][0-9]{7}$")
SIRET = re.compile(r"^[0-9]{14}$")
#: idNat_PS: 8 + RPPS, 0 + ADELI (ANS "Identification nationale principale du professionnel").
PERSON_NATIONAL_ID = re.compile(r"^(8[0-9]{11}|0[0-9]{9})$")
#: idNat_Struct: 1 + FINESS, 3 + SIRET (the OU of the whitelist's DNs).
STRUCTURE_NATIONAL_ID = re.compile(r"^(1[0-9][0-9AB][0-9]{7}|3[0-9]{14})$")
RPPS_PREFIX = "8"
FINESS_PREFIX = "1"
SIRET_PREFIX = "3"

_HOSTNAME = re.compile(
    r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$"
)


class ProfileError(ValueError):
    """An identifier or name that a certificate of this kind cannot carry."""


def structure_national_id(identifier: str) -> str:
    """The idNat_Struct of a FINESS (9 characters), a SIRET (14 digits) or an idNat_Struct
    already prefixed (``1…``: 10 characters, ``3…``: 15)."""
    value = identifier.strip().upper()
    if FINESS.match(value):
        return FINESS_PREFIX + value
    if SIRET.match(value):
        return SIRET_PREFIX + value
    if STRUCTURE_NATIONAL_ID.match(value):
        return value
    raise ProfileError(
        f"{identifier!r} is not a FINESS (9 characters), a SIRET (14 digits) or an "
        "idNat_Struct (1+FINESS, 3+SIRET)"
    )


def person_national_id(rpps: str) -> str:
    """The idNat_PS of an RPPS number (11 digits), or an idNat_PS given as such."""
    value = rpps.strip()
    if RPPS.match(value):
        return RPPS_PREFIX + value
    if PERSON_NATIONAL_ID.match(value):
        return value
    raise ProfileError(f"{rpps!r} is not an RPPS number (11 digits) or an idNat_PS (8+RPPS)")


def is_hostname(value: str) -> bool:
    return bool(_HOSTNAME.match(value.lower().rstrip(".")))


def _attributes(*pairs: tuple[x509.ObjectIdentifier, str | None]) -> x509.Name:
    """A name from (OID, value) pairs, most general first (C, ST, O, OU, …, CN), skipping the
    empty ones: written as RFC 4514 this reads CN first, like the whitelist."""
    return x509.Name([x509.NameAttribute(oid, value) for oid, value in pairs if value])


@dataclass(frozen=True)
class Holder:
    """Who a certificate is for, as the ``pli pki issue`` options describe it."""

    organisation: str
    structure_id: str  # idNat_Struct, already validated
    state: str = ""  # ST, e.g. "Paris (75)"


def server_subject(hostname: str, holder: Holder) -> x509.Name:
    """``CN=<host>,OU=<idNat_Struct>,O=<organisation>,ST=<state>,C=FR`` (the whitelist's shape);
    the same DN serves as server certificate and as operator (client) certificate."""
    if not is_hostname(hostname):
        raise ProfileError(f"{hostname!r} is not a host name")
    return _attributes(
        (NameOID.COUNTRY_NAME, "FR"),
        (NameOID.STATE_OR_PROVINCE_NAME, holder.state),
        (NameOID.ORGANIZATION_NAME, holder.organisation),
        (NameOID.ORGANIZATIONAL_UNIT_NAME, holder.structure_id),
        (NameOID.COMMON_NAME, hostname.lower().rstrip(".")),
    )


def organisation_subject(service: str, holder: Holder) -> x509.Name:
    """ORG AUTH_CLI-like: ``CN=<service or application>,OU=<idNat_Struct>,O=<name>,ST=…,C=FR``."""
    if not service.strip():
        raise ProfileError("an organisation certificate needs a service name (CN)")
    return _attributes(
        (NameOID.COUNTRY_NAME, "FR"),
        (NameOID.STATE_OR_PROVINCE_NAME, holder.state),
        (NameOID.ORGANIZATION_NAME, holder.organisation),
        (NameOID.ORGANIZATIONAL_UNIT_NAME, holder.structure_id),
        (NameOID.COMMON_NAME, service.strip()),
    )


def person_subject(
    rpps: str, surname: str, given_name: str, holder: Holder | None = None, title: str = ""
) -> x509.Name:
    """CPS-like: ``CN=<8+RPPS>,SN=<NOM>,GN=<Prénom>[,T=<profession>][,OU=<idNat_Struct>,
    O=<structure>],C=FR``."""
    national_id = person_national_id(rpps)
    if not surname.strip() or not given_name.strip():
        raise ProfileError("a person certificate needs a surname and a given name")
    return _attributes(
        (NameOID.COUNTRY_NAME, "FR"),
        (NameOID.ORGANIZATION_NAME, holder.organisation if holder else None),
        (NameOID.ORGANIZATIONAL_UNIT_NAME, holder.structure_id if holder else None),
        (NameOID.TITLE, title),
        (NameOID.SURNAME, surname.strip().upper()),
        (NameOID.GIVEN_NAME, given_name.strip()),
        (NameOID.COMMON_NAME, national_id),
    )


def ca_subject(common_name: str, organisation: str) -> x509.Name:
    """``CN=<name>,OU=IGC-SANTE TEST,O=<organisation>,C=FR`` (the shape of ANS's test CAs)."""
    return _attributes(
        (NameOID.COUNTRY_NAME, "FR"),
        (NameOID.ORGANIZATION_NAME, organisation),
        (NameOID.ORGANIZATIONAL_UNIT_NAME, "IGC-SANTE TEST"),
        (NameOID.COMMON_NAME, common_name),
    )


#: Extended key usages per kind: a server proves itself with serverAuth, everything that
#: connects as a client (operator MTA, person, organisation/application) with clientAuth.
KIND_USAGES: dict[CertificateKind, tuple[x509.ObjectIdentifier, ...]] = {
    "server": (ExtendedKeyUsageOID.SERVER_AUTH,),
    "operator": (ExtendedKeyUsageOID.CLIENT_AUTH,),
    "person": (ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.EMAIL_PROTECTION),
    "org": (ExtendedKeyUsageOID.CLIENT_AUTH,),
}


def subject_alternative_names(
    hostnames: tuple[str, ...] = (), emails: tuple[str, ...] = ()
) -> list[x509.GeneralName]:
    """DNS names (IP literals become IP addresses) and e-mail addresses for the SAN."""
    names: list[x509.GeneralName] = []
    for host in hostnames:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            if not is_hostname(host.removeprefix("*.")):  # a wildcard: left-most label only
                raise ProfileError(f"{host!r} is neither a host name nor an IP address") from None
            names.append(x509.DNSName(host.lower().rstrip(".")))
    names.extend(x509.RFC822Name(email) for email in emails)
    return names


def leaf_extensions(
    kind: CertificateKind,
    public_key: CertificatePublicKeyTypes,
    issuer: x509.Certificate,
    *,
    alternative_names: list[x509.GeneralName],
    ocsp_url: str = "",
    usages: tuple[x509.ObjectIdentifier, ...] | None = None,
) -> list[tuple[x509.ExtensionType, bool]]:
    """The extensions of an end-entity certificate, with their criticality (RFC 5280 §4.2)."""
    extensions: list[tuple[x509.ExtensionType, bool]] = [
        (x509.BasicConstraints(ca=False, path_length=None), True),
        # RFC 5280 §4.2.1.3: ECDHE-RSA signs (digitalSignature); RSA key transport enciphers
        (_key_usage(digital_signature=True, key_encipherment=True), True),
        (x509.ExtendedKeyUsage(list(KIND_USAGES[kind] if usages is None else usages)), False),
        (x509.SubjectKeyIdentifier.from_public_key(public_key), False),
        (_authority_key_identifier(issuer), False),
    ]
    if alternative_names:
        extensions.append((x509.SubjectAlternativeName(alternative_names), False))
    if ocsp_url:
        access = x509.AccessDescription(
            AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier(ocsp_url)
        )
        extensions.append((x509.AuthorityInformationAccess([access]), False))
    return extensions


def ca_extensions(
    public_key: CertificatePublicKeyTypes,
    issuer: x509.Certificate | None,
    *,
    path_length: int | None,
) -> list[tuple[x509.ExtensionType, bool]]:
    """A CA's extensions: basicConstraints and keyUsage critical (RFC 5280 §4.2.1.9, §4.2.1.3)."""
    extensions: list[tuple[x509.ExtensionType, bool]] = [
        (x509.BasicConstraints(ca=True, path_length=path_length), True),
        (_key_usage(digital_signature=True, key_cert_sign=True, crl_sign=True), True),
        (x509.SubjectKeyIdentifier.from_public_key(public_key), False),
    ]
    if issuer is not None:
        extensions.append((_authority_key_identifier(issuer), False))
    return extensions


def _key_usage(
    *,
    digital_signature: bool = False,
    key_encipherment: bool = False,
    key_cert_sign: bool = False,
    crl_sign: bool = False,
) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=False,
        key_encipherment=key_encipherment,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=key_cert_sign,
        crl_sign=crl_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _authority_key_identifier(issuer: x509.Certificate) -> x509.AuthorityKeyIdentifier:
    ski = issuer.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    return x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)
