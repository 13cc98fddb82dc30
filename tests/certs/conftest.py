"""Fixtures of the trust space's tests: the session's test PKI, the real ANS list, a local HTTP
server."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import pytest
from plitest.pki import FileServer, SessionPki, serve_files, session_pki
from plitest.shared import SHARED

#: ANS's list of 2025-03-13 and its SHA-256, as published (../shared/data).
REAL_LIST = SHARED / "data" / "listeblanchemssante.xml"
REAL_LIST_SHA256 = REAL_LIST.with_name(REAL_LIST.name + ".sha256")


@pytest.fixture
def pki() -> SessionPki:
    return session_pki()


@pytest.fixture(scope="session")
def real_list() -> bytes:
    data = REAL_LIST.read_bytes()
    expected = REAL_LIST_SHA256.read_text().split()[0]
    assert hashlib.sha256(data).hexdigest() == expected  # the copy is the published file
    return data


@pytest.fixture
def file_server() -> Iterator[FileServer]:
    with serve_files() as server:
        yield server
