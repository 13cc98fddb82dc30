"""The whitelist on disk: importing ANS's file (from a path or a URL), verifying its checksum,
keeping the last good list, and loading it in every process that asks.

An import reads the list (bounded by ``whitelist.max_size``, within ``whitelist.fetch_timeout``),
checks its SHA-256 against the expected one when given, parses it entirely
(:func:`pli.certs.whitelist.parse_whitelist`), and only then replaces the stored copy
(``whitelist.path``, tmp → fsync → rename → fsync dir) and its metadata (``<path>.json``: checksum,
source, dates, counts). Any failure leaves the previous list in place and raises
:class:`~pli.certs.whitelist.WhitelistError` with the reason. A list generated before the one in
place is refused too (a replayed old list could re-admit a removed operator) unless
``allow_older``.

:meth:`WhitelistStore.current` returns the list in memory and re-reads the file when another
process (``pli whitelist import``, the refresh service) replaced it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import threading
from dataclasses import asdict, dataclass
from pathlib import Path

import structlog

from pli.config.schema import WhitelistSection

from .download import DownloadError, fetch_bounded
from .files import write_public
from .whitelist import Whitelist, WhitelistError, parse_whitelist

log = structlog.get_logger(__name__)

_SHA256 = re.compile(r"^[0-9a-fA-F]{64}$")
#: A checksum file holds 64 hex digits, perhaps a file name after them (sha256sum's format).
MAX_CHECKSUM_SIZE = 4096


@dataclass(frozen=True)
class WhitelistMetadata:
    sha256: str
    checksum_verified: bool  # the SHA-256 matched an expected value given with the import
    source: str
    imported_at: str  # ISO 8601, when this content was installed
    checked_at: str  # ISO 8601, last time a refresh found this content current
    generated_at: str  # the list's DateDeGeneration
    entries: int
    domains: int
    skipped: list[str]
    size: int


@dataclass(frozen=True)
class ImportResult:
    metadata: WhitelistMetadata
    changed: bool  # False: the same content was already in place


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def parse_checksum(text: bytes, where: str) -> str:
    """The SHA-256 in a checksum file (``hex`` or ``hex  filename``)."""
    token = text.decode("ascii", "replace").strip().split(maxsplit=1)
    if not token or not _SHA256.match(token[0]):
        raise WhitelistError(f"{where} does not contain a SHA-256 (64 hexadecimal digits)")
    return token[0].lower()


def normalise_sha256(value: str) -> str:
    if not _SHA256.match(value.strip()):
        raise WhitelistError(f"{value!r} is not a SHA-256 (64 hexadecimal digits)")
    return value.strip().lower()


def _is_url(source: str) -> bool:
    return source.lower().startswith(("http://", "https://"))


def resolve_source(source: str, data_dir: Path) -> str:
    """A configured source: URLs as they are, a relative path relative to ``data_dir`` (like
    every path of the configuration)."""
    if not source or _is_url(source) or Path(source).is_absolute():
        return source
    return str(data_dir / source)


def read_source(source: str, *, max_size: int, timeout: float) -> bytes:
    """The bytes at ``source`` (a path or an http(s) URL), at most ``max_size`` of them."""
    if _is_url(source):
        return _download(source, max_size=max_size, timeout=timeout)
    path = Path(source)
    try:
        with path.open("rb") as file:
            data = file.read(max_size + 1)
    except OSError as error:
        raise WhitelistError(f"{source}: cannot be read ({error.strerror})") from None
    if len(data) > max_size:
        raise WhitelistError(f"{source}: larger than {max_size} bytes")
    return data


def _download(url: str, *, max_size: int, timeout: float) -> bytes:
    try:
        return fetch_bounded("GET", url, max_size=max_size, timeout=timeout, follow_redirects=True)
    except DownloadError as error:
        raise WhitelistError(f"{url} {error}") from None


class WhitelistStore:
    """The stored list of one data directory (thread-safe)."""

    def __init__(self, path: Path, *, max_size: int, fetch_timeout: float = 60.0) -> None:
        self.path = path
        self.metadata_path = path.with_suffix(".json")
        self.max_size = max_size
        self.fetch_timeout = fetch_timeout
        self._lock = threading.Lock()
        self._loaded: tuple[tuple[int, int, int], Whitelist] | None = None

    @classmethod
    def from_settings(cls, section: WhitelistSection) -> WhitelistStore:
        return cls(section.path, max_size=section.max_size, fetch_timeout=section.fetch_timeout)

    # -- reading -----------------------------------------------------------------------------

    def _state(self) -> tuple[int, int, int] | None:
        try:
            status = self.path.stat()
        except FileNotFoundError:
            return None
        return status.st_mtime_ns, status.st_size, status.st_ino

    def current(self) -> Whitelist | None:
        """The stored list (None: none imported yet), re-read if the file was replaced."""
        state = self._state()
        if state is None:
            return None
        loaded = self._loaded
        if loaded is not None and loaded[0] == state:
            return loaded[1]
        with self._lock:
            if self._loaded is not None and self._loaded[0] == state:
                return self._loaded[1]
            try:
                whitelist = parse_whitelist(self.path.read_bytes())
            except (OSError, WhitelistError) as error:
                # Only a good list is ever stored; this is damage after the fact.
                log.error("whitelist-unreadable", path=str(self.path), error=str(error))
                return self._loaded[1] if self._loaded else None
            self._loaded = (state, whitelist)
            return whitelist

    def metadata(self) -> WhitelistMetadata | None:
        try:
            raw = json.loads(self.metadata_path.read_text())
            return WhitelistMetadata(**raw)
        except (OSError, ValueError, TypeError):
            return None

    # -- importing ---------------------------------------------------------------------------

    def import_from(
        self,
        source: str,
        *,
        sha256: str | None = None,
        sha256_source: str | None = None,
        allow_older: bool = False,
    ) -> ImportResult:
        """Read ``source``, check it against ``sha256`` (or the checksum at ``sha256_source``),
        and install it. Raises :class:`WhitelistError`; the stored list is then unchanged."""
        expected = normalise_sha256(sha256) if sha256 else None
        if expected is None and sha256_source:
            raw = read_source(sha256_source, max_size=MAX_CHECKSUM_SIZE, timeout=self.fetch_timeout)
            expected = parse_checksum(raw, sha256_source)
        data = read_source(source, max_size=self.max_size, timeout=self.fetch_timeout)
        return self.install(data, source=source, expected_sha256=expected, allow_older=allow_older)

    def install(
        self,
        data: bytes,
        *,
        source: str,
        expected_sha256: str | None = None,
        allow_older: bool = False,
    ) -> ImportResult:
        """Verify, parse and store ``data``; see :meth:`import_from`."""
        if len(data) > self.max_size:
            raise WhitelistError(f"{source}: larger than {self.max_size} bytes")
        digest = hashlib.sha256(data).hexdigest()
        if expected_sha256 is not None and digest != expected_sha256.lower():
            raise WhitelistError(
                f"{source}: checksum mismatch: expected {expected_sha256.lower()}, got {digest}"
            )
        whitelist = parse_whitelist(data)
        now = _now().isoformat()
        with self._lock:
            previous = self.metadata()
            if previous is not None and previous.sha256 == digest and self.path.exists():
                metadata = WhitelistMetadata(
                    **{**asdict(previous), "checked_at": now, "source": source}
                )
                write_public(self.metadata_path, _json(metadata))
                return ImportResult(metadata, changed=False)
            if previous is not None and not allow_older:
                in_place = dt.datetime.fromisoformat(previous.generated_at)
                if whitelist.generated_at < in_place:
                    raise WhitelistError(
                        f"{source}: generated {whitelist.generated_at.isoformat()}, before the "
                        f"list in place ({previous.generated_at}); refusing an older list"
                    )
            metadata = WhitelistMetadata(
                sha256=digest,
                checksum_verified=expected_sha256 is not None,
                source=source,
                imported_at=now,
                checked_at=now,
                generated_at=whitelist.generated_at.isoformat(),
                entries=len(whitelist),
                domains=whitelist.domain_count,
                skipped=list(whitelist.skipped),
                size=len(data),
            )
            write_public(self.path, data)
            write_public(self.metadata_path, _json(metadata))
            state = self._state()
            if state is not None:
                self._loaded = (state, whitelist)
        log.info(
            "whitelist-imported",
            source=source,
            sha256=digest,
            checksum_verified=metadata.checksum_verified,
            entries=metadata.entries,
            domains=metadata.domains,
            generated_at=metadata.generated_at,
        )
        for problem in whitelist.skipped:
            log.warning("whitelist-entry-skipped", problem=problem)
        if whitelist.root_unclosed:
            log.info("whitelist-root-unclosed", note="the list ends without </ListeBlancheMSSante>")
        return ImportResult(metadata, changed=True)


def _json(metadata: WhitelistMetadata) -> bytes:
    return json.dumps(asdict(metadata), indent=1, ensure_ascii=False).encode()
