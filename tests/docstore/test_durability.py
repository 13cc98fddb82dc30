"""What a killed store leaves behind is cleaned at the next start, and only that: abandoned
uploads, and placed files no document owns. Files of recorded documents are kept."""

from __future__ import annotations

import os
import time
from pathlib import Path

import httpx
from plitest.docstore import CITIZEN, actor_headers, file_document, opened_store

from pli.docstore.config import DocstoreConfig
from pli.docstore.limits import ABANDONED_UPLOAD_AGE
from pli.docstore.store import DocumentStore


def age(path: Path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


async def test_restart_sweeps_abandoned_uploads_and_orphan_files_only(
    client: httpx.AsyncClient, store: DocumentStore, config: DocstoreConfig
) -> None:
    kept = (await file_document(client, key="kept")).json()
    deleted = (
        await file_document(client, key="deleted", content=b"plain text", content_type="text/plain")
    ).json()
    await client.delete(
        f"/v1/citizens/{CITIZEN}/documents/{deleted['id']}", headers=actor_headers()
    )
    blobs = store.blobs
    kept_path = blobs.path_of(kept["id"])
    age(kept_path, 2 * ABANDONED_UPLOAD_AGE)
    old_upload = blobs.tmp / "upload-old"
    old_upload.write_bytes(b"half an upload")
    age(old_upload, 2 * ABANDONED_UPLOAD_AGE)
    fresh_upload = blobs.tmp / "upload-fresh"  # another process may be receiving it
    fresh_upload.write_bytes(b"in progress")
    orphan = blobs.path_of("0badc0de-0000-4000-8000-000000000000")
    orphan.parent.mkdir(exist_ok=True)
    orphan.write_bytes(b"placed, never committed")
    age(orphan, 2 * ABANDONED_UPLOAD_AGE)
    resurrected = blobs.path_of(deleted["id"])  # a delete killed before its unlink
    resurrected.parent.mkdir(exist_ok=True)
    resurrected.write_bytes(b"plain text")
    age(resurrected, 2 * ABANDONED_UPLOAD_AGE)
    young_orphan = blobs.path_of("1badc0de-0000-4000-8000-000000000000")
    young_orphan.parent.mkdir(exist_ok=True)
    young_orphan.write_bytes(b"being placed right now")

    async with opened_store(config):  # a second start on the same data
        pass

    assert kept_path.exists()
    assert not old_upload.exists()
    assert fresh_upload.exists()
    assert not orphan.exists()
    assert not resurrected.exists()
    assert young_orphan.exists()
    content = await client.get(f"/v1/citizens/{CITIZEN}/documents/{kept['id']}/content")
    assert content.status_code == 200


async def test_a_missing_file_is_reported_not_crashed(
    client: httpx.AsyncClient, store: DocumentStore
) -> None:
    filed = (await file_document(client)).json()
    store.blobs.path_of(filed["id"]).unlink()
    response = await client.get(f"/v1/citizens/{CITIZEN}/documents/{filed['id']}/content")
    assert response.status_code == 500
    assert response.json()["reason"] == "content-missing"


async def test_a_database_of_a_newer_version_is_refused(config: DocstoreConfig) -> None:
    from sqlalchemy import update

    from pli.docstore.database import NewerSchema, write_transaction
    from pli.docstore.tables import schema_version

    async with opened_store(config) as store, write_transaction(store.engine) as connection:
        await connection.execute(update(schema_version).values(version=99))
    try:
        async with opened_store(config):
            raise AssertionError("a newer schema was opened")
    except NewerSchema as error:
        assert "schema version 99" in str(error)
