"""The MSSanté TLS profile over real sockets on 127.0.0.1: what is accepted, what is refused.

Every refusal is shown to be ours: the same legacy client completes its handshake with a
permissive server (the control), so the failure is not the client's inability to offer it.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import threading
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from plitest.pki import SessionPki, foreign_pki

from pli.certs.refusals import CertificateRefused
from pli.certs.tls import (
    MSSANTE_CIPHERS,
    ClientCertificate,
    TlsMaterialError,
    client_context,
    peer_certificate,
    server_context,
)
from pli.certs.verify import VerifiedPeer

#: A handshake never needs more than this on the loopback; a hang fails the test instead.
HANDSHAKE_TIMEOUT = 10.0


@dataclass
class Handshake:
    version: str | None = None
    cipher: str | None = None
    client_error: str | None = None
    server_error: str | None = None
    server_saw: x509.Certificate | None = None  # the client certificate, as the server got it


def handshake(
    server: ssl.SSLContext, client: ssl.SSLContext, server_hostname: str = "localhost"
) -> Handshake:
    """One TLS handshake between ``client`` and a server thread using ``server``."""
    result = Handshake()
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(HANDSHAKE_TIMEOUT)

    def serve() -> None:
        try:
            connection, _ = listener.accept()
        except OSError as error:
            result.server_error = repr(error)
            return
        connection.settimeout(HANDSHAKE_TIMEOUT)
        try:
            with server.wrap_socket(connection, server_side=True) as tls:
                result.server_saw = peer_certificate(tls)
                tls.recv(1)  # until the client closes
        except (ssl.SSLError, OSError) as error:
            result.server_error = str(error)
        finally:
            connection.close()

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        with (
            socket.create_connection(listener.getsockname(), timeout=HANDSHAKE_TIMEOUT) as raw,
            client.wrap_socket(raw, server_hostname=server_hostname) as tls,
        ):
            result.version = tls.version()
            result.cipher = tls.cipher()[0]
            tls.sendall(b"x")  # completes TLS 1.3's post-handshake client auth checks
            tls.recv(1)
    except (ssl.SSLError, OSError) as error:
        result.client_error = str(error)
    finally:
        thread.join(timeout=HANDSHAKE_TIMEOUT)
        listener.close()
    assert not thread.is_alive()
    return result


def legacy_client(
    version: ssl.TLSVersion, ciphers: str = "ALL:@SECLEVEL=0", tls13_max: bool = False
) -> ssl.SSLContext:
    """A client that offers exactly ``version`` (OpenSSL's security level lowered so that it
    really offers TLS 1.0/1.1 and weak suites) and checks nothing."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.minimum_version = version
    context.maximum_version = version
    context.set_ciphers(ciphers)
    return context


