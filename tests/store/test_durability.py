"""Durability: a writer killed with SIGKILL mid-load loses no acknowledged message and leaves
nothing half-written visible (architecture.md § Store: "250 OK" means on disk and committed)."""

from __future__ import annotations

import hashlib
import random
import signal
import subprocess
import sys
from pathlib import Path

from plitest.store import is_postgresql, open_test_store

from pli.mailbox.store import AccountKind

WRITER = Path(__file__).resolve().parent.parent / "plitest" / "store_writer.py"
MAX_MESSAGES = 400  # the writer's bound if it were never killed


def run_writer_and_kill(url: str, messages: Path, schema: str, account_id: int) -> dict[int, str]:
    """Start the writer, kill -9 it after a random number of acknowledgements, return them."""
    kill_after = random.randint(5, 40)
    writer = subprocess.Popen(
        [
            sys.executable,
            str(WRITER),
            url,
            str(messages),
            schema,
            str(account_id),
            str(MAX_MESSAGES),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    acknowledged: dict[int, str] = {}
    try:
        assert writer.stdout is not None
        for line in writer.stdout:
            _, uid, digest = line.split()
            acknowledged[int(uid)] = digest
            if len(acknowledged) >= kill_after:
                writer.send_signal(signal.SIGKILL)
                break
        writer.wait(timeout=60)
        for line in writer.stdout:  # lines printed before the signal landed
            _, uid, digest = line.split()
            acknowledged[int(uid)] = digest
    finally:
        if writer.poll() is None:
            writer.kill()
            writer.wait()
    assert writer.returncode == -signal.SIGKILL, writer.stderr.read() if writer.stderr else ""
    return acknowledged


async def test_kill_9_mid_load_loses_no_acknowledged_message(
    database_url: str, tmp_path: Path
) -> None:
    schema = f"t_dur_{random.getrandbits(32):08x}" if is_postgresql(database_url) else ""
    for round_number in range(3):
        async with open_test_store(
            database_url, tmp_path, schema=schema or None, keep_schema=round_number < 2, fsync=True
        ) as store:
            if round_number == 0:
                account = await store.accounts.create("load@x.mssante.fr", AccountKind.APP)
            else:
                account = await store.accounts.by_address("load@x.mssante.fr")
            inbox = await store.folders.get(account.id, "INBOX")
            before = set(await store.messages.uids(inbox.id))
            url = store.db.engine.url.render_as_string(hide_password=False)
            acknowledged = run_writer_and_kill(url, tmp_path / "messages", schema, account.id)
            assert acknowledged, "the writer acknowledged nothing before it was killed"
            rows = {meta.uid: meta for meta in await store.messages.fetch(inbox.id, envelope=True)}
            for uid, digest in acknowledged.items():
                raw = await store.messages.read(inbox.id, uid)
                assert hashlib.sha256(raw).hexdigest() == digest, f"uid {uid} damaged"
                assert rows[uid].size == len(raw)
            # Nothing half-written: every visible row has its whole file, UIDs have no gap.
            for uid, meta in rows.items():
                raw = await store.blobs.get(meta.blob_id)
                assert len(raw) == meta.size and meta.envelope is not None, uid
            uids = sorted(rows)
            assert uids == list(range(1, len(uids) + 1))
            assert set(acknowledged) <= set(uids) - before
            assert len(uids) - len(before) - len(acknowledged) <= 1  # committed, not yet printed
            folder = await store.folders.get(account.id, "INBOX")
            assert folder.uidnext == len(uids) + 1
            status = await store.folders.status(inbox.id)
            assert status.exists == len(uids)
