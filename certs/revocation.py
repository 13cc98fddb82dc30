"""Is a certificate revoked? CRLs from a directory, and OCSP when configured (MSSanté ECO.1.1.6:
revocation checked by CRL or OCSP).

- :class:`CrlStore` reads the CRL files of ``tls.crl_dir`` (DER or PEM, any name), keeps for each
  issuer the newest CRL whose signature verifies with that issuer's key, and re-reads the
  directory when a file changes (so `pli pki revoke` or a CRL download is seen at once); with
  ``tls.crl_download`` it downloads a missing or stale CRL from the certificate's distribution
  points first (``crl_fetch.py``).
- :class:`RevocationChecker` combines them: revoked by either source is revoked; otherwise a
  current answer from either says good; otherwise the status is unknown, with the reasons.

The checker answers; :mod:`pli.certs.verify` decides what an unknown status costs the peer
(``tls.revocation_failure``).
"""

from __future__ import annotations

import datetime as dt
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import structlog
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from . import ocsp

log = structlog.get_logger(__name__)

#: Largest CRL file read. IGC Santé's CRLs are at most a few megabytes; a 64 MiB bound keeps a
#: stray file from exhausting memory.
MAX_CRL_SIZE = 64 * 1024 * 1024
#: Clock skew tolerated on a CRL's thisUpdate (RFC 5280 §6.3.3 leaves it to the relying party).
CRL_CLOCK_SKEW = dt.timedelta(minutes=5)

Fetch = Callable[[str, bytes, float], bytes]
#: Downloads a CRL of the issuer for the certificate into the directory; the problems met.
DownloadCrl = Callable[[x509.Certificate, x509.Certificate, dt.datetime], list[str]]


@dataclass(frozen=True)
class RevocationResult:
    status: str  # "good", "revoked" or "unknown"
    source: str  # "crl", "ocsp" or "none"
    detail: str  # for the log: which CRL/responder, or why the status is unknown

    @property
    def revoked(self) -> bool:
        return self.status == "revoked"


@dataclass(frozen=True)
class _LoadedCrl:
    crl: x509.CertificateRevocationList
    path: Path
    number: int


def _crl_number(crl: x509.CertificateRevocationList) -> int:
    try:
        return crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    except x509.ExtensionNotFound:
        return -1


def load_crl(data: bytes) -> x509.CertificateRevocationList:
    if data.lstrip().startswith(b"-----BEGIN"):
        return x509.load_pem_x509_crl(data)
    return x509.load_der_x509_crl(data)


def _incompleteness(crl: x509.CertificateRevocationList) -> str | None:
    """Why this CRL cannot answer for every reason and every certificate (None: it can)."""
    for extension in crl.extensions:
        if isinstance(extension.value, x509.DeltaCRLIndicator):
            return "a delta CRL"
        if isinstance(extension.value, x509.IssuingDistributionPoint):
            point = extension.value
            if point.indirect_crl or point.only_some_reasons:
                return "a partial CRL (indirect or some reasons only)"
        elif extension.critical and isinstance(extension.value, x509.UnrecognizedExtension):
            return f"a CRL with unknown critical extension {extension.oid.dotted_string}"
    return None


def unusable(crl: x509.CertificateRevocationList, now: dt.datetime) -> str | None:
    """Why this CRL cannot answer at ``now``, whatever it lists (None: it can): incomplete, or
    issued in the future."""
    incomplete = _incompleteness(crl)
    if incomplete:
        return f"is {incomplete}"
    if crl.last_update_utc > now + CRL_CLOCK_SKEW:
        return "is not yet valid"
    return None


def is_stale(crl: x509.CertificateRevocationList, now: dt.datetime) -> bool:
    """Past its nextUpdate, or without one (RFC 5280 §6.3.3 (a)(2))."""
    return crl.next_update_utc is None or crl.next_update_utc < now


