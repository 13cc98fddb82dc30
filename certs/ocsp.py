"""OCSP (RFC 6960): asking a responder whether a certificate is revoked, and answering.

Client side: :func:`build_request`, :func:`fetch` (HTTP POST, bounded in time and size) and
:func:`check_response`, which accepts a response only if it is signed by the certificate's
issuer or by a responder the issuer delegated (id-kp-OCSPSigning, RFC 6960 §4.2.2.2), is about
this certificate, and is current.

Responder side: :class:`OcspAnswerer` builds signed responses from a revocation lookup (the test
PKI's state); :mod:`pli.certs.ocsp_server` puts it behind HTTP.

Nothing here decides what an unknown status means for a peer: :mod:`pli.certs.revocation` does.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
from collections.abc import Callable
from dataclasses import dataclass

from asn1crypto import keys as asn1_keys
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509 import ocsp
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID

from .download import DownloadError, fetch_bounded

#: A response is a few kilobytes (one SingleResponse, perhaps a responder certificate); 64 KiB
#: bounds what a hostile responder can make us read.
MAX_RESPONSE_SIZE = 64 * 1024
#: Largest request the responder reads (a request for one certificate is ~100 bytes).
MAX_REQUEST_SIZE = 16 * 1024
#: Clock skew tolerated on thisUpdate/nextUpdate (RFC 6960 §4.2.2.1 leaves it to the client).
CLOCK_SKEW = dt.timedelta(minutes=5)
#: How long a response without nextUpdate may be reused (RFC 6960 §4.2.2.1: none means newer
#: information is always available; we still avoid asking twice within a handshake burst).
CACHE_WITHOUT_NEXT_UPDATE = dt.timedelta(minutes=5)
#: Validity our responder gives its answers (nextUpdate - thisUpdate).
RESPONSE_VALIDITY = dt.timedelta(hours=1)
OCSP_REQUEST_TYPE = "application/ocsp-request"
OCSP_RESPONSE_TYPE = "application/ocsp-response"

_HASHES: dict[str, Callable[[], hashes.HashAlgorithm]] = {
    "sha1": hashes.SHA1,
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}


class OcspError(Exception):
    """No usable answer: the responder failed, answered garbage, or answered something we must
    not believe. The message says which."""


@dataclass(frozen=True)
class OcspAnswer:
    status: str  # "good", "revoked" or "unknown" (RFC 6960 §2.2)
    this_update: dt.datetime
    next_update: dt.datetime | None
    revoked_at: dt.datetime | None = None
    reason: str | None = None

    def cache_until(self) -> dt.datetime:
        return self.next_update or (self.this_update + CACHE_WITHOUT_NEXT_UPDATE)


def ocsp_urls(certificate: x509.Certificate) -> list[str]:
    """The http(s) OCSP addresses of a certificate's AIA extension (RFC 5280 §4.2.2.1)."""
    try:
        access = certificate.extensions.get_extension_for_class(
            x509.AuthorityInformationAccess
        ).value
    except x509.ExtensionNotFound:
        return []
    return [
        description.access_location.value
        for description in access
        if description.access_method == AuthorityInformationAccessOID.OCSP
        and isinstance(description.access_location, x509.UniformResourceIdentifier)
        and description.access_location.value.lower().startswith(("http://", "https://"))
    ]


def build_request(certificate: x509.Certificate, issuer: x509.Certificate) -> bytes:
    """A DER OCSP request for one certificate (SHA-1 CertID, what every responder accepts; no
    nonce, so that responses can be cached: RFC 5019)."""
    sha1 = hashes.SHA1()  # noqa: S303 - RFC 6960/5019 CertID; not a signature
    builder = ocsp.OCSPRequestBuilder().add_certificate(certificate, issuer, sha1)
    return builder.build().public_bytes(serialization.Encoding.DER)


