"""Who a certificate names: an operator (a server of another MSSanté operator, or ours), a person
(a health professional, CPS-like, with an RPPS), or an organisation (an establishment, a service or
an applicative mailbox, ORG AUTH_CLI-like, with its FINESS/SIRET).

SMTP (which operator is this peer?), IMAP and submission (which professional or application is
authenticating with SASL EXTERNAL?) and the whitelist check all read a certificate through
:func:`identity`. It never decides whether the certificate is trusted: call
:meth:`pli.certs.verify.TrustStore.verify` first.

Classification, in order:

1. **person** when the subject carries an idNat_PS (``8``+RPPS or ``0``+ADELI) in SERIALNUMBER,
   UID or CN (alone or before a ``/``), or carries GN/SN;
2. **operator** when the certificate is for TLS servers (serverAuth) or its CN is a host name
   (dotted, or named in the SAN too: ``localhost``);
3. **organisation** otherwise.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from .names import DnKey, dn_key, dn_string
from .profiles import (
    FINESS_PREFIX,
    PERSON_NATIONAL_ID,
    RPPS_PREFIX,
    SIRET_PREFIX,
    STRUCTURE_NATIONAL_ID,
    is_hostname,
)


class IdentityKind(enum.StrEnum):
    OPERATOR = "operator"
    PERSON = "person"
    ORGANISATION = "organisation"


@dataclass(frozen=True)
class CertificateIdentity:
    """What a certificate says about its holder. Fields that do not apply are None/empty."""

    kind: IdentityKind
    dn: str  # RFC 4514, most specific first: the whitelist's form
    dn_key: DnKey  # for comparisons (pli.certs.names.dn_key)
    common_name: str | None
    organisation: str | None  # O
    structure_id: str | None  # idNat_Struct as found in OU/organizationIdentifier
    finess: str | None  # structure_id without its prefix when it is 1+FINESS
    siret: str | None  # … when it is 3+SIRET
    national_id: str | None  # a person's idNat_PS (8+RPPS, 0+ADELI)
    rpps: str | None  # 11 digits, when national_id is 8+RPPS
    surname: str | None
    given_name: str | None
    hostnames: tuple[str, ...]  # DNS names of the SAN (and a host-name CN)
    emails: tuple[str, ...]  # rfc822 names of the SAN
    serial_number: int
    fingerprint_sha256: str  # hex, lower case

    @property
    def label(self) -> str:
        """A short description for logs and audit records (no personal data beyond the ids)."""
        if self.kind is IdentityKind.PERSON:
            return f"person {self.national_id or self.common_name}"
        if self.kind is IdentityKind.OPERATOR:
            return f"operator {self.common_name}"
        return f"organisation {self.structure_id or '?'} {self.common_name or ''}".strip()


def _first(name: x509.Name, oid: x509.ObjectIdentifier) -> str | None:
    for attribute in name.get_attributes_for_oid(oid):
        if isinstance(attribute.value, str) and attribute.value.strip():
            return attribute.value.strip()
    return None


def _person_id(name: x509.Name) -> str | None:
    candidates = [
        _first(name, NameOID.SERIAL_NUMBER),
        _first(name, NameOID.USER_ID),
        (_first(name, NameOID.COMMON_NAME) or "").split("/", 1)[0].strip() or None,
    ]
    for candidate in candidates:
        if candidate and PERSON_NATIONAL_ID.match(candidate):
            return candidate
    return None


def _structure_id(name: x509.Name) -> str | None:
    values = [
        attribute.value
        for oid in (NameOID.ORGANIZATIONAL_UNIT_NAME, NameOID.ORGANIZATION_IDENTIFIER)
        for attribute in name.get_attributes_for_oid(oid)
        if isinstance(attribute.value, str)
    ]
    for value in values:
        if STRUCTURE_NATIONAL_ID.match(value.strip().upper()):
            return value.strip().upper()
    return None


def _alternative_names(certificate: x509.Certificate) -> tuple[list[str], list[str]]:
    try:
        san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return [], []
    return (
        [host.lower() for host in san.get_values_for_type(x509.DNSName)],
        list(san.get_values_for_type(x509.RFC822Name)),
    )


def _has_server_usage(certificate: x509.Certificate) -> bool:
    try:
        usages = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return False
    return ExtendedKeyUsageOID.SERVER_AUTH in usages


def identity(certificate: x509.Certificate) -> CertificateIdentity:
    """The identity a certificate carries (see the module docstring for the classification)."""
    subject = certificate.subject
    common_name = _first(subject, NameOID.COMMON_NAME)
    national_id = _person_id(subject)
    surname = _first(subject, NameOID.SURNAME)
    given_name = _first(subject, NameOID.GIVEN_NAME)
    structure_id = _structure_id(subject)
    hostnames, emails = _alternative_names(certificate)
    cn_is_host = (
        common_name is not None
        and is_hostname(common_name)
        and ("." in common_name or common_name.lower() in hostnames)
    )
    if cn_is_host and common_name and common_name.lower() not in hostnames:
        hostnames.insert(0, common_name.lower())
    if national_id or surname or given_name:
        kind = IdentityKind.PERSON
    elif _has_server_usage(certificate) or cn_is_host:
        kind = IdentityKind.OPERATOR
    else:
        kind = IdentityKind.ORGANISATION
    return CertificateIdentity(
        kind=kind,
        dn=dn_string(subject),
        dn_key=dn_key(subject),
        common_name=common_name,
        organisation=_first(subject, NameOID.ORGANIZATION_NAME),
        structure_id=structure_id,
        finess=structure_id[1:] if structure_id and structure_id[0] == FINESS_PREFIX else None,
        siret=structure_id[1:] if structure_id and structure_id[0] == SIRET_PREFIX else None,
        national_id=national_id,
        rpps=national_id[1:] if national_id and national_id[0] == RPPS_PREFIX else None,
        surname=surname,
        given_name=given_name,
        hostnames=tuple(hostnames),
        emails=tuple(emails),
        serial_number=certificate.serial_number,
        fingerprint_sha256=certificate.fingerprint(hashes.SHA256()).hex(),
    )