def permissive_server(pki: SessionPki) -> ssl.SSLContext:
    """The control: a server accepting anything from TLS 1.0 up."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1
    context.set_ciphers("ALL:@SECLEVEL=0")
    context.load_cert_chain(pki.server.certificate_path, pki.server.key_path)
    return context


pytestmark = pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1:DeprecationWarning")


@pytest.mark.parametrize("suite", MSSANTE_CIPHERS)
def test_each_listed_suite_is_negotiated(pki: SessionPki, suite: str) -> None:
    done = handshake(pki.server_context(), legacy_client(ssl.TLSVersion.TLSv1_2, suite))
    assert (done.version, done.cipher, done.client_error) == ("TLSv1.2", suite, None)


def test_our_own_client_and_server_agree_on_the_strongest_suite(pki: SessionPki) -> None:
    done = handshake(pki.server_context(client_cert="required"), pki.client_context())
    assert (done.version, done.cipher) == ("TLSv1.2", "ECDHE-RSA-AES256-GCM-SHA384")
    assert done.server_saw == pki.operator.certificate
    # what pli does next with the certificate the TLS layer got:
    peer = pki.trust_store().verify(done.server_saw, "client")
    assert peer.identity.common_name == "localhost"


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1])
def test_tls_1_0_and_1_1_are_refused(pki: SessionPki, version: ssl.TLSVersion) -> None:
    control = handshake(permissive_server(pki), legacy_client(version))
    assert (
        control.version
        == {ssl.TLSVersion.TLSv1: "TLSv1", ssl.TLSVersion.TLSv1_1: "TLSv1.1"}[version]
    )
    refused = handshake(pki.server_context(), legacy_client(version))
    assert refused.version is None
    assert "unsupported protocol" in (refused.server_error or "")
    assert "protocol version" in (refused.client_error or "")


@pytest.mark.parametrize(
    "suite",
    [
        "ECDHE-RSA-CHACHA20-POLY1305",  # modern, but not listed
        "ECDHE-RSA-AES128-SHA",  # CBC with SHA-1
        "AES128-GCM-SHA256",  # RSA key exchange: no forward secrecy
        "AES256-SHA256",  # RSA key exchange with a listed hash
    ],
)
def test_suites_outside_the_list_are_refused(pki: SessionPki, suite: str) -> None:
    client = legacy_client(ssl.TLSVersion.TLSv1_2, f"{suite}:@SECLEVEL=0")
    control = handshake(permissive_server(pki), client)
    assert control.cipher == suite
    refused = handshake(pki.server_context(), client)
    assert refused.version is None
    assert "no shared cipher" in (refused.server_error or "")


def test_tls_1_3_is_refused_by_the_strict_profile_and_accepted_with_the_option(
    pki: SessionPki,
) -> None:
    client = legacy_client(ssl.TLSVersion.TLSv1_3, "DEFAULT")
    refused = handshake(pki.server_context(), client)
    assert refused.version is None and "unsupported protocol" in (refused.server_error or "")
    accepted = handshake(pki.server_context(profile="mssante+tls13"), client)
    assert accepted.version == "TLSv1.3"
    # with the option, TLS 1.2 still uses only the listed suites
    old = legacy_client(ssl.TLSVersion.TLSv1_2, "ECDHE-RSA-CHACHA20-POLY1305")
    assert handshake(pki.server_context(profile="mssante+tls13"), old).version is None


def test_our_client_refuses_a_server_outside_the_profile(pki: SessionPki) -> None:
    server = permissive_server(pki)
    server.maximum_version = ssl.TLSVersion.TLSv1_1
    refused = handshake(server, pki.client_context())
    assert refused.version is None


def test_a_required_client_certificate_must_be_sent(pki: SessionPki) -> None:
    refused = handshake(
        pki.server_context(client_cert="required"), pki.client_context(with_client_cert=False)
    )
    assert refused.version is None
    assert "peer did not return a certificate" in (refused.server_error or "")


def test_an_optional_client_certificate_may_be_absent(pki: SessionPki) -> None:
    done = handshake(
        pki.server_context(client_cert="optional"), pki.client_context(with_client_cert=False)
    )
    assert done.version == "TLSv1.2" and done.server_saw is None


def test_a_client_certificate_from_an_unknown_ca_fails_the_handshake(pki: SessionPki) -> None:
    stranger = foreign_pki().issue_operator("mx.etranger.fr")
    refused = handshake(pki.server_context(client_cert="optional"), pki.client_context(stranger))
    assert "certificate verify failed" in (refused.server_error or "")


def test_a_client_sending_only_its_leaf_is_completed_from_our_intermediates(
    pki: SessionPki, tmp_path: Path
) -> None:
    leaf_only = tmp_path / "leaf.crt"
    end = b"-----END CERTIFICATE-----\n"
    leaf_only.write_bytes(pki.operator.certificate_path.read_bytes().split(end)[0] + end)
    client = legacy_client(ssl.TLSVersion.TLSv1_2, "ECDHE-RSA-AES128-GCM-SHA256")
    client.load_cert_chain(leaf_only, pki.operator.key_path)  # no trust store to chain from
    done = handshake(pki.server_context(client_cert="required"), client)
    assert done.server_saw == pki.operator.certificate


def test_our_client_verifies_the_servers_chain(pki: SessionPki) -> None:
    stranger = foreign_pki().issue_server("localhost")
    refused = handshake(pki.server_context(credential=stranger), pki.client_context())
    assert "certificate verify failed" in (refused.client_error or "")


def test_host_name_checking_is_an_option_of_the_client(pki: SessionPki) -> None:
    other = pki.issue_server("mx.autre.fr")
    relaxed = handshake(pki.server_context(credential=other), pki.client_context())
    assert relaxed.version == "TLSv1.2"  # MSSanté identifies the peer by its DN, not its name
    strict = handshake(
        pki.server_context(credential=other), pki.client_context(check_hostname=True)
    )
    assert "Hostname mismatch" in (strict.client_error or "")


def test_missing_material_is_named(pki: SessionPki, tmp_path: Path) -> None:
    with pytest.raises(TlsMaterialError, match=f"{tmp_path}/none.crt: no such file"):
        server_context(pki.tls_settings(certificate=tmp_path / "none.crt"))
    (tmp_path / "bad.crt").write_text("not a certificate")
    with pytest.raises(TlsMaterialError, match="not a usable certificate and key"):
        server_context(pki.tls_settings(certificate=tmp_path / "bad.crt"))
    with pytest.raises(TlsMaterialError, match="no such file \\(trust anchors\\)"):
        server_context(
            pki.tls_settings(trust_anchors=tmp_path / "none.pem"), client_cert="required"
        )
    (tmp_path / "bad.pem").write_text("garbage")
    with pytest.raises(TlsMaterialError, match="not PEM certificates"):
        client_context(pki.tls_settings(trust_anchors=tmp_path / "bad.pem"))
    with pytest.raises(TlsMaterialError, match=r"operator\.crt: no such file"):
        client_context(pki.tls_settings(client_certificate=tmp_path / "operator.crt"))


def test_peer_certificate_without_tls_is_none() -> None:
    assert peer_certificate(None) is None


async def _asyncio_peer(
    pki: SessionPki, client: ssl.SSLContext, client_cert: ClientCertificate
) -> tuple[VerifiedPeer | None, CertificateRefused | None]:
    """An asyncio TLS server (as SMTP and IMAP run) verifying its client with pli's check."""
    outcome: list[tuple[VerifiedPeer | None, CertificateRefused | None]] = []
    trust = pki.trust_store()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            peer = await trust.verify_tls_peer(writer.get_extra_info("ssl_object"), "client")
            outcome.append((peer, None))
        except CertificateRefused as refused:
            outcome.append((None, refused))
        writer.close()

    server = await asyncio.start_server(
        handle, "127.0.0.1", 0, ssl=pki.server_context(client_cert=client_cert)
    )
    host, port = server.sockets[0].getsockname()[:2]
    async with server:
        reader, writer = await asyncio.open_connection(
            host, port, ssl=client, server_hostname="localhost"
        )
        await reader.read()  # the server closes once it has decided
        writer.close()
        await writer.wait_closed()
    return outcome[0]


async def test_an_asyncio_server_verifies_its_client_with_pli(pki: SessionPki) -> None:
    doctor = pki.issue_person("10000000024", "ASYNC", "Alice")
    peer, refused = await _asyncio_peer(pki, pki.client_context(doctor), "optional")
    assert refused is None and peer is not None
    assert peer.identity.rpps == "10000000024"
    peer, refused = await _asyncio_peer(pki, pki.client_context(with_client_cert=False), "optional")
    assert peer is None and refused is not None
    assert (refused.reason, refused.public_text) == (
        "no-certificate",
        "a client certificate is required",
    )
