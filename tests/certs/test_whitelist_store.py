"""Importing the whitelist: checksums, downloads, the last good list kept; the refresh service."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
import socket
import stat
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from plitest.pki import FileServer

from pli.certs.refresh import (
    FIRST_ATTEMPT_DELAY,
    RETRY_AFTER_FAILURE,
    STALE_AFTER_INTERVALS,
    WhitelistRefresher,
)
from pli.certs.whitelist import WhitelistEntry, WhitelistError, render_whitelist
from pli.certs.whitelist_store import (
    MAX_CHECKSUM_SIZE,
    WhitelistStore,
    parse_checksum,
    resolve_source,
)
from pli.config.loading import load_settings
from pli.config.schema import Settings, WhitelistSection

MAX_SIZE = 8 * 1024 * 1024


def small_list(generated: dt.datetime, *domains: str) -> bytes:
    entries = [WhitelistEntry(d, "CN=mx.a.fr,OU=1990000001,O=A,C=FR", "", "") for d in domains]
    return render_whitelist(entries, generated)


JAN = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
FEB = dt.datetime(2025, 2, 1, tzinfo=dt.UTC)


@pytest.fixture
def store(tmp_path: Path) -> WhitelistStore:
    return WhitelistStore(tmp_path / "whitelist/list.xml", max_size=MAX_SIZE, fetch_timeout=5)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_the_real_list_is_imported_with_its_published_checksum(
    store: WhitelistStore, real_list: bytes, tmp_path: Path
) -> None:
    source = tmp_path / "listeblanchemssante.xml"
    source.write_bytes(real_list)
    checksum = tmp_path / "checksum"
    checksum.write_text(sha256(real_list))  # the GitHub mirror's format: the bare hex
    expected = parse_checksum(checksum.read_bytes(), str(checksum))
    result = store.import_from(str(source), sha256=expected)
    assert result.changed
    metadata = result.metadata
    assert metadata.checksum_verified and metadata.sha256 == sha256(real_list)
    assert (metadata.entries, metadata.domains, metadata.size) == (6553, 5001, len(real_list))
    assert metadata.generated_at == "2025-03-13T14:54:10+00:00"
    assert metadata.skipped == [
        "entry 6055: <Nom> 'sessad@ase.ditepbeziers.mssante.fr' is not a domain name"
    ]
    assert store.path.read_bytes() == real_list
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o644
    assert json.loads(store.metadata_path.read_text())["sha256"] == sha256(real_list)
    whitelist = store.current()
    assert whitelist is not None and whitelist.has_domain("patient.mssante.fr")


def test_checksum_files_in_both_formats_are_read() -> None:
    digest = "ea660e72943a22a92aa569878e9bcd5311bed0ae5f40b4c82a992b1990a0ec59"
    assert parse_checksum(digest.encode(), "x") == digest
    assert parse_checksum(f"{digest.upper()}  listeblanchemssante.xml\n".encode(), "x") == digest
    for bad in (b"", b"md5 abc", b"<html>", digest[:-1].encode()):
        with pytest.raises(WhitelistError, match="does not contain a SHA-256"):
            parse_checksum(bad, "x")


def test_a_wrong_checksum_is_refused_and_the_good_list_stays(
    store: WhitelistStore, tmp_path: Path
) -> None:
    good = small_list(JAN, "a.mssante.fr")
    store.install(good, source="good", expected_sha256=sha256(good))
    other = small_list(FEB, "b.mssante.fr")
    path = tmp_path / "other.xml"
    path.write_bytes(other)
    with pytest.raises(WhitelistError) as refused:
        store.import_from(str(path), sha256=sha256(good))
    assert str(refused.value) == (
        f"{path}: checksum mismatch: expected {sha256(good)}, got {sha256(other)}"
    )
    assert store.path.read_bytes() == good
    whitelist = store.current()
    assert whitelist is not None and whitelist.has_domain("a.mssante.fr")
    with pytest.raises(WhitelistError, match="is not a SHA-256"):
        store.import_from(str(path), sha256="abc")


def test_a_truncated_list_never_replaces_a_good_one(
    store: WhitelistStore, real_list: bytes
) -> None:
    good = small_list(JAN, "a.mssante.fr")
    store.install(good, source="good")
    before = store.metadata()
    with pytest.raises(WhitelistError, match="not well-formed XML"):
        store.install(real_list[: len(real_list) // 3], source="cut")
    assert store.path.read_bytes() == good and store.metadata() == before
    assert not list(store.path.parent.glob(".*.tmp"))


def test_an_older_list_is_refused_unless_asked(store: WhitelistStore) -> None:
    store.install(small_list(FEB, "new.mssante.fr"), source="feb")
    older = small_list(JAN, "old.mssante.fr")
    with pytest.raises(WhitelistError, match="refusing an older list"):
        store.install(older, source="jan")
    assert store.install(older, source="jan", allow_older=True).changed


def test_the_same_list_again_only_records_the_check(store: WhitelistStore) -> None:
    data = small_list(JAN, "a.mssante.fr")
    first = store.install(data, source="one")
    again = store.install(data, source="two")
    assert not again.changed
    assert again.metadata.imported_at == first.metadata.imported_at
    assert again.metadata.checked_at >= first.metadata.checked_at
    assert again.metadata.source == "two"


def test_an_oversized_list_is_refused(tmp_path: Path) -> None:
    tiny = WhitelistStore(tmp_path / "list.xml", max_size=100)
    source = tmp_path / "big.xml"
    source.write_bytes(small_list(JAN, *[f"d{i}.mssante.fr" for i in range(10)]))
    with pytest.raises(WhitelistError, match="larger than 100 bytes"):
        tiny.import_from(str(source))
    with pytest.raises(WhitelistError, match="cannot be read"):
        tiny.import_from(str(tmp_path / "missing.xml"))


def test_download_with_checksum_from_a_url(store: WhitelistStore, file_server: FileServer) -> None:
    data = small_list(JAN, "a.mssante.fr", "b.mssante.fr")
    file_server.routes["/listeblanchemssante.xml"] = (200, data)
    file_server.routes["/checksum"] = (200, sha256(data).encode())
    result = store.import_from(
        file_server.url("/listeblanchemssante.xml"), sha256_source=file_server.url("/checksum")
    )
    assert result.metadata.checksum_verified and result.metadata.domains == 2
    assert file_server.requests == ["GET /checksum", "GET /listeblanchemssante.xml"]


def test_download_failures_are_explained(store: WhitelistStore, file_server: FileServer) -> None:
    with pytest.raises(WhitelistError, match=r"/missing.xml answered HTTP 404"):
        store.import_from(file_server.url("/missing.xml"))
    file_server.routes["/big"] = (200, b"x" * (MAX_SIZE + 1))
    with pytest.raises(WhitelistError, match=f"/big sent more than {MAX_SIZE} bytes"):
        store.import_from(file_server.url("/big"))
    file_server.routes["/huge-checksum"] = (200, b"0" * (MAX_CHECKSUM_SIZE + 1))
    with pytest.raises(WhitelistError, match=f"sent more than {MAX_CHECKSUM_SIZE} bytes"):
        store.import_from(file_server.url("/big"), sha256_source=file_server.url("/huge-checksum"))
    with pytest.raises(WhitelistError, match=r"list\.xml unreachable: ConnectError"):
        store.import_from("http://127.0.0.1:1/list.xml")
    assert store.current() is None and store.metadata() is None


def test_another_process_import_is_seen(store: WhitelistStore) -> None:
    store.install(small_list(JAN, "a.mssante.fr"), source="one")
    reader = WhitelistStore(store.path, max_size=MAX_SIZE)  # e.g. an SMTP worker process
    first = reader.current()
    assert first is not None and first.has_domain("a.mssante.fr")
    assert reader.current() is first  # not parsed again while unchanged
    store.install(small_list(FEB, "b.mssante.fr"), source="two")
    second = reader.current()
    assert second is not None and second.has_domain("b.mssante.fr")


def test_relative_configured_sources_are_in_the_data_directory(tmp_path: Path) -> None:
    assert resolve_source("whitelist/demo.xml", tmp_path) == str(tmp_path / "whitelist/demo.xml")
    assert resolve_source("https://x/list.xml", tmp_path) == "https://x/list.xml"
    assert resolve_source("/abs/list.xml", tmp_path) == "/abs/list.xml"
    assert resolve_source("", tmp_path) == ""


# -- the refresh service -------------------------------------------------------------------------


class FakeTime:
    """A clock and a sleep that advances it; the loop is stopped after ``rounds`` sleeps."""

    def __init__(self, start: float, rounds: int) -> None:
        self.now = start
        self.rounds = rounds
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        if len(self.slept) == self.rounds:
            raise asyncio.CancelledError
        self.slept.append(seconds)
        self.now += seconds


def _settings(tmp_path: Path, source: str, interval: float = 86400.0) -> Settings:
    config = tmp_path / "pli.toml"
    config.write_text(
        f'[server]\ndata_dir = "."\n\n[whitelist]\nsource = "{source}"\n'
        f"refresh_interval = {interval}\n"
    )
    return load_settings(config, environ={})


def test_the_refresher_schedules_from_the_last_check(tmp_path: Path) -> None:
    settings = _settings(tmp_path, "list.xml")
    store = WhitelistStore.from_settings(settings.whitelist)
    refresher = WhitelistRefresher.from_settings(settings, store)
    assert refresher.source == str(tmp_path / "list.xml")
    assert refresher.first_delay() == FIRST_ATTEMPT_DELAY  # nothing imported yet
    store.install(small_list(JAN, "a.mssante.fr"), source="x")
    checked = dt.datetime.fromisoformat(store.metadata().checked_at).timestamp()  # type: ignore[union-attr]
    refresher.clock = lambda: checked + 3600
    assert refresher.first_delay() == 86400 - 3600
    refresher.clock = lambda: checked + 2 * 86400
    assert refresher.first_delay() == 0


async def test_the_refresher_loop_refreshes_and_retries(tmp_path: Path) -> None:
    (tmp_path / "list.xml").write_bytes(small_list(JAN, "a.mssante.fr"))
    settings = _settings(tmp_path, "list.xml", interval=86400)
    store = WhitelistStore.from_settings(settings.whitelist)
    fake = FakeTime(start=1_000_000.0, rounds=4)
    refresher = WhitelistRefresher(
        settings.whitelist, store, data_dir=tmp_path, clock=fake.clock, sleep=fake.sleep
    )
    await refresher.start()
    assert refresher.addresses() == []
    with pytest.raises(asyncio.CancelledError):
        await refresher._task  # type: ignore[misc]
    # first attempt after FIRST_ATTEMPT_DELAY: imported; then a day; then (file gone) failures
    assert fake.slept[:2] == [FIRST_ATTEMPT_DELAY, 86400]
    assert store.current() is not None and refresher.last_error is None
    (tmp_path / "list.xml").write_bytes(b"<broken")
    fake2 = FakeTime(start=fake.now, rounds=3)
    refresher.sleep = fake2.sleep
    refresher.clock = fake2.clock
    await refresher.start()
    with pytest.raises(asyncio.CancelledError):
        await refresher._task  # type: ignore[misc]
    assert fake2.slept[1:] == [RETRY_AFTER_FAILURE, RETRY_AFTER_FAILURE]
    assert refresher.last_error is not None and "not well-formed XML" in refresher.last_error
    whitelist = store.current()
    assert whitelist is not None and whitelist.has_domain("a.mssante.fr")  # the good one stays
    await refresher.stop(grace=0)


async def test_refresh_on_demand_and_health(tmp_path: Path) -> None:
    settings = _settings(tmp_path, "list.xml", interval=3600)
    store = WhitelistStore.from_settings(settings.whitelist)
    refresher = WhitelistRefresher.from_settings(settings, store)
    assert await refresher.health() == "no whitelist imported (pli whitelist import)"
    with pytest.raises(WhitelistError, match="cannot be read"):
        await refresher.refresh_now()
    (tmp_path / "list.xml").write_bytes(small_list(JAN, "a.mssante.fr"))
    result = await refresher.refresh_now()
    assert result.changed and await refresher.health() is None
    refresher.clock = lambda: (
        dt.datetime.now(dt.UTC).timestamp() + STALE_AFTER_INTERVALS * 3600 + 60
    )
    problem = await refresher.health()
    assert problem is not None and problem.startswith("whitelist not refreshed for 3 h")
    await refresher.stop(grace=0)  # never started: nothing to stop


def test_serve_registers_the_refresher_only_with_an_interval(tmp_path: Path) -> None:
    from pli.mailgateway.serve import build_services
    from pli.mailgateway.services import Runtime

    def services(interval: float) -> tuple[list[str], Runtime]:
        settings = _settings(tmp_path, "list.xml", interval=interval)
        runtime = Runtime(settings=settings.model_copy(update={"listeners": {}}))
        return [service.name for service in build_services(runtime)], runtime

    names, runtime = services(3600)
    assert names == ["whitelist-refresh"] and "whitelist" in runtime.health_checks
    assert services(0)[0] == []
    assert WhitelistSection().refresh_interval == 86400


@given(st.binary(max_size=200))
def test_any_checksum_file_gives_a_digest_or_a_whitelist_error(data: bytes) -> None:
    try:
        digest = parse_checksum(data, "checksum")
    except WhitelistError as error:
        assert str(error) == "checksum does not contain a SHA-256 (64 hexadecimal digits)"
    else:
        assert len(digest) == 64 and digest == digest.lower()


def test_a_server_that_never_answers_is_given_up_on(tmp_path: Path) -> None:
    impatient = WhitelistStore(tmp_path / "list.xml", max_size=MAX_SIZE, fetch_timeout=0.3)
    with socket.create_server(("127.0.0.1", 0)) as silent:  # listens, never accepts
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/list.xml"
        with pytest.raises(WhitelistError, match=r"gave no complete answer within 0\.3 s"):
            impatient.import_from(url)
