"""The bulk API as `pli serve` runs it (a real process, the configuration `pli init --demo`
writes, plus one ``[[bulk.clients]]``): a campaign submitted over HTTP on the admin listener wakes
the runner, which delivers it; the report says so. The mail store is the SQLite file of the data
directory on either database run of the suite."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from plitest.bulk import SENDER, add_citizens, csv_lines, inbox_message_ids
from plitest.bulk_api import TOKEN, digest
from plitest.process import PliProcess, run_pli

from pli.config.loading import load_settings
from pli.mailbox.store import Store

CAMPAIGN = (
    'id = "serve-api"\nkind = "convocation"\n'
    f'mailbox = "{SENDER}"\nrecipients = "patients.csv"\n'
    'subject = "Convocation"\nbody = "Bonjour {{ prenom }}"\n'
)


@pytest.fixture
def config(tmp_path: Path) -> Path:
    directory = tmp_path / "pli"
    result = run_pli("init", "--dir", str(directory), "--demo")
    assert result.returncode == 0, result.stderr
    path = directory / "pli.toml"
    with path.open("a", encoding="utf-8") as file:
        file.write(
            f'\n[[bulk.clients]]\nname = "si-hopital"\ntoken_sha256 = "{digest(TOKEN)}"\n'
            f'mailboxes = ["{SENDER}"]\n'
        )
    return path


@pytest.fixture
async def server(config: Path) -> AsyncIterator[tuple[PliProcess, str]]:
    listeners = load_settings(config, environ={}).listeners
    ports = {f"PLI_LISTENERS__{name.upper()}__PORT": "0" for name in listeners}
    process = PliProcess(["serve", "-c", str(config)], env=ports)
    try:
        where = await asyncio.to_thread(process.listening)
        host, port = where["admin"]
        yield process, f"http://{host}:{port}"
    finally:
        process.stop()


async def test_pli_serve_takes_a_campaign_over_http_and_delivers_it(
    config: Path, server: tuple[PliProcess, str]
) -> None:
    process, base_url = server
    store = await Store.open(load_settings(config))
    try:
        patients = await add_citizens(store, 3)
        async with httpx.AsyncClient(
            base_url=base_url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60
        ) as api:
            files = [
                ("definition", ("campaign.toml", CAMPAIGN.encode(), "application/toml")),
                ("files", ("patients.csv", csv_lines(patients).encode(), "text/csv")),
            ]
            response = await api.post("/bulk/campaigns", files=files)
            assert response.status_code == 201, response.text

            ended = await asyncio.to_thread(process.wait_for, "bulk-run-ended", 60)

            assert (ended["campaign"], ended["submitted"], ended["finished"]) == (
                "serve-api",
                3,
                True,
            )
            report = (await api.get("/bulk/campaigns/serve-api/report")).json()
            assert report["counts"] == {"delivered": 3}
            for patient in patients:
                assert len(await inbox_message_ids(store, patient.address)) == 1
            unauthorised = await api.get("/bulk/campaigns", headers={"Authorization": "Bearer x"})
            assert unauthorised.status_code == 401
    finally:
        await store.close()


async def test_an_acknowledged_campaign_survives_kill_9_and_is_sent_exactly_once(
    config: Path,
) -> None:
    """201 means the files and the rows are committed: ``pli serve`` killed while sending,
    started again, sends the rest at once: the lease is the default (60 s), but its holder is
    a dead process of this host, so the next process takes the campaign over without waiting."""
    listeners = load_settings(config, environ={}).listeners
    env = {f"PLI_LISTENERS__{name.upper()}__PORT": "0" for name in listeners}
    env |= {"PLI_BULK__LEASE": "60", "PLI_BULK__POLL_INTERVAL": "0.5"}
    store = await Store.open(load_settings(config))
    try:
        patients = await add_citizens(store, 6)
        first = PliProcess(
            ["serve", "-c", str(config)], env={**env, "PLI_BULK__RATE": "2", "PLI_BULK__BURST": "1"}
        )
        try:
            host, port = (await asyncio.to_thread(first.listening))["admin"]
            async with httpx.AsyncClient(
                base_url=f"http://{host}:{port}", headers={"Authorization": f"Bearer {TOKEN}"}
            ) as api:
                files = [
                    ("definition", ("campaign.toml", CAMPAIGN.encode(), "application/toml")),
                    ("files", ("patients.csv", csv_lines(patients).encode(), "text/csv")),
                ]
                assert (await api.post("/bulk/campaigns", files=files)).status_code == 201
            await asyncio.to_thread(first.wait_for, "submitted", 60)
        finally:
            first.process.kill()  # SIGKILL: no chance to finish or release anything
            first.process.wait()
        sent = [len(await inbox_message_ids(store, p.address)) for p in patients]
        assert 0 < sum(sent) < len(patients)  # killed in the middle of the campaign

        second = PliProcess(["serve", "-c", str(config)], env=env)
        try:
            await asyncio.to_thread(second.listening)
            while True:  # every run of the campaign in this process, until it finishes
                ended = await asyncio.to_thread(second.wait_for, "bulk-run-ended", 40)
                if ended["finished"]:
                    break
        finally:
            second.stop()
        for patient in patients:
            assert len(await inbox_message_ids(store, patient.address)) == 1
    finally:
        await store.close()