def out_of_scope(crl: x509.CertificateRevocationList, certificate: x509.Certificate) -> str | None:
    """Why ``certificate`` is outside what the CRL's issuing distribution point says it covers
    (RFC 5280 §5.2.5, §6.3.3 (b)(2)); None when it is inside. A certificate without a CRL
    distribution points extension is taken as covered by a CRL naming one."""
    try:
        point = crl.extensions.get_extension_for_class(x509.IssuingDistributionPoint).value
    except x509.ExtensionNotFound:
        return None
    if point.only_contains_attribute_certs:
        return "covers attribute certificates only"
    try:
        is_ca = certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        is_ca = False
    if point.only_contains_user_certs and is_ca:
        return "covers end-entity certificates only"
    if point.only_contains_ca_certs and not is_ca:
        return "covers CA certificates only"
    if point.full_name:
        try:
            points = certificate.extensions.get_extension_for_class(x509.CRLDistributionPoints)
        except x509.ExtensionNotFound:
            return None
        named = {name for dp in points.value for name in dp.full_name or ()}
        if not named & set(point.full_name):
            return "is published for another distribution point"
    return None


class CrlStore:
    """The valid CRLs of one directory, by issuer name, reloaded when files change.

    ``download``, when given, is asked for a CRL of the issuer when the directory has no current
    one (``crl_fetch.py``: it stores what it gets in the directory); it returns the problems met."""

    def __init__(
        self,
        directory: Path,
        issuers: list[x509.Certificate],
        *,
        download: DownloadCrl | None = None,
    ) -> None:
        self.directory = directory
        self.issuers = issuers
        self.download = download
        self._downloads: dict[x509.Name, threading.Lock] = {}
        self._lock = threading.Lock()
        self._seen: dict[str, tuple[int, int, int]] = {}
        self._by_issuer: dict[x509.Name, _LoadedCrl] = {}

    def _download_lock(self, issuer: x509.Name) -> threading.Lock:
        """One download at a time per issuer (peers of other CAs do not wait on it)."""
        with self._lock:
            return self._downloads.setdefault(issuer, threading.Lock())

    def _listing(self) -> dict[str, tuple[int, int, int]]:
        try:
            entries = list(os.scandir(self.directory))
        except FileNotFoundError:
            return {}
        listing = {}
        for entry in entries:
            if entry.name.startswith(".") or not entry.is_file():
                continue
            status = entry.stat()
            listing[entry.path] = (status.st_mtime_ns, status.st_size, status.st_ino)
        return listing

    def refresh(self) -> None:
        """Re-read the directory if any file was added, removed or changed."""
        with self._lock:
            listing = self._listing()
            if listing == self._seen:
                return
            self._seen = listing
            loaded: dict[x509.Name, _LoadedCrl] = {}
            for name, (_, size, _) in sorted(listing.items()):
                candidate = self._read(Path(name), size)
                if candidate is None:
                    continue
                current = loaded.get(candidate.crl.issuer)
                if current is None or (candidate.number, candidate.crl.last_update_utc) > (
                    current.number,
                    current.crl.last_update_utc,
                ):
                    loaded[candidate.crl.issuer] = candidate
            self._by_issuer = loaded

    def _read(self, path: Path, size: int) -> _LoadedCrl | None:
        if size > MAX_CRL_SIZE:
            log.warning("crl-ignored", path=str(path), why=f"larger than {MAX_CRL_SIZE} bytes")
            return None
        try:
            crl = load_crl(path.read_bytes())
        except (OSError, ValueError) as error:
            log.warning("crl-ignored", path=str(path), why=f"unreadable: {type(error).__name__}")
            return None
        issuers = [c for c in self.issuers if c.subject == crl.issuer]
        if not any(crl.is_signature_valid(c.public_key()) for c in issuers):  # type: ignore[arg-type]
            log.warning("crl-ignored", path=str(path), why="not signed by a known CA")
            return None
        return _LoadedCrl(crl, path, _crl_number(crl))

    def lookup(
        self, certificate: x509.Certificate, issuer: x509.Certificate, now: dt.datetime
    ) -> RevocationResult:
        self.refresh()
        loaded = self._by_issuer.get(issuer.subject)
        if self.download is None or _current(loaded, now):
            return self._answer(loaded, certificate, issuer, now)
        with self._download_lock(issuer.subject):  # another thread may have just stored it
            self.refresh()
            loaded = self._by_issuer.get(issuer.subject)
            problems = [] if _current(loaded, now) else self.download(certificate, issuer, now)
            self.refresh()
        result = self._answer(self._by_issuer.get(issuer.subject), certificate, issuer, now)
        if result.status != "unknown" or not problems:
            return result
        return RevocationResult(result.status, result.source, "; ".join([result.detail, *problems]))

    def _answer(
        self,
        loaded: _LoadedCrl | None,
        certificate: x509.Certificate,
        issuer: x509.Certificate,
        now: dt.datetime,
    ) -> RevocationResult:
        where = issuer.subject.rfc4514_string()
        if loaded is None:
            return RevocationResult("unknown", "crl", f"no CRL of {where} in {self.directory}")
        crl = loaded.crl
        problem = unusable(crl, now)
        if problem:
            return RevocationResult("unknown", "crl", f"{loaded.path} {problem}")
        scope = out_of_scope(crl, certificate)
        if scope:
            return RevocationResult("unknown", "crl", f"{loaded.path} {scope}")
        entry = crl.get_revoked_certificate_by_serial_number(certificate.serial_number)
        if entry is not None and _entry_reason(entry) != x509.ReasonFlags.remove_from_crl:
            return RevocationResult(
                "revoked",
                "crl",
                f"listed in {loaded.path} since {entry.revocation_date_utc.isoformat()}"
                f" ({_reason_name(entry)})",
            )
        if not _current(loaded, now):
            return RevocationResult(
                "unknown", "crl", f"{loaded.path} is stale (nextUpdate {crl.next_update_utc})"
            )
        return RevocationResult("good", "crl", f"not listed in {loaded.path}")


