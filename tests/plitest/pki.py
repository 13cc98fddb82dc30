"""Test certificates from an IGC Santé-shaped test PKI, built once per test session.

Every tier that needs real TLS uses this (SMTP, IMAP, webmail, the trust space's own tests)::

    from plitest.pki import session_pki

    pki = session_pki()                               # built on first use, then cached
    tls = pki.tls_settings()                          # a TlsSection: our server/operator certs,
                                                      # anchors, intermediates, CRLs
    server_ctx = pki.server_context(client_cert="required")   # MSSanté profile
    client_ctx = pki.client_context()                 # presents our operator certificate

    peer = pki.issue_operator("mx.other-operator.fr") # another operator (clientAuth)
    ctx = pki.client_context(peer)                    # connect as that operator
    doctor = pki.issue_person("10003461033", "DUPONT", "Jean")   # CPS-like, CN=810003461033
    app = pki.issue_org("990000001", "CH EXEMPLE", service="CR-AUTO")  # ORG AUTH_CLI-like
    pki.revoke(doctor)                                # listed in the next CRL at once

    settings = pki.settings(tmp_path)                 # full Settings with [tls] pointing here

What is in it: the root ``TEST PLI AC RACINE IGC-SANTE`` and its three intermediates (servers,
persons, organisations; see ``certs/ca.py``), our own certificates for ``localhost`` (server:
serverAuth; operator: clientAuth; same DN ``CN=localhost,OU=1990000001,O=PLI DEMO OPERATEUR,
ST=Paris (75),C=FR``; SAN localhost, 127.0.0.1, ::1), CRLs for all four CAs, and an OCSP
responder on 127.0.0.1 (started on first use: ``issue_*(…, ocsp=True)`` puts its URL in the
certificate).

Every :class:`Credential` is written to files (leaf + intermediate PEM, key PEM) in the session's
temporary directory, so it can be given to real clients and servers (swaks, Postfix, Dovecot).
End-entity certificates share one RSA key by default (key generation is the slow part); pass
``fresh_key=True`` for a key of its own. Revoking is session-wide: revoke only certificates your
test issued. A test that changes CRL files must work on a copy (:meth:`SessionPki.tls_settings`
with ``crl_dir=…``).
"""

from __future__ import annotations

import atexit
import contextlib
import datetime as dt
import json
import shutil
import ssl
import tempfile
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cached_property
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import ExtendedKeyUsageOID

from pli.certs.ca import (
    DEFAULT_ORGANISATION,
    IssuedCertificate,
    PkiPaths,
    RsaKey,
    TestPki,
    certificate_pem,
    generate_key,
    key_pem,
)
from pli.certs.names import dn_string
from pli.certs.ocsp_server import OcspServer
from pli.certs.profiles import (
    CertificateKind,
    Holder,
    organisation_subject,
    person_subject,
    server_subject,
    structure_national_id,
    subject_alternative_names,
)
from pli.certs.provision import DEMO_HOLDER, host_names
from pli.certs.tls import ClientCertificate, client_context, server_context
from pli.certs.verify import TrustStore
from pli.certs.whitelist import WhitelistEntry, render_whitelist
from pli.config.loading import load_settings
from pli.config.schema import Settings, TlsSection

#: Tests use 2048-bit keys: the floor (and what IGC Santé issues to end entities).
KEY_SIZE = 2048
Profile = Literal["mssante", "mssante+tls13"]


@dataclass(frozen=True)
class Credential:
    """An issued certificate, its key and their files."""

    certificate: x509.Certificate
    key: RsaKey
    chain: tuple[x509.Certificate, ...]  # intermediates (not the root)
    certificate_path: Path  # leaf then intermediates, PEM
    key_path: Path  # PEM, mode 0600

    @property
    def der(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.DER)

    @property
    def dn(self) -> str:
        """The subject as the whitelist writes it."""
        return dn_string(self.certificate.subject)

    @property
    def serial(self) -> int:
        return self.certificate.serial_number


