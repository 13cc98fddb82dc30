"""Why a certificate is refused: stable reason codes, and the exception that carries them.

The codes are part of pli's interface (logs, audit records, metrics labels, tests): they never
change meaning. ``CertificateRefused.text`` explains the case for the operator's log (DNs,
dates); ``public_text`` is what may be shown to the peer.
"""

from __future__ import annotations

MALFORMED = "malformed"
SELF_SIGNED = "self-signed"
NOT_YET_VALID = "not-yet-valid"
EXPIRED = "expired"
WRONG_EKU = "wrong-eku"
WRONG_KEY_USAGE = "wrong-key-usage"
UNKNOWN_CRITICAL_EXTENSION = "unknown-critical-extension"
UNKNOWN_CA = "unknown-ca"
BAD_SIGNATURE = "bad-signature"
INVALID_CHAIN = "invalid-chain"
HOSTNAME_MISMATCH = "hostname-mismatch"
REVOKED = "revoked"
REVOCATION_UNKNOWN = "revocation-unknown"
DN_NOT_WHITELISTED = "dn-not-whitelisted"
NO_CERTIFICATE = "no-certificate"

#: Reason → a sentence safe to send to the peer (no DN, no date, no internal detail).
PUBLIC_TEXTS: dict[str, str] = {
    MALFORMED: "certificate cannot be parsed",
    SELF_SIGNED: "self-signed certificate",
    NOT_YET_VALID: "certificate not yet valid",
    EXPIRED: "certificate expired",
    WRONG_EKU: "certificate not issued for this use (extended key usage)",
    WRONG_KEY_USAGE: "certificate not issued for this use (key usage)",
    UNKNOWN_CRITICAL_EXTENSION: "certificate has an unsupported critical extension",
    UNKNOWN_CA: "certificate not issued by a trusted authority",
    BAD_SIGNATURE: "certificate signature invalid",
    INVALID_CHAIN: "certificate chain invalid",
    HOSTNAME_MISMATCH: "certificate does not name this host",
    REVOKED: "certificate revoked",
    REVOCATION_UNKNOWN: "certificate revocation status unavailable",
    DN_NOT_WHITELISTED: "certificate not listed for this domain in the MSSante whitelist",
    NO_CERTIFICATE: "a client certificate is required",
}
REASONS = frozenset(PUBLIC_TEXTS)


class CertificateRefused(Exception):
    """A certificate pli will not accept. ``reason`` is one of :data:`REASONS`."""

    def __init__(self, reason: str, text: str) -> None:
        assert reason in REASONS, reason
        super().__init__(f"{reason}: {text}")
        self.reason = reason
        self.text = text

    @property
    def public_text(self) -> str:
        return PUBLIC_TEXTS[self.reason]
