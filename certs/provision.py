"""Bringing a data directory's trust material up, idempotently: what `pli init` and `pli pki init`
do.

- :func:`ensure_pki`: the test PKI (when absent), our server and operator certificates for
  ``server.hostname`` (when absent: real certificates put in their place are never touched), the
  trust files (when absent), and CRLs (when missing or half-way to their nextUpdate).
- :func:`ensure_demo_whitelist`: for `pli init --demo`, a small list in ANS's format naming our
  own domains with our operator certificate's DN, imported like any list, so that the demo's
  inbound checks pass (the real list is imported with `pli whitelist import`).

Nothing is regenerated when present; each function returns one line per thing it did.
"""

from __future__ import annotations

from pathlib import Path

from cryptography import x509

from pli.config.schema import Settings, TlsSection

from .ca import IssuedCertificate, PkiError, TestPki, generate_key
from .files import write_private, write_public
from .names import dn_string
from .profiles import CertificateKind, Holder, ProfileError, server_subject
from .whitelist import WhitelistEntry, WhitelistError, render_whitelist
from .whitelist_store import WhitelistStore

#: Who our development certificates name: ``CN=<hostname>,OU=1990000001,O=PLI DEMO
#: OPERATEUR,ST=Paris (75),C=FR`` (a FINESS-shaped structure id that no establishment has:
#: département 99 is "abroad").
DEMO_HOLDER = Holder(
    organisation="PLI DEMO OPERATEUR", structure_id="1990000001", state="Paris (75)"
)
#: Where `pli init --demo` writes its list (relative to data_dir; the demo config's source).
DEMO_WHITELIST = Path("whitelist/demo-listeblanche.xml")


def host_names(hostname: str) -> list[str]:
    """SAN entries for our certificate: the host name, and the loopback addresses for
    ``localhost`` (so that clients connecting to 127.0.0.1 can check the name)."""
    names = [hostname]
    if hostname == "localhost":
        names += ["127.0.0.1", "::1"]
    return names


def write_issued(issued: IssuedCertificate, certificate: Path, key: Path) -> None:
    """The key (0600, its directory 0700 if created) and the chain (0644): leaf, then the
    intermediates."""
    write_private(key, issued.key_pem())
    write_public(certificate, issued.chain_pem())


def ensure_pki(
    settings: Settings, *, holder: Holder = DEMO_HOLDER, ocsp_url: str = ""
) -> list[str]:
    """See the module docstring; raises :class:`~pli.certs.ca.PkiError`."""
    tls = settings.tls
    pki = TestPki.from_tls(tls)
    done = []
    if not pki.exists():
        pki.create(key_size=tls.key_size, ocsp_url=ocsp_url)
        done.append(f"created the test PKI in {tls.ca_dir} (root and 3 intermediate CAs)")
    else:
        done += [f"wrote {path}" for path in pki.write_trust_files(only_missing=True)]
    done += ensure_own_certificates(pki, tls, settings.server.hostname, holder)
    published = pki.publish_crls(only_stale=True)
    if published:
        done.append(f"published {len(published)} CRLs in {tls.crl_dir}")
    return done


def ensure_own_certificates(
    pki: TestPki, tls: TlsSection, hostname: str, holder: Holder
) -> list[str]:
    """Our server and operator certificates, issued when their files are missing."""
    try:
        subject = server_subject(hostname, holder)
    except ProfileError as error:
        raise PkiError(f"server.hostname: {error}") from None
    wanted: list[tuple[CertificateKind, Path, Path]] = [
        ("server", tls.certificate, tls.key),
        ("operator", tls.client_certificate, tls.client_key),
    ]
    done = []
    for kind, certificate, key in wanted:
        if certificate.exists() and key.exists():
            continue
        issued = pki.issue(
            kind, subject, hostnames=host_names(hostname), key=generate_key(tls.key_size)
        )
        write_issued(issued, certificate, key)
        pki.note_files(issued.certificate.serial_number, [certificate, key])
        done.append(f"issued our {kind} certificate for {hostname}: {certificate}")
    return done


def own_operator_dn(tls: TlsSection) -> str:
    """The DN of our operator (client) certificate, as the whitelist writes it."""
    leaf = x509.load_pem_x509_certificates(tls.client_certificate.read_bytes())[0]
    return dn_string(leaf.subject)


def our_domains(settings: Settings) -> list[str]:
    domains = list(settings.domains.professional) if settings.domains.professional_enabled else []
    if settings.domains.citizen_enabled:
        domains.append(settings.domains.citizen)
    return domains


def ensure_demo_whitelist(settings: Settings) -> list[str]:
    """For `pli init --demo`: a list naming our domains with our operator DN, written to
    ``data_dir/whitelist/demo-listeblanche.xml`` and imported, unless a list is in place.
    Raises :class:`~pli.certs.ca.PkiError`."""
    store = WhitelistStore.from_settings(settings.whitelist)
    if store.metadata() is not None:
        return []
    dn = own_operator_dn(settings.tls)
    entries = [
        WhitelistEntry(domain, dn, "pli demo: our own domain", "")
        for domain in our_domains(settings)
    ]
    data = render_whitelist(entries)
    path = settings.server.data_dir / DEMO_WHITELIST
    write_public(path, data)
    try:
        store.install(data, source=str(path))
    except WhitelistError as error:
        raise PkiError(f"demo whitelist: {error}") from None
    return [f"wrote and imported a demo whitelist ({len(entries)} domains, {dn}): {path}"]
