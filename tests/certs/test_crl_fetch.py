"""CRLs downloaded from a certificate's distribution points (certs/crl_fetch.py): through the
trust store, from a real HTTP server on 127.0.0.1, into a real CRL directory; what is believed,
what is refused and said, and that a failing address is not hammered."""

from __future__ import annotations

import datetime as dt
import socket
import threading
import time
from pathlib import Path

import pytest
import structlog
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding
from plitest.pki import Credential, FileServer, SessionPki, foreign_pki

from pli.certs.crl_fetch import (
    RETRY_AFTER_FAILURE,
    CrlFetcher,
    CrlFetchError,
    distribution_points,
    fetched_path,
)
from pli.certs.refusals import CertificateRefused
from pli.certs.verify import TrustStore

NOW = dt.datetime.now(dt.UTC)


def crl_points(*urls: str) -> tuple[x509.ExtensionType, bool]:
    points = [
        x509.DistributionPoint([x509.UniformResourceIdentifier(url)], None, None, None)
        for url in urls
    ]
    return x509.CRLDistributionPoints(points), False


def publish(file_server: FileServer, path: str, status: int, body: bytes) -> str:
    """The local server answers ``path`` with ``status`` and ``body``; its URL."""
    file_server.routes[path] = (status, body)
    return file_server.url(path)


def operator_with_points(pki: SessionPki, *urls: str) -> Credential:
    return pki.issue_operator("crl-fetch.fr", extra_extensions=[crl_points(*urls)])


def servers_crl(pki: SessionPki) -> bytes:
    """The current CRL of the CA that issues operator certificates (DER)."""
    return pki.pki.crl_path("servers").read_bytes()


def store_over(pki: SessionPki, crl_dir: Path, **overrides: object) -> TrustStore:
    """A trust store whose CRL directory holds the root's CRL only (the intermediates' are
    current), so the leaf's issuer has none until it is downloaded."""
    crl_dir.mkdir(exist_ok=True)
    root = pki.pki.crl_path("root")
    (crl_dir / root.name).write_bytes(root.read_bytes())
    return pki.trust_store(crl_dir=crl_dir, **overrides)


def refused(store: TrustStore, credential: Credential) -> CertificateRefused:
    with pytest.raises(CertificateRefused) as refusal:
        store.verify(credential.certificate, "client")
    return refusal.value


def test_a_missing_crl_is_downloaded_stored_and_used(
    pki: SessionPki, file_server: FileServer, tmp_path: Path
) -> None:
    url = publish(file_server, "/servers.crl", 200, servers_crl(pki))
    credential = operator_with_points(pki, url)
    crl_dir = tmp_path / "crl"
    with structlog.testing.capture_logs() as logs:
        peer = store_over(pki, crl_dir).verify(credential.certificate, "client")
    leaf = peer.revocation[0]
    assert (leaf.status, leaf.source) == ("good", "crl")
    assert leaf.detail == f"not listed in {fetched_path(crl_dir, url)}"
    assert fetched_path(crl_dir, url).read_bytes() == servers_crl(pki)
    assert [e["event"] for e in logs if e["event"].startswith("crl")] == ["crl-downloaded"]
    # a current CRL is not downloaded again, by this store nor by another process's
    store_over(pki, crl_dir).verify(credential.certificate, "client")
    assert file_server.requests == ["GET /servers.crl"]


def test_a_revocation_is_seen_in_the_downloaded_crl(
    pki: SessionPki, file_server: FileServer, tmp_path: Path
) -> None:
    url = file_server.url("/revoked.crl")
    credential = operator_with_points(pki, url)
    pki.revoke(credential, "key-compromise")
    file_server.routes["/revoked.crl"] = (200, servers_crl(pki))
    found = refused(store_over(pki, tmp_path / "crl"), credential)
    assert found.reason == "revoked"
    assert "(key_compromise)" in found.text


def test_a_stale_crl_is_replaced_by_a_fresh_download(
    pki: SessionPki, file_server: FileServer, tmp_path: Path
) -> None:
    url = publish(file_server, "/replaced.crl", 200, servers_crl(pki))
    credential = operator_with_points(pki, url)
    crl_dir = tmp_path / "crl"
    store = store_over(pki, crl_dir)
    old = servers_crl_built(
        pki, last_update=NOW - dt.timedelta(days=40), next_update=NOW - dt.timedelta(days=10)
    )
    (crl_dir / "servers.crl").write_bytes(old)
    peer = store.verify(credential.certificate, "client")
    assert (peer.revocation[0].status, peer.revocation[0].detail) == (
        "good",
        f"not listed in {fetched_path(crl_dir, url)}",
    )
    assert file_server.requests == ["GET /replaced.crl"]