def fetch(url: str, request: bytes, timeout: float) -> bytes:
    """POST ``request`` to ``url`` (RFC 6960 Appendix A.1); raises :class:`OcspError`."""
    try:
        return fetch_bounded(
            "POST",
            url,
            content=request,
            headers={"Content-Type": OCSP_REQUEST_TYPE},
            max_size=MAX_RESPONSE_SIZE,
            timeout=timeout,
        )
    except DownloadError as error:
        raise OcspError(f"responder {url} {error}") from None


def public_key_bits(certificate: x509.Certificate) -> bytes:
    """The subjectPublicKey BIT STRING's bits: what OCSP's issuerKeyHash hashes (RFC 6960
    §4.1.1)."""
    spki = certificate.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    contents: bytes = asn1_keys.PublicKeyInfo.load(spki)["public_key"].contents
    return contents[1:]  # the first octet counts unused bits (0 for keys)


def cert_id_hashes(
    issuer: x509.Certificate, algorithm: hashes.HashAlgorithm
) -> tuple[bytes, bytes]:
    """(issuerNameHash, issuerKeyHash) of ``issuer`` with ``algorithm``."""
    name_der = issuer.subject.public_bytes()
    return (
        hashlib.new(algorithm.name, name_der).digest(),
        hashlib.new(algorithm.name, public_key_bits(issuer)).digest(),
    )


def _verify_signature(response: ocsp.OCSPResponse, signer: x509.Certificate) -> None:
    key = signer.public_key()
    algorithm = response.signature_hash_algorithm
    if algorithm is None:
        raise OcspError("response signature algorithm not supported")
    try:
        if isinstance(key, rsa.RSAPublicKey):
            key.verify(
                response.signature, response.tbs_response_bytes, padding.PKCS1v15(), algorithm
            )
        elif isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(response.signature, response.tbs_response_bytes, ec.ECDSA(algorithm))
        else:
            raise OcspError("responder key type not supported")
    except InvalidSignature:
        raise OcspError("response signature does not verify") from None


def _responder_matches(response: ocsp.OCSPResponse, candidate: x509.Certificate) -> bool:
    if response.responder_name is not None:
        return response.responder_name == candidate.subject
    key_hash = response.responder_key_hash
    return key_hash is not None and key_hash == hashlib.sha1(public_key_bits(candidate)).digest()  # noqa: S324 - RFC 6960 ResponderID byKey is SHA-1


def _signer(
    response: ocsp.OCSPResponse, issuer: x509.Certificate, now: dt.datetime
) -> x509.Certificate:
    """The certificate whose key signed the response: the issuer itself, or a delegated
    responder certificate (issued by the issuer, EKU id-kp-OCSPSigning, currently valid)."""
    if _responder_matches(response, issuer):
        return issuer
    for candidate in response.certificates:
        if not _responder_matches(response, candidate):
            continue
        if candidate.issuer != issuer.subject:
            continue
        try:
            candidate.verify_directly_issued_by(issuer)
            usages = candidate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        except (ValueError, TypeError, InvalidSignature, x509.ExtensionNotFound):
            continue
        if ExtendedKeyUsageOID.OCSP_SIGNING not in usages:
            continue
        if not candidate.not_valid_before_utc <= now <= candidate.not_valid_after_utc:
            continue
        return candidate
    raise OcspError("response not signed by the issuer or a responder it authorised")


