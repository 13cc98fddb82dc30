"""Verifying a peer's certificate against our trust anchors: the check SMTP (inbound, outbound,
submission) and IMAP (SASL EXTERNAL) run on every certificate they are shown.

:meth:`TrustStore.verify` takes the peer's leaf (on Python 3.11 an ssl socket gives only the
leaf; chains are completed from ``tls.intermediates``) and either returns a
:class:`VerifiedPeer` or raises :class:`~pli.certs.refusals.CertificateRefused` with a stable
reason. The checks, in this order, each with its reason:

1. parseable (``malformed``), no unknown critical extension (``unknown-critical-extension``,
   RFC 5280 §4.2), not self-signed (``self-signed``);
2. valid now (``not-yet-valid``, ``expired``);
3. issued for the purpose: serverAuth for a server, clientAuth for a client (``wrong-eku``,
   RFC 5280 §4.2.1.12), digitalSignature when keyUsage is present (``wrong-key-usage``: ECDHE-RSA
   signs the key exchange);
4. issued by one of our CAs (``unknown-ca``), with a valid signature (``bad-signature``), on a
   path to a trust anchor (``invalid-chain``) checked by cryptography's ``x509.verification``
   (CA certificates under its Web PKI CA profile; the end entity by hand above, because IGC Santé
   client certificates have no SAN, which that API's client profile requires);
5. the host name, when one is given (``hostname-mismatch``, RFC 6125 §6.4);
6. revocation of the leaf and of each intermediate (``revoked``; ``revocation-unknown`` when no
   current CRL or OCSP answer exists and ``tls.revocation_failure`` is ``hard``; with ``soft`` the
   peer is accepted and the gap logged: MSSanté ECO.1.1.6).

Whether the peer's DN may send for a domain is the whitelist's question
(:func:`pli.certs.whitelist.require_listed`).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import itertools
import ssl
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import structlog
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.x509.oid import ExtendedKeyUsageOID
from cryptography.x509.verification import ExtensionPolicy, PolicyBuilder, Store, VerificationError

from pli.config.schema import TlsSection

from . import ocsp
from .crl_fetch import CrlFetcher
from .identity import CertificateIdentity, identity
from .names import dn_string
from .refusals import (
    BAD_SIGNATURE,
    EXPIRED,
    HOSTNAME_MISMATCH,
    INVALID_CHAIN,
    MALFORMED,
    NO_CERTIFICATE,
    NOT_YET_VALID,
    REVOCATION_UNKNOWN,
    REVOKED,
    SELF_SIGNED,
    UNKNOWN_CA,
    UNKNOWN_CRITICAL_EXTENSION,
    WRONG_EKU,
    WRONG_KEY_USAGE,
    CertificateRefused,
)
from .revocation import CrlStore, Fetch, RevocationChecker, RevocationResult
from .tls import peer_certificate

log = structlog.get_logger(__name__)

Purpose = Literal["server", "client"]

#: IGC Santé paths are root → intermediate → leaf; one more level leaves room for a
#: cross-certificate. cryptography's default (8) would allow needless path-building work.
MAX_CHAIN_DEPTH = 4
_PURPOSE_EKU = {
    "server": ExtendedKeyUsageOID.SERVER_AUTH,
    "client": ExtendedKeyUsageOID.CLIENT_AUTH,
}
_ANY_EKU = x509.ObjectIdentifier("2.5.29.37.0")  # anyExtendedKeyUsage, RFC 5280 §4.2.1.12


@dataclass(frozen=True)
class _Material:
    anchors: tuple[x509.Certificate, ...]
    intermediates: tuple[x509.Certificate, ...]
    store: Store
    revocation: RevocationChecker


class TrustError(Exception):
    """Trust material that cannot be loaded (missing or unreadable anchors)."""


@dataclass(frozen=True)
class VerifiedPeer:
    """A certificate that passed every check."""

    certificate: x509.Certificate
    chain: tuple[x509.Certificate, ...]  # leaf first, trust anchor last
    identity: CertificateIdentity
    revocation: tuple[RevocationResult, ...]  # one per certificate checked (leaf first)
    warnings: tuple[str, ...] = field(default=())  # e.g. revocation unknown, accepted (soft)


def _read_pem_certificates(path: Path, *, required: bool) -> list[x509.Certificate]:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        if required:
            raise TrustError(f"{path}: no such file (trust anchors)") from None
        return []
    except OSError as error:
        raise TrustError(f"{path}: cannot be read ({error.strerror})") from None
    if not data.strip():
        return []
    try:
        return x509.load_pem_x509_certificates(data)
    except ValueError:
        raise TrustError(f"{path}: not PEM certificates") from None


def _file_state(path: Path) -> tuple[int, int] | None:
    try:
        status = path.stat()
    except FileNotFoundError:
        return None
    return status.st_mtime_ns, status.st_size


class TrustStore:
    """Our trust anchors, intermediates and revocation sources. Thread-safe; one per process."""

    def __init__(
        self,
        anchors: list[x509.Certificate],
        intermediates: list[x509.Certificate],
        *,
        crl_dir: Path,
        use_ocsp: bool = False,
        ocsp_timeout: float = 5.0,
        revocation_failure: Literal["hard", "soft"] = "hard",
        fetch: Fetch = ocsp.fetch,
        crl_fetcher: CrlFetcher | None = None,
    ) -> None:
        if not anchors:
            raise TrustError("no trust anchor")
        self.revocation_failure = revocation_failure
        self._fetch = fetch
        self._crl_fetcher = crl_fetcher
        self._use_ocsp, self._ocsp_timeout, self._crl_dir = use_ocsp, ocsp_timeout, crl_dir
        self._files: tuple[Path, Path] | None = None
        self._file_states: tuple[object, object] = (None, None)
        self._lock = threading.Lock()
        self._install(anchors, intermediates)

    def _install(
        self, anchors: list[x509.Certificate], intermediates: list[x509.Certificate]
    ) -> None:
        """Swap in new material as one object: a verification in another thread sees the old
        material or the new, never half of each."""
        self._material = _Material(
            tuple(anchors),
            tuple(intermediates),
            Store(anchors),
            RevocationChecker(
                CrlStore(
                    self._crl_dir,
                    [*anchors, *intermediates],
                    download=self._crl_fetcher.fetch_for if self._crl_fetcher else None,
                ),
                use_ocsp=self._use_ocsp,
                ocsp_timeout=self._ocsp_timeout,
                fetch=self._fetch,
            ),
        )

    @property
    def anchors(self) -> tuple[x509.Certificate, ...]:
        return self._material.anchors

    @property
    def intermediates(self) -> tuple[x509.Certificate, ...]:
        return self._material.intermediates

    @classmethod
    def load(cls, tls: TlsSection, *, fetch: Fetch = ocsp.fetch) -> TrustStore:
        """The trust store the configuration describes; raises :class:`TrustError`. It re-reads
        the anchors and intermediates files when they change."""
        store = cls(
            _read_pem_certificates(tls.trust_anchors, required=True),
            _read_pem_certificates(tls.intermediates, required=False),
            crl_dir=tls.crl_dir,
            use_ocsp=tls.ocsp,
            ocsp_timeout=tls.ocsp_timeout,
            revocation_failure=tls.revocation_failure,
            fetch=fetch,
            crl_fetcher=CrlFetcher(tls.crl_dir, timeout=tls.crl_timeout)
            if tls.crl_download
            else None,
        )
        store._files = (tls.trust_anchors, tls.intermediates)
        store._file_states = (_file_state(tls.trust_anchors), _file_state(tls.intermediates))
        return store

    def _reload_if_changed(self) -> None:
        if self._files is None:
            return
        states = (_file_state(self._files[0]), _file_state(self._files[1]))
        if states == self._file_states:
            return
        with self._lock:
            try:
                anchors = _read_pem_certificates(self._files[0], required=True)
                intermediates = _read_pem_certificates(self._files[1], required=False)
            except TrustError as error:
                log.error("trust-reload-failed", error=str(error))
                return
            if anchors:
                self._install(anchors, intermediates)
            self._file_states = states

    # -- verification ------------------------------------------------------------------------

    def verify(
        self,
        leaf: x509.Certificate | bytes,
        purpose: Purpose,
        *,
        now: dt.datetime | None = None,
        hostname: str | None = None,
    ) -> VerifiedPeer:
        """Verify ``leaf`` (a certificate or its DER bytes) for ``purpose``; see the module
        docstring. Blocking when OCSP is asked or a CRL downloaded: call :meth:`verify_async` from
        an event loop."""
        self._reload_if_changed()
        material = self._material
        now = now or dt.datetime.now(dt.UTC)
        certificate = _parse(leaf)
        _check_extensions(certificate)
        if certificate.issuer == certificate.subject:
            raise CertificateRefused(
                SELF_SIGNED, f"{dn_string(certificate.subject)} is self-signed"
            )
        _check_validity(certificate, now)
        _check_usage(certificate, purpose)
        chain = _build_chain(material, certificate, now)
        if hostname is not None:
            _check_hostname(certificate, hostname)
        results, warnings = self._check_revocation(material.revocation, chain, now)
        return VerifiedPeer(
            certificate, tuple(chain), identity(certificate), tuple(results), tuple(warnings)
        )

    async def verify_async(
        self,
        leaf: x509.Certificate | bytes,
        purpose: Purpose,
        *,
        now: dt.datetime | None = None,
        hostname: str | None = None,
    ) -> VerifiedPeer:
        """:meth:`verify` in a worker thread (OCSP and CRL reading never block the loop)."""
        return await asyncio.to_thread(self.verify, leaf, purpose, now=now, hostname=hostname)

    async def verify_tls_peer(
        self,
        ssl_object: ssl.SSLObject | ssl.SSLSocket | None,
        purpose: Purpose,
        *,
        hostname: str | None = None,
    ) -> VerifiedPeer:
        """The peer of a TLS connection, verified: ``ssl_object`` is
        ``transport.get_extra_info("ssl_object")`` (asyncio) or the ``ssl.SSLSocket``. No
        certificate presented: ``CertificateRefused("no-certificate")``."""
        certificate = peer_certificate(ssl_object)
        if certificate is None:
            raise CertificateRefused(NO_CERTIFICATE, "the peer presented no certificate")
        return await self.verify_async(certificate, purpose, hostname=hostname)

    def _check_revocation(
        self, checker: RevocationChecker, chain: list[x509.Certificate], now: dt.datetime
    ) -> tuple[list[RevocationResult], list[str]]:
        results, warnings = [], []
        for certificate, issuer in itertools.pairwise(chain):
            result = checker.check(certificate, issuer, now)
            results.append(result)
            subject = dn_string(certificate.subject)
            if result.revoked:
                log.warning("certificate-revoked", subject=subject, detail=result.detail)
                raise CertificateRefused(REVOKED, f"{subject}: {result.detail}")
            if result.status == "unknown":
                log.warning(
                    "revocation-unknown",
                    subject=subject,
                    detail=result.detail,
                    policy=self.revocation_failure,
                )
                if self.revocation_failure == "hard":
                    raise CertificateRefused(REVOCATION_UNKNOWN, f"{subject}: {result.detail}")
                warnings.append(f"revocation unknown for {subject}: {result.detail}")
        return results, warnings


def _build_chain(
    material: _Material, certificate: x509.Certificate, now: dt.datetime
) -> list[x509.Certificate]:
    issuers = [
        c for c in (*material.intermediates, *material.anchors) if c.subject == certificate.issuer
    ]
    if not issuers:
        raise CertificateRefused(
            UNKNOWN_CA,
            f"issuer {dn_string(certificate.issuer)} is none of our CAs",
        )
    if not any(_signed_by(certificate, issuer) for issuer in issuers):
        raise CertificateRefused(
            BAD_SIGNATURE,
            f"signature does not verify with the key of {dn_string(certificate.issuer)}",
        )
    verifier = (
        PolicyBuilder()
        .store(material.store)
        .time(now)
        .max_chain_depth(MAX_CHAIN_DEPTH)
        .extension_policies(
            ca_policy=ExtensionPolicy.webpki_defaults_ca(),
            ee_policy=ExtensionPolicy.permit_all(),
        )
        .build_client_verifier()
    )
    try:
        return list(verifier.verify(certificate, list(material.intermediates)).chain)
    except VerificationError as error:
        message = str(error)
        if "candidates exhausted" in message:
            raise CertificateRefused(
                UNKNOWN_CA,
                f"no path from {dn_string(certificate.issuer)} to a trust anchor",
            ) from None
        raise CertificateRefused(INVALID_CHAIN, message.split(" (encountered")[0]) from None


def _parse(leaf: x509.Certificate | bytes) -> x509.Certificate:
    if isinstance(leaf, x509.Certificate):
        return leaf
    try:
        certificate = x509.load_der_x509_certificate(leaf)
        _ = certificate.extensions  # parsed lazily: a bad extension surfaces here
    except ValueError as error:
        raise CertificateRefused(MALFORMED, f"not a DER certificate: {error}") from None
    return certificate


def _check_extensions(certificate: x509.Certificate) -> None:
    try:
        extensions = certificate.extensions
    except ValueError as error:
        raise CertificateRefused(MALFORMED, f"bad extensions: {error}") from None
    for extension in extensions:
        if extension.critical and isinstance(extension.value, x509.UnrecognizedExtension):
            raise CertificateRefused(
                UNKNOWN_CRITICAL_EXTENSION,
                f"critical extension {extension.oid.dotted_string} is not understood",
            )


def _check_validity(certificate: x509.Certificate, now: dt.datetime) -> None:
    if now < certificate.not_valid_before_utc:
        raise CertificateRefused(
            NOT_YET_VALID, f"valid from {certificate.not_valid_before_utc.isoformat()}"
        )
    if now > certificate.not_valid_after_utc:
        raise CertificateRefused(
            EXPIRED, f"expired on {certificate.not_valid_after_utc.isoformat()}"
        )


def _check_usage(certificate: x509.Certificate, purpose: Purpose) -> None:
    wanted = _PURPOSE_EKU[purpose]
    try:
        usages = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        raise CertificateRefused(
            WRONG_EKU, f"no extended key usage; {wanted._name} is required"
        ) from None
    if wanted not in usages and _ANY_EKU not in usages:
        present = ", ".join(oid._name for oid in usages) or "none"
        raise CertificateRefused(WRONG_EKU, f"issued for {present}; {wanted._name} is required")
    try:
        key_usage = certificate.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return
    if not key_usage.digital_signature:
        raise CertificateRefused(
            WRONG_KEY_USAGE, "keyUsage lacks digitalSignature (needed by ECDHE-RSA)"
        )


def _signed_by(certificate: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        certificate.verify_directly_issued_by(issuer)
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


def _check_hostname(certificate: x509.Certificate, hostname: str) -> None:
    """RFC 6125 §6.4: the reference name against the SAN's DNS names (a wildcard only as the
    whole left-most label) or IP addresses; the CN is not consulted (§6.4.4, SAN present)."""
    try:
        san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        raise CertificateRefused(HOSTNAME_MISMATCH, "the certificate names no host") from None
    try:
        address = ipaddress.ip_address(hostname)
    except ValueError:
        wanted = hostname.lower().rstrip(".")
        if any(_dns_matches(name, wanted) for name in san.get_values_for_type(x509.DNSName)):
            return
    else:
        if address in san.get_values_for_type(x509.IPAddress):
            return
    raise CertificateRefused(HOSTNAME_MISMATCH, f"{hostname} is not named by the certificate")


def _dns_matches(pattern: str, hostname: str) -> bool:
    pattern = pattern.lower().rstrip(".")
    if pattern == hostname:
        return True
    if pattern.startswith("*.") and "." in hostname:
        return hostname.split(".", 1)[1] == pattern[2:]
    return False
