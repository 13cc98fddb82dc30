"""Writing trust material to disk: atomically, with safe permissions, under a lock.

Private keys are written 0600 in directories 0700; certificates, CRLs and lists 0644. Every write
goes to a temporary file in the same directory, is fsynced, renamed over the target, and the
directory is fsynced: a reader sees the old file or the new one, never half of one, and a crash
leaves the previous version in place.

This module knows nothing of certificates; it must not parse what it writes.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

PRIVATE_FILE_MODE = 0o600
PUBLIC_FILE_MODE = 0o644
PRIVATE_DIR_MODE = 0o700
PUBLIC_DIR_MODE = 0o755


def ensure_dir(path: Path, *, private: bool = False) -> Path:
    """Create ``path`` (and parents) if missing; a private directory is (re)set to 0700."""
    path.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR_MODE if private else PUBLIC_DIR_MODE)
    if private:
        path.chmod(PRIVATE_DIR_MODE)
    return path


def _fsync_dir(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def write_atomic(path: Path, data: bytes, *, mode: int = PUBLIC_FILE_MODE) -> None:
    """Replace ``path`` with ``data``: tmp → fsync → rename → fsync dir. The file has ``mode``
    from its creation (a private key is never readable by others, not even for a moment)."""
    if not path.parent.exists():
        ensure_dir(path.parent, private=mode == PRIVATE_FILE_MODE)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(descriptor, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        temporary.chmod(mode)  # the umask may have narrowed it
        temporary.replace(path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
        raise
    _fsync_dir(path.parent)


def write_private(path: Path, data: bytes) -> None:
    """A secret (private key): mode 0600."""
    write_atomic(path, data, mode=PRIVATE_FILE_MODE)


def write_public(path: Path, data: bytes) -> None:
    """Public material (certificate, CRL, list): mode 0644."""
    write_atomic(path, data, mode=PUBLIC_FILE_MODE)


@contextlib.contextmanager
def locked(lock_path: Path) -> Iterator[None]:
    """Hold an exclusive advisory lock on ``lock_path`` (created 0600) for the block: two
    ``pli pki`` commands, or a command and a running server, never interleave their updates."""
    ensure_dir(lock_path.parent)
    descriptor = os.open(lock_path, os.O_RDWR | os.O_CREAT, PRIVATE_FILE_MODE)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(descriptor, fcntl.LOCK_UN)
        os.close(descriptor)