def check_response(
    data: bytes,
    certificate: x509.Certificate,
    issuer: x509.Certificate,
    *,
    now: dt.datetime,
) -> OcspAnswer:
    """The status a DER response gives ``certificate``; raises :class:`OcspError` when the
    response cannot be believed (RFC 6960 §3.2)."""
    try:
        response = ocsp.load_der_ocsp_response(data)
    except ValueError:
        raise OcspError("response is not a DER OCSP response") from None
    if response.response_status != ocsp.OCSPResponseStatus.SUCCESSFUL:
        raise OcspError(f"responder answered {response.response_status.name.lower()}")
    _verify_signature(response, _signer(response, issuer, now))
    for single in response.responses:
        algorithm = single.hash_algorithm
        if algorithm.name not in _HASHES:
            continue
        name_hash, key_hash = cert_id_hashes(issuer, algorithm)
        if (
            single.serial_number != certificate.serial_number
            or single.issuer_name_hash != name_hash
            or single.issuer_key_hash != key_hash
        ):
            continue
        this_update, next_update = single.this_update_utc, single.next_update_utc
        if this_update > now + CLOCK_SKEW:
            raise OcspError("response is dated in the future")
        if next_update is not None and next_update < now - CLOCK_SKEW:
            raise OcspError("response is stale (nextUpdate passed)")
        status = single.certificate_status
        if status == ocsp.OCSPCertStatus.REVOKED:
            reason = single.revocation_reason
            return OcspAnswer(
                "revoked",
                this_update,
                next_update,
                single.revocation_time_utc,
                reason.name if reason else None,
            )
        if status == ocsp.OCSPCertStatus.GOOD:
            return OcspAnswer("good", this_update, next_update)
        return OcspAnswer("unknown", this_update, next_update)
    raise OcspError("response does not mention this certificate")


RevocationLookup = Callable[
    [x509.Certificate, int], tuple[str, dt.datetime | None, x509.ReasonFlags | None]
]
"""(issuing CA certificate, serial) → ("good" | "revoked" | "unknown", revoked at, reason)."""


class OcspAnswerer:
    """Builds signed OCSP responses for the certificates of the given CAs (the responder is the
    issuing CA itself, RFC 6960 §4.2.2.2)."""

    def __init__(
        self,
        authorities: list[tuple[x509.Certificate, rsa.RSAPrivateKey]],
        lookup: RevocationLookup,
    ) -> None:
        self.authorities = authorities
        self.lookup = lookup

    def respond(self, data: bytes, *, now: dt.datetime | None = None) -> bytes:
        """The DER response to a DER request; malformed or foreign requests get the matching
        unsuccessful status (RFC 6960 §2.3), never an exception."""
        now = now or dt.datetime.now(dt.UTC)
        try:
            request = ocsp.load_der_ocsp_request(data)
            algorithm = request.hash_algorithm
        except (ValueError, NotImplementedError):
            return _unsuccessful(ocsp.OCSPResponseStatus.MALFORMED_REQUEST)
        for authority, key in self.authorities:
            if (request.issuer_name_hash, request.issuer_key_hash) != cert_id_hashes(
                authority, algorithm
            ):
                continue
            status, revoked_at, reason = self.lookup(authority, request.serial_number)
            builder = ocsp.OCSPResponseBuilder().add_response_by_hash(
                issuer_name_hash=request.issuer_name_hash,
                issuer_key_hash=request.issuer_key_hash,
                serial_number=request.serial_number,
                algorithm=algorithm,
                cert_status={
                    "good": ocsp.OCSPCertStatus.GOOD,
                    "revoked": ocsp.OCSPCertStatus.REVOKED,
                }.get(status, ocsp.OCSPCertStatus.UNKNOWN),
                this_update=now - dt.timedelta(minutes=1),
                next_update=now + RESPONSE_VALIDITY,
                revocation_time=revoked_at if status == "revoked" else None,
                revocation_reason=reason if status == "revoked" else None,
            )
            builder = builder.responder_id(ocsp.OCSPResponderEncoding.HASH, authority)
            response = builder.sign(key, hashes.SHA256())
            return response.public_bytes(serialization.Encoding.DER)
        return _unsuccessful(ocsp.OCSPResponseStatus.UNAUTHORIZED)


def _unsuccessful(status: ocsp.OCSPResponseStatus) -> bytes:
    return ocsp.OCSPResponseBuilder.build_unsuccessful(status).public_bytes(
        serialization.Encoding.DER
    )


def decode_get_path(path: str) -> bytes:
    """The request carried in a GET path (RFC 6960 Appendix A.1: base64, URL-encoded)."""
    from urllib.parse import unquote

    encoded = unquote(path.rsplit("/", 1)[-1])
    try:
        return base64.b64decode(encoded, validate=True)
    except ValueError:
        return b""
