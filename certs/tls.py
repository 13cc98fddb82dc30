"""TLS contexts with the MSSanté profile, for our servers and for our client connections.

Profile ``mssante`` (the default): TLS 1.2 only (Référentiel #2 ECO.1.1.2) with the four
ECDHE-RSA suites of ECO.1.1.3, server preference. ``mssante+tls13``: the same for TLS 1.2, and
TLS 1.3 allowed as well (OpenSSL's TLS 1.3 suites, all AEAD); whether MSSanté now allows TLS 1.3
is unconfirmed, hence an option.

The TLS layer asks for the peer's certificate and checks its chain against our anchors (OpenSSL
refuses an unknown CA or an expired certificate during the handshake); pli then runs the full
check on the leaf, with revocation, purpose and identity: :func:`peer_certificate` gives it to
:meth:`pli.certs.verify.TrustStore.verify`.

This module builds contexts; it never opens a connection.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Literal

from cryptography import x509

from pli.config.schema import TlsSection

#: Référentiel #2 ECO.1.1.3: the only TLS 1.2 suites allowed, in OpenSSL's names.
MSSANTE_CIPHERS = (
    "ECDHE-RSA-AES256-GCM-SHA384",
    "ECDHE-RSA-AES128-GCM-SHA256",
    "ECDHE-RSA-AES256-SHA384",
    "ECDHE-RSA-AES128-SHA256",
)
#: Référentiel #2 ECO.1.1.2: TLS 1.2 only.
MINIMUM_VERSION = ssl.TLSVersion.TLSv1_2

ClientCertificate = Literal["none", "optional", "required"]
_VERIFY_MODES = {
    "none": ssl.CERT_NONE,
    "optional": ssl.CERT_OPTIONAL,
    "required": ssl.CERT_REQUIRED,
}


class TlsMaterialError(Exception):
    """A certificate, key or trust file the context needs cannot be used; names the file."""


def _apply_profile(context: ssl.SSLContext, tls: TlsSection) -> None:
    context.minimum_version = MINIMUM_VERSION
    context.maximum_version = (
        ssl.TLSVersion.TLSv1_3 if tls.profile == "mssante+tls13" else ssl.TLSVersion.TLSv1_2
    )
    context.set_ciphers(":".join(MSSANTE_CIPHERS))  # TLS 1.2 suites; TLS 1.3 keeps its own
    context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_NO_RENEGOTIATION


def _load_chain(context: ssl.SSLContext, certificate: Path, key: Path) -> None:
    for path in (certificate, key):
        if not path.exists():
            raise TlsMaterialError(f"{path}: no such file")
    try:
        context.load_cert_chain(certificate, key)
    except (ssl.SSLError, OSError) as error:
        raise TlsMaterialError(
            f"{certificate} / {key}: not a usable certificate and key ({error})"
        ) from None


def _load_trust(context: ssl.SSLContext, tls: TlsSection) -> None:
    """Anchors and intermediates, so that OpenSSL completes a chain sent without its
    intermediate (IGC Santé peers often send the leaf alone); the path must still end at one of
    the anchors, which are the only self-signed certificates loaded."""
    for path in (tls.trust_anchors, tls.intermediates):
        if path == tls.intermediates and not path.exists():
            continue
        try:
            context.load_verify_locations(cafile=path)
        except FileNotFoundError:
            raise TlsMaterialError(f"{path}: no such file (trust anchors)") from None
        except ssl.SSLError as error:
            raise TlsMaterialError(f"{path}: not PEM certificates ({error})") from None


def server_context(tls: TlsSection, *, client_cert: ClientCertificate = "none") -> ssl.SSLContext:
    """A server context presenting ``tls.certificate``; ``client_cert`` asks the client for a
    certificate: ``optional`` (verified when sent: submission, IMAP) or ``required`` (inbound
    SMTP from other operators)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    _apply_profile(context, tls)
    context.options |= ssl.OP_CIPHER_SERVER_PREFERENCE
    _load_chain(context, tls.certificate, tls.key)
    context.verify_mode = _VERIFY_MODES[client_cert]
    if client_cert != "none":
        _load_trust(context, tls)
    return context


def client_context(
    tls: TlsSection, *, with_client_cert: bool = True, check_hostname: bool = False
) -> ssl.SSLContext:
    """A client context for connecting to another operator: the peer's chain is verified against
    our anchors; ``with_client_cert`` presents our operator certificate; ``check_hostname``
    also checks the name (off by default: MSSanté identifies peers by their certificate's DN in
    the whitelist, and the MX name need not be in the certificate)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    _apply_profile(context, tls)
    context.check_hostname = check_hostname
    context.verify_mode = ssl.CERT_REQUIRED
    _load_trust(context, tls)
    if with_client_cert:
        _load_chain(context, tls.client_certificate, tls.client_key)
    return context


def peer_certificate(ssl_object: ssl.SSLObject | ssl.SSLSocket | None) -> x509.Certificate | None:
    """The certificate the peer presented (None: none, or no TLS). On asyncio transports:
    ``transport.get_extra_info("ssl_object")``."""
    if ssl_object is None:
        return None
    der = ssl_object.getpeercert(binary_form=True)
    return x509.load_der_x509_certificate(der) if der else None