class SessionPki:
    """A test PKI in ``root`` with helpers (see the module docstring)."""

    def __init__(self, root: Path, *, organisation: str = DEFAULT_ORGANISATION) -> None:
        self.root = root
        paths = PkiPaths(
            root / "ca", root / "crl", root / "trust/anchors.pem", root / "trust/intermediates.pem"
        )
        self.pki = TestPki(paths)
        self.pki.create(key_size=KEY_SIZE, organisation=organisation)
        self.shared_key = generate_key(KEY_SIZE)
        self._counter = 0
        self._lock = threading.Lock()
        self._ocsp: OcspServer | None = None
        self.server = self.issue_server("localhost", name="server")
        self.operator = self.issue_operator("localhost", name="operator")

    # -- issuing -----------------------------------------------------------------------------

    def _name(self, stem: str) -> str:
        with self._lock:
            self._counter += 1
            return f"{self._counter:04d}-{stem}"

    def issue(
        self,
        kind: CertificateKind,
        subject: x509.Name,
        *,
        hostnames: Iterable[str] = (),
        emails: Iterable[str] = (),
        fresh_key: bool = False,
        not_before: dt.datetime | None = None,
        not_after: dt.datetime | None = None,
        usages: tuple[x509.ObjectIdentifier, ...] | None = None,
        ocsp: bool = False,
        extra_extensions: Iterable[tuple[x509.ExtensionType, bool]] = (),
        name: str | None = None,
    ) -> Credential:
        """Any certificate of ``kind`` (the CA is chosen by the kind); see
        :meth:`pli.certs.ca.TestPki.issue` for the options."""
        issued = self.pki.issue(
            kind,
            subject,
            hostnames=hostnames,
            emails=emails,
            key=generate_key(KEY_SIZE) if fresh_key else self.shared_key,
            not_before=not_before,
            not_after=not_after,
            usages=usages,
            ocsp_url=self.ocsp_server.url if ocsp else "",
            extra_extensions=extra_extensions,
        )
        return self._write(issued, name or self._name(kind))

    def _write(self, issued: IssuedCertificate, name: str) -> Credential:
        assert issued.key is not None
        directory = self.root / "issued"
        directory.mkdir(exist_ok=True)
        certificate_path, key_path = directory / f"{name}.crt", directory / f"{name}.key"
        certificate_path.write_bytes(issued.chain_pem())
        key_path.write_bytes(issued.key_pem())
        key_path.chmod(0o600)
        return Credential(issued.certificate, issued.key, issued.chain, certificate_path, key_path)

    def issue_server(
        self,
        hostname: str = "localhost",
        *,
        holder: Holder = DEMO_HOLDER,
        sans: Iterable[str] = (),
        **options: Any,
    ) -> Credential:
        """A server certificate (serverAuth) with the whitelist's DN shape for ``hostname``."""
        return self.issue(
            "server",
            server_subject(hostname, holder),
            hostnames=[*host_names(hostname), *sans],
            **options,
        )

    def issue_operator(
        self, hostname: str, *, holder: Holder = DEMO_HOLDER, **options: Any
    ) -> Credential:
        """Another operator's (or our) client certificate (clientAuth), DN like the whitelist's."""
        return self.issue(
            "operator", server_subject(hostname, holder), hostnames=[hostname], **options
        )

    def issue_person(
        self,
        rpps: str = "10003461033",
        surname: str = "DUPONT",
        given_name: str = "Jean",
        *,
        holder: Holder | None = None,
        emails: Iterable[str] = (),
        **options: Any,
    ) -> Credential:
        """A CPS-like person certificate: ``CN=8<RPPS>,SN=…,GN=…`` (clientAuth)."""
        return self.issue(
            "person", person_subject(rpps, surname, given_name, holder), emails=emails, **options
        )

    def issue_org(
        self,
        identifier: str = "990000001",
        name: str = "CH EXEMPLE",
        *,
        service: str | None = None,
        state: str = "Paris (75)",
        emails: Iterable[str] = (),
        **options: Any,
    ) -> Credential:
        """An ORG AUTH_CLI-like certificate for a structure (FINESS, SIRET or idNat_Struct):
        ``CN=<service>,OU=<idNat_Struct>,O=<name>,ST=…,C=FR``, no SAN unless ``emails``."""
        holder = Holder(name, structure_national_id(identifier), state)
        return self.issue(
            "org", organisation_subject(service or name, holder), emails=emails, **options
        )

    def self_signed(self, hostname: str = "localhost", *, client: bool = True) -> Credential:
        """A self-signed certificate with the shape of an operator's (never trusted)."""
        subject = server_subject(hostname, DEMO_HOLDER)
        usage = ExtendedKeyUsageOID.CLIENT_AUTH if client else ExtendedKeyUsageOID.SERVER_AUTH
        now = dt.datetime.now(dt.UTC)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(self.shared_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1))
            .not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(
                x509.SubjectAlternativeName(subject_alternative_names(tuple(host_names(hostname)))),
                critical=False,
            )
            .sign(self.shared_key, hashes.SHA256())
        )
        name = self._name("self-signed")
        directory = self.root / "issued"
        directory.mkdir(exist_ok=True)
        certificate_path, key_path = directory / f"{name}.crt", directory / f"{name}.key"
        certificate_path.write_bytes(certificate_pem(certificate))
        key_path.write_bytes(key_pem(self.shared_key))
        return Credential(certificate, self.shared_key, (), certificate_path, key_path)

    def revoke(self, credential: Credential | int, reason: str = "unspecified") -> None:
        """Revoke (the CRL of its CA is re-published at once; the OCSP responder knows)."""
        serial = credential if isinstance(credential, int) else credential.serial
        self.pki.revoke(serial, reason)

    # -- OCSP ---------------------------------------------------------------------------------

    @cached_property
    def ocsp_server(self) -> OcspServer:
        """The session's OCSP responder on 127.0.0.1 (started on first use)."""
        self._ocsp = OcspServer(self.pki).start()
        return self._ocsp

    # -- settings and contexts ---------------------------------------------------------------

    @property
    def crl_dir(self) -> Path:
        return self.pki.paths.crl_dir

    def tls_settings(
        self,
        *,
        server: Credential | None = None,
        client: Credential | None = None,
        **overrides: Any,
    ) -> TlsSection:
        """A ``[tls]`` section pointing at this PKI: ``server`` and ``client`` default to our
        own certificates; ``overrides`` set any other key (``profile``, ``ocsp``, ``crl_dir``,
        ``revocation_failure``…)."""
        server = server or self.server
        client = client or self.operator
        values: dict[str, Any] = {
            "certificate": server.certificate_path,
            "key": server.key_path,
            "client_certificate": client.certificate_path,
            "client_key": client.key_path,
            "trust_anchors": self.pki.paths.trust_anchors,
            "intermediates": self.pki.paths.intermediates,
            "crl_dir": self.pki.paths.crl_dir,
            "ca_dir": self.pki.paths.ca_dir,
            "key_size": KEY_SIZE,
        }
        values.update(overrides)
        return TlsSection(**values)

    def settings(self, data_dir: Path, **tls_overrides: Any) -> Settings:
        """Full settings for ``data_dir`` whose ``[tls]`` is :meth:`tls_settings` (written to
        ``data_dir/pli-test.toml`` and loaded, so every other path resolves in ``data_dir``)."""
        data_dir.mkdir(parents=True, exist_ok=True)
        tls = self.tls_settings(**tls_overrides).model_dump(mode="json")
        lines = ["[server]", 'data_dir = "."', "", "[tls]"]
        lines += [f"{key} = {json.dumps(value)}" for key, value in tls.items()]
        path = data_dir / "pli-test.toml"
        path.write_text("\n".join(lines) + "\n")
        return load_settings(path, environ={})

    def server_context(
        self,
        client_cert: ClientCertificate = "none",
        *,
        credential: Credential | None = None,
        profile: Profile = "mssante",
    ) -> ssl.SSLContext:
        """A server context with the MSSanté profile presenting ``credential`` (ours)."""
        return server_context(
            self.tls_settings(server=credential, profile=profile), client_cert=client_cert
        )

    def client_context(
        self,
        credential: Credential | None = None,
        *,
        with_client_cert: bool = True,
        check_hostname: bool = False,
        profile: Profile = "mssante",
    ) -> ssl.SSLContext:
        """A client context with the MSSanté profile presenting ``credential`` (default: our
        operator certificate; ``with_client_cert=False``: none)."""
        return client_context(
            self.tls_settings(client=credential, profile=profile),
            with_client_cert=with_client_cert,
            check_hostname=check_hostname,
        )

    def trust_store(self, **tls_overrides: Any) -> TrustStore:
        """A :class:`~pli.certs.verify.TrustStore` over this PKI (``tls_overrides`` as in
        :meth:`tls_settings`)."""
        return TrustStore.load(self.tls_settings(**tls_overrides))

    def whitelist_xml(self, listing: dict[str, Iterable[Credential | str]]) -> bytes:
        """A list in ANS's format: domain → the credentials (or DN strings) listed for it."""
        entries = [
            WhitelistEntry(domain, item if isinstance(item, str) else item.dn, "test", "")
            for domain, items in listing.items()
            for item in items
        ]
        return render_whitelist(entries)

    def close(self) -> None:
        if self._ocsp is not None:
            self._ocsp.stop()
            self._ocsp = None