def test_a_stale_download_is_refused_and_the_kept_crl_stays(
    pki: SessionPki, file_server: FileServer, tmp_path: Path
) -> None:
    url = publish(file_server, "/fresh.crl", 200, servers_crl(pki))
    credential = operator_with_points(pki, url)
    crl_dir = tmp_path / "crl"
    store = store_over(pki, crl_dir, revocation_failure="soft")
    (crl_dir / "servers.crl").write_bytes(servers_crl(pki))
    later = NOW + dt.timedelta(days=31)  # past the kept CRL's nextUpdate (30 days)
    peer = store.verify(credential.certificate, "client", now=later)
    # the download is as stale then as the kept file: refused, said, and the old file kept
    assert peer.revocation[0].status == "unknown"
    assert "sent a stale CRL" in peer.revocation[0].detail
    assert not fetched_path(crl_dir, url).exists()
    good = pki.trust_store(crl_dir=crl_dir).verify(credential.certificate, "client")
    assert good.revocation[0].status == "good"


def servers_crl_built(
    pki: SessionPki,
    *,
    last_update: dt.datetime,
    next_update: dt.datetime,
    key: rsa.RSAPrivateKey | None = None,
    scope: x509.IssuingDistributionPoint | None = None,
) -> bytes:
    """A CRL naming our servers CA as its issuer, signed by its key unless ``key`` is given."""
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(pki.pki.ca_certificate("servers").subject)
        .last_update(last_update)
        .next_update(next_update)
        .add_extension(x509.CRLNumber(0), critical=False)  # older than any the PKI published
    )
    if scope is not None:
        builder = builder.add_extension(scope, critical=True)
    signer = key or pki.pki.ca_key("servers")
    return builder.sign(signer, hashes.SHA256()).public_bytes(Encoding.DER)  # type: ignore[arg-type]


def _foreign_signed_crl(pki: SessionPki) -> bytes:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    day = dt.timedelta(days=1)
    return servers_crl_built(pki, last_update=NOW - day, next_update=NOW + day, key=key)


@pytest.mark.parametrize(
    ("answer", "said"),
    [
        ((404, b"not here"), "answered HTTP 404"),
        ((200, b"<html>maintenance</html>"), "sent something that is not a CRL"),
        (
            "foreign",
            "sent a CRL of CN=TEST PLI AC IGC-SANTE ELEMENTAIRE SERVEURS,OU=IGC-SANTE TEST,"
            "O=PLI ETRANGERE",
        ),
        ("forged", "sent a CRL whose signature does not verify"),
    ],
)
def test_what_cannot_be_believed_is_refused_and_said(
    pki: SessionPki, file_server: FileServer, tmp_path: Path, answer: object, said: str
) -> None:
    if answer == "foreign":
        answer = (200, servers_crl(foreign_pki()))
    elif answer == "forged":
        answer = (200, _foreign_signed_crl(pki))
    status, body = answer  # type: ignore[misc]
    url = publish(file_server, f"/bad-{tmp_path.name}.crl", status, body)
    credential = operator_with_points(pki, url)
    crl_dir = tmp_path / "crl"
    found = refused(store_over(pki, crl_dir), credential)
    assert found.reason == "revocation-unknown"
    assert said in found.text
    assert [path.name for path in crl_dir.iterdir()] == ["root.crl"]  # nothing added


def test_a_failing_address_is_not_asked_again_at_once(
    pki: SessionPki, file_server: FileServer, tmp_path: Path
) -> None:
    credential = operator_with_points(pki, publish(file_server, "/down.crl", 503, b""))
    store = store_over(pki, tmp_path / "crl")
    for _ in range(3):
        refused(store, credential)
    assert file_server.requests == ["GET /down.crl"]
    assert "failed recently; not asked again yet" in refused(store, credential).text


def test_the_fetcher_asks_again_after_the_retry_delay(
    pki: SessionPki, file_server: FileServer, tmp_path: Path
) -> None:
    now = [0.0]
    fetcher = CrlFetcher(tmp_path, timeout=5, clock=lambda: now[0])
    issuer = pki.pki.ca_certificate("servers")
    url = publish(file_server, "/later.crl", 500, b"")
    with pytest.raises(CrlFetchError, match="answered HTTP 500"):
        fetcher.fetch(url, issuer, NOW)
    publish(file_server, "/later.crl", 200, servers_crl(pki))
    with pytest.raises(CrlFetchError, match="failed recently"):
        fetcher.fetch(url, issuer, NOW)
    now[0] += RETRY_AFTER_FAILURE + 1
    assert fetcher.fetch(url, issuer, NOW) == fetched_path(tmp_path, url)


