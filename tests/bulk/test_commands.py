"""`pli bulk …` as the operator runs it (real processes on the test configuration): the dry run
as JSON and CSV, send, status, report, list, cancel, and the errors people get."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import tomllib
from pathlib import Path

from plitest.bulk import (
    add_citizens,
    csv_lines,
    fresh_database,
    write_campaign,
    write_process_config,
)
from plitest.process import run_pli

from pli.config.schema import BulkSection
from pli.mailbox.store import Store
from pli.mailbox.store.demo import create_demo
from pli.mailbox.store.records import ProfileStatus
from pli.mailgateway.bulk.api import token_digest


async def test_check_send_status_report_list(tmp_path: Path, database_url: str) -> None:
    async with fresh_database(database_url) as database:
        settings = write_process_config(tmp_path / "server", database)
        config = str(settings.source)
        store = await Store.open(settings)
        try:
            await create_demo(store)
            patients = await add_citizens(store, 3)
            opposed = await add_citizens(store, 1, status=ProfileStatus.OPPOSED, start=9)
        finally:
            await store.close()
        directory = write_campaign(tmp_path / "c", csv_lines([*patients, *opposed]))
        dry_csv = str(tmp_path / "dry.csv")

        def bulk(*args: str) -> subprocess.CompletedProcess[str]:
            return run_pli("bulk", args[0], "-c", config, *args[1:])

        checked = bulk("check", "--json", "--csv", dry_csv, str(directory))
        assert checked.returncode == 0, checked.stderr
        dry = json.loads(checked.stdout)
        assert (dry["total"], dry["accepted"], dry["by_reason"]) == (4, 3, {"profile-opposed": 1})
        lines = list(csv.DictReader(io.StringIO((tmp_path / "dry.csv").read_text()), delimiter=";"))
        assert [line["status"] for line in lines] == ["accepted"] * 3 + ["refused"]

        sent = bulk("send", str(directory))
        assert sent.returncode == 0, sent.stderr
        assert "3 submitted, 1 refused" in sent.stderr and "convocations-test" in sent.stderr

        status = json.loads(
            run_pli("bulk", "status", "-c", config, "--json", "convocations-test").stdout
        )
        assert (status["state"], status["done"], status["remaining"]) == ("finished", 4, 0)
        assert status["by_delivery"] == {"delivered": 3}

        report = json.loads(
            run_pli("bulk", "report", "-c", config, "--format", "json", "convocations-test").stdout
        )
        assert report["counts"] == {"delivered": 3, "refused": 1}
        table = bulk("report", "convocations-test").stdout
        assert (
            table.splitlines()[0]
            == "line;key;recipient;message_id;status;reason;text;detail;submitted_at"
        )

        listed = bulk("list").stdout
        assert listed.startswith("convocations-test  finished")

        unknown = bulk("status", "nope")
        assert unknown.returncode == 1 and "no campaign nope" in unknown.stderr
        cancelled = bulk("cancel", "convocations-test")
        assert cancelled.returncode == 0 and "0 row(s) cancelled" in cancelled.stdout

        (directory / "patients.csv").write_text(csv_lines(patients[:1]))
        changed = bulk("send", str(directory))
        assert changed.returncode == 1 and "autre contenu" in changed.stderr


def test_token_prints_the_client_table_with_the_token_digest() -> None:
    made = run_pli("bulk", "token", "si-chu", "--mailbox", "CR@hopital-demo.mssante.fr")
    assert made.returncode == 0, made.stderr
    token = made.stderr.strip().rsplit(": ", 1)[1]
    assert len(token) >= 43  # 256 random bits, base64url
    section = BulkSection.model_validate(tomllib.loads(made.stdout)["bulk"])
    (client,) = section.clients
    assert client.name == "si-chu" and client.mailboxes == ["cr@hopital-demo.mssante.fr"]
    assert client.token_sha256 == token_digest(token)
    again = run_pli("bulk", "token", "si-chu", "--mailbox", "cr@hopital-demo.mssante.fr")
    assert again.stderr != made.stderr  # a new token every time


def test_token_refuses_a_bad_name_or_no_mailbox() -> None:
    bad = run_pli("bulk", "token", "Bad Name", "--mailbox", "cr@hopital-demo.mssante.fr")
    assert bad.returncode != 0 and "lower-case letters" in bad.stderr and not bad.stdout
    none = run_pli("bulk", "token", "si-chu", "--mailbox", "not-an-address")
    assert none.returncode != 0 and "mailbox address" in none.stderr and not none.stdout
