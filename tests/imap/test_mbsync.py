"""Integration tier: mbsync (isync, from Debian) synchronises a pli mailbox and a local Maildir
both ways over implicit TLS verified against the test PKI: new messages, flags and expunges
travel in each direction."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import pytest
from plitest.imap import PASSWORD, imap_services, professional, running_imap
from plitest.pki import session_pki
from plitest.store import build_message

from pli.mailbox.mime.text import decode_header_text
from pli.mailbox.store import DeliveryTarget, Store

MBSYNC = shutil.which("mbsync")
pytestmark = pytest.mark.skipif(MBSYNC is None, reason="mbsync (isync) is not installed")
#: Bound on one synchronisation run (a few messages on 127.0.0.1 take well under a second).
SYNC_TIMEOUT = 60


def write_config(path: Path, maildir: Path, port: int, user: str) -> None:
    anchors = session_pki().pki.paths.trust_anchors
    path.write_text(
        f"""IMAPAccount pli
Host localhost
Port {port}
User {user}
Pass {PASSWORD}
SSLType IMAPS
SSLVersions TLSv1.2
SystemCertificates no
CertificateFile {anchors}
AuthMechs LOGIN

IMAPStore pli-remote
Account pli

MaildirStore local
Path {maildir}/
Inbox {maildir}/INBOX
SubFolders Verbatim

Channel sync
Far :pli-remote:
Near :local:
Patterns *
Create Both
Expunge Both
SyncState *
"""
    )


async def mbsync(config: Path) -> str:
    assert MBSYNC is not None
    process = await asyncio.create_subprocess_exec(
        MBSYNC,
        "-c",
        str(config),
        "-a",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), SYNC_TIMEOUT)
    text = output.decode("utf-8", "replace")
    assert process.returncode == 0, text
    return text


def messages(folder: Path) -> list[Path]:
    return sorted([*(folder / "cur").glob("*"), *(folder / "new").glob("*")])


async def test_mbsync_synchronises_both_ways(store: Store, tmp_path: Path) -> None:
    account = await professional(store)
    for subject in ("Convocation", "Résultats", "Lettre de liaison"):
        await store.messages.deliver(build_message(subject=subject), [DeliveryTarget(account.id)])
    maildir = tmp_path / "Mail"
    maildir.mkdir()
    config = tmp_path / "mbsyncrc"
    async with running_imap(imap_services(store), implicit_tls=True) as server:
        write_config(config, maildir, server.port, account.address)
        await mbsync(config)
        inbox = maildir / "INBOX"
        local = messages(inbox)
        assert len(local) == 3
        assert {"Archive", "Drafts", "Sent", "Trash"} <= {p.name for p in maildir.iterdir()}
        assert b"Subject: Convocation" in b"".join(path.read_bytes() for path in local)

        # near → far: a new local message, one marked seen, one deleted
        new = inbox / "new" / "1700000000.local.host"
        new.write_bytes(build_message(subject="Écrit hors ligne"))
        seen = next(p for p in local if b"Subject: Convocation" in p.read_bytes())
        gone = next(p for p in local if b"Lettre de liaison" in p.read_bytes())
        seen.rename(seen.parent.parent / "cur" / (seen.name.split(":2,")[0] + ":2,S"))
        gone.unlink()
        await mbsync(config)
        folder = await store.folders.get(account.id, "INBOX")
        rows = await store.messages.fetch_rows(folder.id, envelope=True)
        subjects = {row.uid: decode_header_text(json.loads(row.envelope or "")[1]) for row in rows}
        assert sorted(subjects.values()) == ["Convocation", "Résultats", "Écrit hors ligne"]
        flags = {subjects[row.uid]: row.flags for row in rows}
        assert flags["Convocation"] == ("\\Seen",)
        assert flags["Résultats"] == () and flags["Écrit hors ligne"] == ()

        # far → near: a delivery and a flag set on the server
        await store.messages.deliver(build_message(subject="Nouveau"), [DeliveryTarget(account.id)])
        first = min(subjects)
        await store.messages.store_flags(folder.id, [(first, first)], "+", ["\\Flagged"])
        await mbsync(config)
        local = messages(inbox)
        assert len(local) == 4
        assert any(b"Subject: Nouveau" in path.read_bytes() for path in local)
        flagged = [p for p in local if ":2," in p.name and "F" in p.name.split(":2,")[1]]
        assert len(flagged) == 1
        assert await mbsync(config) is not None  # a third run has nothing to do and succeeds