def test_the_next_address_is_tried_when_one_fails(
    pki: SessionPki, file_server: FileServer, tmp_path: Path
) -> None:
    first = publish(file_server, "/first.crl", 500, b"")
    second = publish(file_server, "/second.crl", 200, servers_crl(pki))
    credential = operator_with_points(pki, first, second)
    peer = store_over(pki, tmp_path / "crl").verify(credential.certificate, "client")
    assert peer.revocation[0].status == "good"
    assert fetched_path(tmp_path / "crl", second).exists()


def test_a_server_that_trickles_is_abandoned_at_the_deadline(
    pki: SessionPki, tmp_path: Path
) -> None:
    """tls.crl_timeout bounds the whole answer, not each read: one byte every 0.2 s of a
    declared 1 MB body is given up after the 1 s timeout."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def trickle() -> None:
        connection, _ = listener.accept()
        with connection:
            connection.recv(65536)
            connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n")
            for _ in range(50):  # 10 s at most: a regression fails rather than hangs
                if stop.is_set():
                    return
                try:
                    connection.sendall(b"0")
                except OSError:
                    return
                stop.wait(0.2)

    thread = threading.Thread(target=trickle, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{listener.getsockname()[1]}/slow.crl"
    fetcher = CrlFetcher(tmp_path, timeout=1.0)
    started = time.monotonic()
    try:
        with pytest.raises(CrlFetchError, match="gave no complete answer within 1 s"):
            fetcher.fetch(url, pki.pki.ca_certificate("servers"), NOW)
        assert time.monotonic() - started < 5
    finally:
        stop.set()
        thread.join(timeout=5)
        listener.close()


@pytest.mark.parametrize(
    ("scope", "covered"),
    [
        (x509.IssuingDistributionPoint(None, None, False, True, None, False, False), False),
        (x509.IssuingDistributionPoint(None, None, True, False, None, False, False), True),
        ("another point", False),
        ("the certificate's point", True),
    ],
)
def test_a_crl_covers_only_what_its_issuing_distribution_point_says(
    pki: SessionPki, file_server: FileServer, tmp_path: Path, scope: object, covered: bool
) -> None:
    """RFC 5280 §6.3.3 (b)(2): a CRL for CA certificates only, or published for another
    distribution point, says nothing of an operator certificate."""
    url = file_server.url(f"/scoped-{tmp_path.name}.crl")
    credential = operator_with_points(pki, url)
    if isinstance(scope, str):
        where = url if scope == "the certificate's point" else file_server.url("/other.crl")
        scope = x509.IssuingDistributionPoint(
            [x509.UniformResourceIdentifier(where)], None, False, False, None, False, False
        )
    assert isinstance(scope, x509.IssuingDistributionPoint)
    crl_dir = tmp_path / "crl"
    store = store_over(pki, crl_dir, revocation_failure="soft")
    (crl_dir / "servers.crl").write_bytes(
        servers_crl_built(
            pki,
            last_update=NOW - dt.timedelta(hours=1),
            next_update=NOW + dt.timedelta(days=1),
            scope=scope,
        )
    )
    leaf = store.verify(credential.certificate, "client").revocation[0]
    assert (leaf.status == "good") is covered, leaf.detail


def test_nothing_is_downloaded_when_crl_download_is_off(
    pki: SessionPki, file_server: FileServer, tmp_path: Path
) -> None:
    credential = operator_with_points(pki, publish(file_server, "/off.crl", 200, servers_crl(pki)))
    found = refused(store_over(pki, tmp_path / "crl", crl_download=False), credential)
    assert found.reason == "revocation-unknown"
    assert file_server.requests == []


def test_only_http_points_of_complete_crls_are_used() -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "points")])
    partial = x509.DistributionPoint(
        [x509.UniformResourceIdentifier("http://example.test/keycompromise.crl")],
        None,
        frozenset({x509.ReasonFlags.key_compromise}),
        None,
    )
    points = x509.CRLDistributionPoints(
        [
            x509.DistributionPoint(
                [
                    x509.UniformResourceIdentifier("ldap://example.test/cn=ca?crl"),
                    x509.UniformResourceIdentifier("http://example.test/ca.crl"),
                    x509.DNSName("example.test"),
                ],
                None,
                None,
                None,
            ),
            partial,
            x509.DistributionPoint(
                [x509.UniformResourceIdentifier("HTTPS://example.test/ca2.crl")], None, None, None
            ),
        ]
    )
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(NOW)
        .not_valid_after(NOW + dt.timedelta(days=1))
        .add_extension(points, critical=False)
        .sign(key, hashes.SHA256())
    )
    assert distribution_points(certificate) == [
        "http://example.test/ca.crl",
        "HTTPS://example.test/ca2.crl",
    ]