def _current(loaded: _LoadedCrl | None, now: dt.datetime) -> bool:
    """A CRL is there and not stale."""
    return loaded is not None and not is_stale(loaded.crl, now)


def _entry_reason(entry: x509.RevokedCertificate) -> x509.ReasonFlags | None:
    try:
        return entry.extensions.get_extension_for_class(x509.CRLReason).value.reason
    except x509.ExtensionNotFound:
        return None


def _reason_name(entry: x509.RevokedCertificate) -> str:
    reason = _entry_reason(entry)
    return reason.name if reason else "unspecified"


class RevocationChecker:
    """CRL always, OCSP when ``use_ocsp``; see the module docstring for how they combine."""

    def __init__(
        self,
        crls: CrlStore,
        *,
        use_ocsp: bool,
        ocsp_timeout: float,
        fetch: Fetch = ocsp.fetch,
    ) -> None:
        self.crls = crls
        self.use_ocsp = use_ocsp
        self.ocsp_timeout = ocsp_timeout
        self.fetch = fetch
        self._cache: dict[tuple[bytes, int], ocsp.OcspAnswer] = {}
        self._cache_lock = threading.Lock()

    def check(
        self, certificate: x509.Certificate, issuer: x509.Certificate, now: dt.datetime
    ) -> RevocationResult:
        by_crl = self.crls.lookup(certificate, issuer, now)
        if by_crl.revoked or not self.use_ocsp:
            return by_crl
        by_ocsp = self._ocsp(certificate, issuer, now)
        if by_ocsp.status in ("revoked", "good"):
            return by_ocsp
        if by_crl.status == "good":
            return by_crl
        return RevocationResult("unknown", "none", f"{by_crl.detail}; {by_ocsp.detail}")

    def _ocsp(
        self, certificate: x509.Certificate, issuer: x509.Certificate, now: dt.datetime
    ) -> RevocationResult:
        key = (issuer.fingerprint(hashes.SHA256()), certificate.serial_number)
        with self._cache_lock:
            cached = self._cache.get(key)
        if cached is not None and now <= cached.cache_until():
            return _ocsp_result(cached, "cached")
        urls = ocsp.ocsp_urls(certificate)
        if not urls:
            return RevocationResult("unknown", "ocsp", "no OCSP responder in the certificate")
        request = ocsp.build_request(certificate, issuer)
        problems = []
        for url in urls:
            try:
                answer = ocsp.check_response(
                    self.fetch(url, request, self.ocsp_timeout), certificate, issuer, now=now
                )
            except ocsp.OcspError as error:
                problems.append(str(error))
                continue
            with self._cache_lock:
                self._cache[key] = answer
            return _ocsp_result(answer, url)
        return RevocationResult("unknown", "ocsp", "; ".join(problems))


def _ocsp_result(answer: ocsp.OcspAnswer, where: str) -> RevocationResult:
    if answer.status == "revoked":
        when = answer.revoked_at.isoformat() if answer.revoked_at else "?"
        detail = f"OCSP ({where}): revoked since {when} ({answer.reason or 'unspecified'})"
    else:
        detail = f"OCSP ({where}): {answer.status}"
    return RevocationResult(answer.status, "ocsp", detail)
