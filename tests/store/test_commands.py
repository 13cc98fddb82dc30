"""The store's admin commands as real processes (`pli mailbox|citizen|directory|audit|db`)."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from plitest.process import PLI

from pli.config.loading import load_settings
from pli.mailbox.store import Store

CONFIG = """\
[server]
data_dir = "."
[domains]
professional = ["hopital-demo.mssante.fr"]
"""


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "pli.toml"
    path.write_text(CONFIG)
    return path


def pli(config: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*PLI, *args[:2], "-c", str(config), *args[2:]] if len(args) >= 2 else [*PLI, *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_mailbox_add_list_passwd_remove(config: Path) -> None:
    added = pli(
        config,
        "mailbox",
        "add",
        "Dr.X@hopital-demo.mssante.fr",
        "--type",
        "PER",
        "--name",
        "Dr X",
        "--rpps",
        "10101010101",
        "--password-stdin",
        stdin="a long password\n",
    )
    assert added.returncode == 0, added.stderr
    assert added.stdout.strip() == "created dr.x@hopital-demo.mssante.fr (PER)"
    again = pli(config, "mailbox", "add", "dr.x@hopital-demo.mssante.fr", "--type", "PER")
    assert again.returncode == 1
    assert again.stderr.strip() == "pli: account dr.x@hopital-demo.mssante.fr exists already"
    listed = pli(config, "mailbox", "list")
    assert listed.stdout.splitlines() == ["dr.x@hopital-demo.mssante.fr\tPER\tDr X"]
    short = pli(
        config,
        "mailbox",
        "passwd",
        "dr.x@hopital-demo.mssante.fr",
        "--password-stdin",
        stdin="short\n",
    )
    assert short.returncode == 1 and "shorter than 12" in short.stderr
    changed = pli(
        config,
        "mailbox",
        "passwd",
        "dr.x@hopital-demo.mssante.fr",
        "--password-stdin",
        "--totp",
        stdin="another long password\n",
    )
    assert changed.returncode == 0 and "totp secret: " in changed.stdout
    removed = pli(config, "mailbox", "remove", "dr.x@hopital-demo.mssante.fr", "--yes")
    assert removed.returncode == 0
    assert pli(config, "mailbox", "list").stdout == ""


async def test_mailbox_unlock_ends_a_lockout_and_is_audited(config: Path) -> None:
    address = "dr.locked@hopital-demo.mssante.fr"
    assert pli(config, "mailbox", "add", address, "--type", "PER").returncode == 0
    settings = load_settings(config, environ={})
    store = await Store.open(settings)
    try:
        at = datetime.now(UTC)
        for _ in range(3):
            await store.login_failures.record(address, at, forget_before=at - timedelta(hours=1))
        await store.login_failures.record("someone.else@x.fr", at, forget_before=at)
    finally:
        await store.close()
    unlocked = pli(config, "mailbox", "unlock", address.upper())
    assert unlocked.returncode == 0, unlocked.stderr
    assert unlocked.stdout.strip() == f"unlocked {address} (3 failed logins forgotten)"
    unknown = pli(config, "mailbox", "unlock", "nobody@hopital-demo.mssante.fr")
    assert unknown.returncode == 1 and unknown.stderr.startswith("pli: ")
    store = await Store.open(settings)
    try:
        since = at - timedelta(hours=1)
        assert await store.login_failures.count(address, since=since) == 0
        assert await store.login_failures.count("someone.else@x.fr", since=since) == 1
        [record] = await store.audit.history(address, limit=1)
        assert (record.action, record.result) == ("unlock", "3 failed logins forgotten")
    finally:
        await store.close()


def test_citizen_add_status_guardian(config: Path) -> None:
    bad = pli(config, "citizen", "add", "146026322000197")
    assert bad.returncode == 1 and bad.stderr.strip() == "pli: invalid INS (ins-key)"
    for ins in ("180017512345660", "215037512345725"):
        assert pli(config, "citizen", "add", ins, "--name", "X").returncode == 0
    closed = pli(config, "citizen", "status", "215037512345725", "closed")
    assert closed.stdout.strip() == "215037512345725@patient.mssante.fr\tclosed"
    shown = pli(config, "citizen", "status", "215037512345725")
    assert shown.stdout.strip().endswith("\tclosed")
    guardian = pli(config, "citizen", "guardian", "215037512345725", "180017512345660")
    assert guardian.returncode == 0, guardian.stderr
    assert guardian.stdout.splitlines()[-1] == "180017512345660@patient.mssante.fr\tparent"
    unknown = pli(config, "citizen", "status", "146026322000196")
    assert unknown.returncode == 1 and unknown.stderr.strip() == "pli: no such account"


def test_directory_import_reports_bad_rows_with_line_numbers(config: Path, tmp_path: Path) -> None:
    extract = tmp_path / "extraction.txt"
    extract.write_text(
        "Type de BAL|Adresse BAL|Raison sociale structure BAL|Code secteur d'activité\n"
        "ORG|officine@pharma.mssante.fr|Pharmacie du Port|SA33\n"
        "ZZZ|x@pharma.mssante.fr||\n",
        encoding="latin-1",
    )
    result = pli(config, "directory", "import", str(extract))
    assert result.returncode == 0, result.stderr
    assert (
        result.stderr.strip()
        == f"{extract}:3: unknown BAL type 'ZZZ' (expected PER, ORG, APP, CAB)"
    )
    assert result.stdout.strip().endswith("1 added, 0 updated, 1 refused")
    shown = pli(config, "directory", "show", "officine@pharma.mssante.fr")
    assert shown.stdout.strip() == "officine@pharma.mssante.fr\tORG\tPharmacie du Port\tpharmacy"
    dispensations = tmp_path / "dispensations.csv"
    dispensations.write_text("ins,pharmacy,date\n180017512345660,750000001,2025-01-02\nbad\n")
    imported = pli(config, "directory", "dispensations", str(dispensations))
    assert imported.stdout.strip().endswith("1 added, 0 known, 1 refused")
    assert f"{dispensations}:3:" in imported.stderr


def test_audit_verify_finds_a_tampered_record(config: Path, tmp_path: Path) -> None:
    pli(config, "citizen", "add", "180017512345660", "--name", "X")
    upgraded = pli(config, "db", "upgrade")
    assert upgraded.returncode == 0 and upgraded.stdout.startswith("database at revision ")
    script = (
        "import asyncio, sys\n"
        "from pathlib import Path\n"
        "from pli.config.loading import load_settings\n"
        "from pli.mailbox.store import Store\n"
        "async def main():\n"
        f"    store = await Store.open(load_settings(Path({str(config)!r})))\n"
        "    for i in range(3):\n"
        "        await store.audit.record('a', 'consult', mailbox='m', request=str(i))\n"
        "    await store.close()\n"
        "asyncio.run(main())\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60)
    assert pli(config, "audit", "verify").stdout.strip() == "OK: 3 records verified"
    with sqlite3.connect(tmp_path / "pli.sqlite3") as db:
        db.execute("UPDATE audit_records SET request = 'forged' WHERE id = 2")
    broken = pli(config, "audit", "verify")
    assert broken.returncode == 1
    assert broken.stderr.strip() == (
        "pli: audit chain broken at record 2: record content does not match its hash"
    )
    history = pli(config, "audit", "show", "m")
    assert len(history.stdout.splitlines()) == 3
