"""CRLs downloaded from the distribution points certificates name (RFC 5280 §4.2.1.13), when
``tls.crl_download`` is on.

When the CRL store holds no current CRL of a certificate's issuer (none, or past its nextUpdate),
the certificate's CRL distribution points say where that issuer publishes one: IGC Santé's are
plain HTTP addresses. :class:`CrlFetcher` downloads it, bounded in size and time, believes it
only if it parses, is signed by that issuer, is complete (not a delta, not partial) and is
current, and writes it into ``tls.crl_dir`` (written aside, fsynced, renamed): the CRL store,
every other process and the next start find it there. One file per address
(``fetched-<hash>.crl``), replaced by each new download.

A handshake may wait for one download (``tls.crl_timeout`` for the whole answer); an address
that failed is not asked again for :data:`RETRY_AFTER_FAILURE`, so a dead server costs one
timeout per period, not one per peer. Only ``http``/``https`` addresses are used (LDAP ones are
skipped). Redirects are followed (a CA may move its files): on plain HTTP a man in the middle
could send the request elsewhere, but nothing that comes back is believed unless the issuer
signed it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import threading
import time
from collections.abc import Callable
from pathlib import Path

import structlog
from cryptography import x509

from .download import DownloadError, fetch_bounded
from .files import write_public
from .revocation import MAX_CRL_SIZE, is_stale, load_crl, unusable

log = structlog.get_logger(__name__)

#: An address that failed is left alone this long (seconds).
RETRY_AFTER_FAILURE = 300.0

Download = Callable[[str, float], bytes]


class CrlFetchError(Exception):
    """Nothing usable came from the address; the message says why."""


def distribution_points(certificate: x509.Certificate) -> list[str]:
    """The http(s) addresses of a certificate's CRL distribution points extension."""
    try:
        points = certificate.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    except x509.ExtensionNotFound:
        return []
    return [
        name.value
        for point in points
        if point.crl_issuer is None and point.reasons is None  # a complete CRL of the issuer
        for name in point.full_name or ()
        if isinstance(name, x509.UniformResourceIdentifier)
        and name.value.lower().startswith(("http://", "https://"))
    ]


def download(url: str, timeout: float) -> bytes:
    """GET ``url`` (redirects followed); raises :class:`CrlFetchError`."""
    try:
        return fetch_bounded(
            "GET", url, max_size=MAX_CRL_SIZE, timeout=timeout, follow_redirects=True
        )
    except DownloadError as error:
        raise CrlFetchError(f"{url} {error}") from None


def fetched_path(directory: Path, url: str) -> Path:
    return directory / f"fetched-{hashlib.sha256(url.encode()).hexdigest()[:16]}.crl"


class CrlFetcher:
    """Downloads into ``directory``; thread-safe (the CRL store runs one download per issuer
    at a time)."""

    def __init__(
        self,
        directory: Path,
        *,
        timeout: float,
        download: Download = download,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.directory = directory
        self.timeout = timeout
        self._download = download
        self._clock = clock
        self._lock = threading.Lock()
        self._failed_until: dict[str, float] = {}

    def fetch_for(
        self, certificate: x509.Certificate, issuer: x509.Certificate, now: dt.datetime
    ) -> list[str]:
        """Download a current CRL of ``issuer`` from ``certificate``'s distribution points
        (the first that gives one); the problems met, empty when one was stored."""
        problems = []
        for url in distribution_points(certificate):
            try:
                self.fetch(url, issuer, now)
            except CrlFetchError as error:
                problems.append(str(error))
            else:
                return []
        return problems

    def fetch(self, url: str, issuer: x509.Certificate, now: dt.datetime) -> Path:
        """Download ``url``, check it is a current, complete CRL signed by ``issuer``, store it."""
        with self._lock:
            resting = self._failed_until.get(url, 0.0) > self._clock()
        if resting:
            raise CrlFetchError(f"{url} failed recently; not asked again yet")
        try:
            data = self._download(url, self.timeout)
            check_crl(data, issuer, now, url)
            path = self._store(url, data)
        except CrlFetchError:
            with self._lock:
                self._failed_until[url] = self._clock() + RETRY_AFTER_FAILURE
            raise
        log.info("crl-downloaded", url=url, path=str(path), size=len(data))
        return path

    def _store(self, url: str, data: bytes) -> Path:
        path = fetched_path(self.directory, url)
        try:
            write_public(path, data)  # its temporary file is a dot file: the CRL store skips it
        except OSError as error:
            raise CrlFetchError(f"{url} could not be stored in {self.directory}: {error}") from None
        return path


def check_crl(data: bytes, issuer: x509.Certificate, now: dt.datetime, url: str) -> None:
    """Raise :class:`CrlFetchError` unless ``data`` is a current, complete CRL of ``issuer``."""
    try:
        crl = load_crl(data)
    except ValueError:
        raise CrlFetchError(f"{url} sent something that is not a CRL") from None
    if crl.issuer != issuer.subject:
        raise CrlFetchError(f"{url} sent a CRL of {crl.issuer.rfc4514_string()}")
    if not crl.is_signature_valid(issuer.public_key()):  # type: ignore[arg-type]
        raise CrlFetchError(f"{url} sent a CRL whose signature does not verify")
    problem = unusable(crl, now)
    if problem:
        raise CrlFetchError(f"{url} sent a CRL that {problem}")
    if is_stale(crl, now):
        raise CrlFetchError(f"{url} sent a stale CRL (nextUpdate {crl.next_update_utc})")
