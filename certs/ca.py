"""The test PKI: a certification authority shaped like IGC Santé, for development and tests.

One root and three intermediate CAs (see :mod:`pli.certs.profiles` for the naming):

========================  =================================================  =====================
role                      common name                                        issues
========================  =================================================  =====================
``root``                  TEST PLI AC RACINE IGC-SANTE                       the intermediates
``servers``               TEST PLI AC IGC-SANTE ELEMENTAIRE SERVEURS         server, operator
``persons``               TEST PLI AC IGC-SANTE FORT PERSONNES               person (CPS-like)
``organisations``         TEST PLI AC IGC-SANTE ELEMENTAIRE ORGANISATIONS    org (ORG AUTH_CLI)
========================  =================================================  =====================

Its state lives in ``tls.ca_dir`` (default ``pki/ca``, mode 0700): each CA's key (0600) and
certificate, ``pki.json`` (settings) and ``index.json`` (every certificate issued, its revocation,
the CRL numbers). Updates hold ``ca_dir/.lock`` so that two ``pli pki`` commands never interleave.
CRLs are published as DER files ``<role>.crl`` in ``tls.crl_dir``; the trust files
``tls.trust_anchors`` (the root) and ``tls.intermediates`` are what verifiers load.

Real deployments use real IGC Santé certificates instead; nothing outside ``pli pki``, ``pli init``
and the tests uses this module.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from pli.config.schema import TlsSection

from .files import ensure_dir, locked, write_private, write_public
from .names import dn_string
from .profiles import (
    CertificateKind,
    ProfileError,
    ca_extensions,
    ca_subject,
    leaf_extensions,
    subject_alternative_names,
)

ROOT = "root"
SERVERS = "servers"
PERSONS = "persons"
ORGANISATIONS = "organisations"
INTERMEDIATE_ROLES = (SERVERS, PERSONS, ORGANISATIONS)
CA_ROLES = (ROOT, *INTERMEDIATE_ROLES)
CA_COMMON_NAMES = {
    ROOT: "TEST PLI AC RACINE IGC-SANTE",
    SERVERS: "TEST PLI AC IGC-SANTE ELEMENTAIRE SERVEURS",
    PERSONS: "TEST PLI AC IGC-SANTE FORT PERSONNES",
    ORGANISATIONS: "TEST PLI AC IGC-SANTE ELEMENTAIRE ORGANISATIONS",
}
ISSUER_OF: dict[CertificateKind, str] = {
    "server": SERVERS,
    "operator": SERVERS,
    "person": PERSONS,
    "org": ORGANISATIONS,
}
DEFAULT_ORGANISATION = "PLI TEST"

#: RSA modulus sizes: 2048 is the floor of ANSSI's RGS annex B1 and of the Web PKI; IGC Santé
#: issues 2048-bit end-entity keys and 4096-bit CA keys.
MIN_KEY_SIZE = 2048
MAX_KEY_SIZE = 8192
#: Validity periods (IGC Santé: software certificates 3 years; CAs much longer).
ROOT_VALIDITY = dt.timedelta(days=20 * 365)
INTERMEDIATE_VALIDITY = dt.timedelta(days=10 * 365)
LEAF_VALIDITY = dt.timedelta(days=3 * 365)
#: Certificates start this much in the past, so that a peer whose clock is a little behind
#: accepts them (RFC 5280 leaves skew to the relying party).
BACKDATE = dt.timedelta(hours=1)
#: CRLs are valid this long (nextUpdate - thisUpdate) and re-published after half of it.
CRL_VALIDITY = dt.timedelta(days=30)
CRL_REPUBLISH_AFTER = CRL_VALIDITY / 2

#: Revocation reasons (RFC 5280 §5.3.1) by the names `pli pki revoke --reason` accepts.
REVOCATION_REASONS: dict[str, x509.ReasonFlags] = {
    "unspecified": x509.ReasonFlags.unspecified,
    "key-compromise": x509.ReasonFlags.key_compromise,
    "ca-compromise": x509.ReasonFlags.ca_compromise,
    "affiliation-changed": x509.ReasonFlags.affiliation_changed,
    "superseded": x509.ReasonFlags.superseded,
    "cessation-of-operation": x509.ReasonFlags.cessation_of_operation,
    "certificate-hold": x509.ReasonFlags.certificate_hold,
    "privilege-withdrawn": x509.ReasonFlags.privilege_withdrawn,
}

RsaKey = rsa.RSAPrivateKey


def role_kind(role: str) -> str:
    """The kind recorded for a CA certificate: ``root`` or ``ca``."""
    return "root" if role == ROOT else "ca"


class PkiError(Exception):
    """A PKI operation that cannot be done; the message is for the operator."""


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def generate_key(key_size: int = MIN_KEY_SIZE) -> RsaKey:
    """A fresh RSA key (the MSSanté suites are ECDHE-RSA)."""
    if not MIN_KEY_SIZE <= key_size <= MAX_KEY_SIZE:
        raise PkiError(f"key size {key_size}: expected {MIN_KEY_SIZE} to {MAX_KEY_SIZE} bits")
    return rsa.generate_private_key(public_exponent=65537, key_size=key_size)


def key_pem(key: RsaKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def certificate_pem(*certificates: x509.Certificate) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certificates)


def serial_hex(serial: int) -> str:
    return format(serial, "X")


def parse_serial(text: str) -> int:
    """A serial number as `pli pki list` prints it (hex), with or without colons or ``0x``."""
    cleaned = text.strip().replace(":", "").removeprefix("0x").removeprefix("0X")
    try:
        return int(cleaned, 16)
    except ValueError:
        raise PkiError(f"{text!r} is not a serial number (hexadecimal)") from None


@dataclass(frozen=True)
class PkiPaths:
    """Where the PKI keeps its state and publishes its material."""

    ca_dir: Path
    crl_dir: Path
    trust_anchors: Path
    intermediates: Path

    @classmethod
    def from_tls(cls, tls: TlsSection) -> PkiPaths:
        return cls(tls.ca_dir, tls.crl_dir, tls.trust_anchors, tls.intermediates)


@dataclass
class CertificateRecord:
    """One certificate issued by the PKI, as kept in index.json."""

    serial: str  # hex
    kind: str  # server, operator, person, org, or ca
    subject: str
    issuer: str  # role of the issuing CA
    not_before: str  # ISO 8601, UTC
    not_after: str
    revoked_at: str | None = None
    reason: str | None = None
    files: list[str] = field(default_factory=list)

    @property
    def serial_number(self) -> int:
        return int(self.serial, 16)

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None


@dataclass(frozen=True)
class IssuedCertificate:
    certificate: x509.Certificate
    key: RsaKey | None  # None when the caller supplied only a public key
    chain: tuple[x509.Certificate, ...]  # the issuing intermediate(s), not the root
    record: CertificateRecord

    def chain_pem(self) -> bytes:
        """Leaf then intermediates: what a TLS endpoint sends."""
        return certificate_pem(self.certificate, *self.chain)

    def key_pem(self) -> bytes:
        if self.key is None:
            raise PkiError("this certificate was issued for a key we do not hold")
        return key_pem(self.key)


class TestPki:
    """The test PKI in ``paths``; see the module docstring."""

    __test__ = False  # not a pytest test class, despite its name

    def __init__(self, paths: PkiPaths) -> None:
        self.paths = paths
        self._certificates: dict[str, x509.Certificate] = {}
        self._keys: dict[str, RsaKey] = {}

    @classmethod
    def from_tls(cls, tls: TlsSection) -> TestPki:
        return cls(PkiPaths.from_tls(tls))

    # -- files -------------------------------------------------------------------------------

    def _certificate_path(self, role: str) -> Path:
        return self.paths.ca_dir / f"{role}.crt"

    def _key_path(self, role: str) -> Path:
        return self.paths.ca_dir / f"{role}.key"

    @property
    def _index_path(self) -> Path:
        return self.paths.ca_dir / "index.json"

    @property
    def _settings_path(self) -> Path:
        return self.paths.ca_dir / "pki.json"

    def crl_path(self, role: str) -> Path:
        return self.paths.crl_dir / f"{role}.crl"

    def exists(self) -> bool:
        return all(self._certificate_path(r).exists() for r in CA_ROLES)

    def _lock(self) -> contextlib.AbstractContextManager[None]:
        return locked(self.paths.ca_dir / ".lock")

    def settings(self) -> dict[str, Any]:
        try:
            loaded: dict[str, Any] = json.loads(self._settings_path.read_text())
        except FileNotFoundError:
            raise PkiError(f"no test PKI in {self.paths.ca_dir} (run `pli pki init`)") from None
        return loaded

    def _read_index(self) -> dict[str, Any]:
        try:
            index: dict[str, Any] = json.loads(self._index_path.read_text())
        except FileNotFoundError:
            return {"version": 1, "crl_numbers": {}, "certificates": []}
        return index

    def _write_index(self, index: dict[str, Any]) -> None:
        write_private(self._index_path, json.dumps(index, indent=1).encode())

    def ca_certificate(self, role: str) -> x509.Certificate:
        if role not in self._certificates:
            try:
                data = self._certificate_path(role).read_bytes()
            except FileNotFoundError:
                raise PkiError(
                    f"no CA {role!r} in {self.paths.ca_dir} (run `pli pki init`)"
                ) from None
            self._certificates[role] = x509.load_pem_x509_certificate(data)
        return self._certificates[role]

    def ca_key(self, role: str) -> RsaKey:
        if role not in self._keys:
            loaded = serialization.load_pem_private_key(
                self._key_path(role).read_bytes(), password=None
            )
            if not isinstance(loaded, rsa.RSAPrivateKey):
                raise PkiError(f"the key of CA {role!r} is not an RSA key")
            self._keys[role] = loaded
        return self._keys[role]

    def anchors(self) -> list[x509.Certificate]:
        return [self.ca_certificate(ROOT)]

    def intermediates(self) -> list[x509.Certificate]:
        return [self.ca_certificate(role) for role in INTERMEDIATE_ROLES]

    def role_of_issuer(self, issuer: x509.Name) -> str | None:
        """The role of our CA whose subject is ``issuer`` (None: not ours)."""
        for role in CA_ROLES:
            if self.ca_certificate(role).subject == issuer:
                return role
        return None

    # -- creation ----------------------------------------------------------------------------

    def create(
        self,
        *,
        key_size: int = MIN_KEY_SIZE,
        organisation: str = DEFAULT_ORGANISATION,
        ocsp_url: str = "",
        now: dt.datetime | None = None,
    ) -> None:
        """Create the root and the intermediates, the trust files and the first CRLs. Refuses
        to overwrite an existing PKI."""
        now = now or utcnow()
        ensure_dir(self.paths.ca_dir, private=True)
        with self._lock():
            if any(self._certificate_path(r).exists() for r in CA_ROLES):
                raise PkiError(f"a test PKI already exists in {self.paths.ca_dir}")
            settings = {"key_size": key_size, "organisation": organisation, "ocsp_url": ocsp_url}
            write_private(self._settings_path, json.dumps(settings, indent=1).encode())
            index = self._read_index()
            root_key = generate_key(key_size)
            root = self._sign_ca(ROOT, root_key, None, root_key, organisation, now, index)
            for role in INTERMEDIATE_ROLES:
                key = generate_key(key_size)
                self._sign_ca(role, key, root, root_key, organisation, now, index)
            self._write_index(index)
            self._write_trust_files()
            self._publish_crls(index, now, CA_ROLES)
            self._write_index(index)

    def _sign_ca(
        self,
        role: str,
        key: RsaKey,
        issuer: x509.Certificate | None,
        issuer_key: RsaKey,
        organisation: str,
        now: dt.datetime,
        index: dict[str, Any],
    ) -> x509.Certificate:
        subject = ca_subject(CA_COMMON_NAMES[role], organisation)
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer.subject if issuer else subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - BACKDATE)
            .not_valid_after(now + (ROOT_VALIDITY if issuer is None else INTERMEDIATE_VALIDITY))
        )
        path_length = None if issuer is None else 0
        for extension, critical in ca_extensions(key.public_key(), issuer, path_length=path_length):
            builder = builder.add_extension(extension, critical)
        certificate = builder.sign(issuer_key, hashes.SHA256())
        write_private(self._key_path(role), key_pem(key))
        write_public(self._certificate_path(role), certificate_pem(certificate))
        self._certificates[role], self._keys[role] = certificate, key
        index["certificates"].append(asdict(self._record(certificate, role_kind(role), ROOT)))
        return certificate

    def _write_trust_files(self) -> None:
        write_public(self.paths.trust_anchors, certificate_pem(*self.anchors()))
        write_public(self.paths.intermediates, certificate_pem(*self.intermediates()))

    def write_trust_files(self, *, only_missing: bool = True) -> list[Path]:
        """(Re)write the trust anchors and intermediates files; returns those written."""
        written = []
        for path, certificates in (
            (self.paths.trust_anchors, self.anchors()),
            (self.paths.intermediates, self.intermediates()),
        ):
            if only_missing and path.exists():
                continue
            write_public(path, certificate_pem(*certificates))
            written.append(path)
        return written

    # -- issuing -----------------------------------------------------------------------------

    def _record(
        self, certificate: x509.Certificate, kind: str, issuer_role: str
    ) -> CertificateRecord:
        return CertificateRecord(
            serial=serial_hex(certificate.serial_number),
            kind=kind,
            subject=dn_string(certificate.subject),
            issuer=issuer_role,
            not_before=certificate.not_valid_before_utc.isoformat(),
            not_after=certificate.not_valid_after_utc.isoformat(),
        )

    def issue(
        self,
        kind: CertificateKind,
        subject: x509.Name,
        *,
        hostnames: Iterable[str] = (),
        emails: Iterable[str] = (),
        key: RsaKey | None = None,
        not_before: dt.datetime | None = None,
        not_after: dt.datetime | None = None,
        usages: tuple[x509.ObjectIdentifier, ...] | None = None,
        ocsp_url: str | None = None,
        extra_extensions: Iterable[tuple[x509.ExtensionType, bool]] = (),
    ) -> IssuedCertificate:
        """Issue a certificate of ``kind`` for ``subject`` from the CA that issues that kind.

        ``key``: the holder's key (default: a fresh one of the PKI's size). ``usages``: override
        the extended key usages of the kind (tests of wrong usages). ``ocsp_url``: the AIA OCSP
        address (default: the PKI's, if it has one)."""
        role = ISSUER_OF[kind]
        settings = self.settings()
        issuer = self.ca_certificate(role)
        if key is None:
            key = generate_key(int(settings.get("key_size", MIN_KEY_SIZE)))
        start = not_before or (utcnow() - BACKDATE)
        end = not_after or (start + BACKDATE + LEAF_VALIDITY)
        if end <= start:
            raise PkiError("the certificate would end before it starts")
        try:
            alternative_names = subject_alternative_names(tuple(hostnames), tuple(emails))
        except ProfileError as error:
            raise PkiError(str(error)) from None
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(end)
        )
        extensions = leaf_extensions(
            kind,
            key.public_key(),
            issuer,
            alternative_names=alternative_names,
            ocsp_url=settings.get("ocsp_url", "") if ocsp_url is None else ocsp_url,
            usages=usages,
        )
        for extension, critical in [*extensions, *extra_extensions]:
            builder = builder.add_extension(extension, critical)
        certificate = builder.sign(self.ca_key(role), hashes.SHA256())
        record = self._record(certificate, kind, role)
        with self._lock():
            index = self._read_index()
            index["certificates"].append(asdict(record))
            self._write_index(index)
        return IssuedCertificate(certificate, key, (issuer,), record)

    def note_files(self, serial: int, files: Iterable[Path]) -> None:
        """Remember where an issued certificate was written (shown by `pli pki list`)."""
        with self._lock():
            index = self._read_index()
            for entry in index["certificates"]:
                if entry["serial"] == serial_hex(serial):
                    entry["files"] = [str(path) for path in files]
            self._write_index(index)

    # -- revocation --------------------------------------------------------------------------

    def records(self) -> list[CertificateRecord]:
        return [CertificateRecord(**entry) for entry in self._read_index()["certificates"]]

    def find(self, serial: int) -> CertificateRecord | None:
        wanted = serial_hex(serial)
        return next((r for r in self.records() if r.serial == wanted), None)

    def revoke(
        self, serial: int, reason: str = "unspecified", *, when: dt.datetime | None = None
    ) -> CertificateRecord:
        """Mark a certificate revoked and re-publish its issuer's CRL."""
        if reason not in REVOCATION_REASONS:
            raise PkiError(
                f"unknown reason {reason!r}; expected one of {', '.join(REVOCATION_REASONS)}"
            )
        when = when or utcnow()
        with self._lock():
            index = self._read_index()
            entry = next(
                (e for e in index["certificates"] if e["serial"] == serial_hex(serial)), None
            )
            if entry is None:
                raise PkiError(f"no certificate with serial {serial_hex(serial)} in this PKI")
            if entry["kind"] == "root":
                raise PkiError("the root cannot be revoked; remove it from the trust anchors")
            if entry["revoked_at"] is None:
                entry["revoked_at"] = when.isoformat()
                entry["reason"] = reason
            self._publish_crls(index, utcnow(), (entry["issuer"],))
            self._write_index(index)
            return CertificateRecord(**entry)

    def revocation_state(
        self, issuer_role: str, serial: int
    ) -> tuple[str, dt.datetime | None, x509.ReasonFlags | None]:
        """For the OCSP responder: ("good" | "revoked" | "unknown", revocation time, reason)."""
        for record in self.records():
            if record.serial == serial_hex(serial) and record.issuer == issuer_role:
                if record.revoked_at is None:
                    return "good", None, None
                return (
                    "revoked",
                    dt.datetime.fromisoformat(record.revoked_at),
                    REVOCATION_REASONS.get(record.reason or "unspecified"),
                )
        return "unknown", None, None

    # -- CRLs --------------------------------------------------------------------------------

    def publish_crls(
        self, *, now: dt.datetime | None = None, only_stale: bool = False
    ) -> list[Path]:
        """Write every CA's CRL to ``crl_dir`` (``only_stale``: those missing or older than
        half their validity). Returns the files written."""
        now = now or utcnow()
        with self._lock():
            index = self._read_index()
            roles = [r for r in CA_ROLES if not only_stale or self._crl_is_stale(r, now)]
            written = self._publish_crls(index, now, roles)
            self._write_index(index)
        return written

    def _crl_is_stale(self, role: str, now: dt.datetime) -> bool:
        try:
            crl = x509.load_der_x509_crl(self.crl_path(role).read_bytes())
        except (FileNotFoundError, ValueError):
            return True
        return crl.last_update_utc + CRL_REPUBLISH_AFTER <= now

    def _publish_crls(
        self, index: dict[str, Any], now: dt.datetime, roles: Iterable[str]
    ) -> list[Path]:
        written = []
        for role in roles:
            number = int(index["crl_numbers"].get(role, 0)) + 1
            index["crl_numbers"][role] = number
            revoked = [e for e in index["certificates"] if e["issuer"] == role and e["revoked_at"]]
            crl = self._build_crl(role, number, revoked, now)
            path = self.crl_path(role)
            write_public(path, crl.public_bytes(serialization.Encoding.DER))
            written.append(path)
        return written

    def _build_crl(
        self, role: str, number: int, revoked: list[dict[str, Any]], now: dt.datetime
    ) -> x509.CertificateRevocationList:
        issuer = self.ca_certificate(role)
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(issuer.subject)
            .last_update(now - BACKDATE)
            .next_update(now + CRL_VALIDITY)
            .add_extension(x509.CRLNumber(number), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(
                    issuer.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
                ),
                critical=False,
            )
        )
        for entry in revoked:
            entry_builder = (
                x509.RevokedCertificateBuilder()
                .serial_number(int(entry["serial"], 16))
                .revocation_date(dt.datetime.fromisoformat(entry["revoked_at"]))
            )
            reason = REVOCATION_REASONS[entry["reason"] or "unspecified"]
            if reason is not x509.ReasonFlags.unspecified:  # RFC 5280 §5.3.1: omit unspecified
                entry_builder = entry_builder.add_extension(x509.CRLReason(reason), critical=False)
            builder = builder.add_revoked_certificate(entry_builder.build())
        return builder.sign(self.ca_key(role), hashes.SHA256())