_session: SessionPki | None = None
_foreign: SessionPki | None = None
_session_lock = threading.Lock()
_directory: Path | None = None


def _root() -> Path:
    global _directory
    if _directory is None:
        _directory = Path(tempfile.mkdtemp(prefix="pli-test-pki-"))
        atexit.register(_cleanup)
    return _directory


def _cleanup() -> None:
    for pki in (_session, _foreign):
        if pki is not None:
            pki.close()
    if _directory is not None:
        shutil.rmtree(_directory, ignore_errors=True)


def session_pki() -> SessionPki:
    """The session's test PKI (built on the first call: about a second)."""
    global _session
    with _session_lock:
        if _session is None:
            _session = SessionPki(_root() / "trusted")
        return _session


def foreign_pki() -> SessionPki:
    """Another PKI of the same shape (``O=PLI ETRANGERE``), which nothing trusts: its
    certificates are refused with ``unknown-ca``."""
    global _foreign
    with _session_lock:
        if _foreign is None:
            _foreign = SessionPki(_root() / "foreign", organisation="PLI ETRANGERE")
        return _foreign


class _Handler(BaseHTTPRequestHandler):
    routes: dict[str, tuple[int, bytes]]
    requests: list[str]

    def _answer(self) -> None:
        self.requests.append(f"{self.command} {self.path}")
        if self.command == "POST":
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
        status, body = self.routes.get(self.path, (404, b"not found"))
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer

    def log_message(self, *args: object) -> None:
        pass


@dataclass
class FileServer:
    """A local HTTP server (127.0.0.1, port 0) answering ``routes``: path → (status, body)."""

    base: str
    routes: dict[str, tuple[int, bytes]]
    requests: list[str]

    def url(self, path: str) -> str:
        return self.base + path


@contextlib.contextmanager
def serve_files() -> Iterator[FileServer]:
    """A :class:`FileServer` for the block (the whitelist's and OCSP's download tests)."""
    routes: dict[str, tuple[int, bytes]] = {}
    requests: list[str] = []
    handler = type("Handler", (_Handler,), {"routes": routes, "requests": requests})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield FileServer(f"http://127.0.0.1:{server.server_address[1]}", routes, requests)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
