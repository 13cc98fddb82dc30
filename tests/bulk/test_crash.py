"""`pli bulk send` as a real process, killed with SIGKILL in the middle of a campaign, then run
again: every row is delivered exactly once (Message-IDs counted in every mailbox), and a third
run sends nothing. On SQLite and on PostgreSQL (a fresh database: processes share it)."""

from __future__ import annotations

import asyncio
import signal
import subprocess
from collections import Counter
from pathlib import Path

from plitest.bulk import (
    add_citizens,
    csv_lines,
    fresh_database,
    inbox_message_ids,
    write_campaign,
    write_process_config,
)
from plitest.process import PLI, run_pli

from pli.mailbox.store import Store
from pli.mailbox.store.demo import create_demo
from pli.mailgateway.bulk.ledger import SUBMITTED, SUBMITTING, Ledger

ROWS = 60
#: Rows submitted before the kill (the run is throttled to 20 per second: about 3 s in all).
KILL_AFTER = 12
#: Bound on waiting for the process to get there (it takes about a second).
WAIT = 60.0


async def test_kill_9_mid_campaign_then_resume_delivers_each_row_once(
    tmp_path: Path, database_url: str
) -> None:
    async with fresh_database(database_url) as database:
        settings = write_process_config(
            tmp_path / "server",
            database,
            bulk={"rate": 20, "burst": 1, "batch_size": 10, "concurrency": 4},
        )
        config = str(settings.source)
        store = await Store.open(settings)
        try:
            await create_demo(store)
            patients = await add_citizens(store, ROWS)
            directory = write_campaign(tmp_path / "campaign", csv_lines(patients))
            ledger = Ledger(store)

            process = subprocess.Popen(  # noqa: ASYNC220 (killed below, never waited on long)
                [*PLI, "bulk", "send", "-c", config, "--no-progress", str(directory)],
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
            )
            try:
                states: dict[str, int] = {}
                loop = asyncio.get_running_loop()
                deadline = loop.time() + WAIT
                while loop.time() < deadline and process.poll() is None:
                    if await ledger.get("convocations-test") is not None:
                        states = (await ledger.progress("convocations-test")).by_state
                        if states.get(SUBMITTED, 0) >= KILL_AFTER and states.get(SUBMITTING):
                            break
                    await asyncio.sleep(0.02)
                process.send_signal(signal.SIGKILL)
            finally:
                process.kill()
                output = process.communicate(timeout=30)[0].decode()
            assert process.returncode == -signal.SIGKILL, output
            assert states.get(SUBMITTED, 0) >= KILL_AFTER and states.get(SUBMITTING), states
            killed = await ledger.progress("convocations-test")
            assert killed.remaining > 0  # killed mid-campaign, rows left submitting

            resumed = run_pli("bulk", "send", "-c", config, "--no-progress", str(directory))
            assert resumed.returncode == 0, resumed.stderr
            assert "resumed" in resumed.stderr

            again = run_pli("bulk", "send", "-c", config, "--no-progress", str(directory))
            assert again.returncode == 0, again.stderr
            assert "0 submitted" in again.stderr and "0 row(s) left" in again.stderr

            final = await ledger.progress("convocations-test")
            assert final.by_state == {SUBMITTED: ROWS}
            counts = Counter[str]()
            for patient in patients:
                ids = await inbox_message_ids(store, patient.address)
                assert len(ids) == 1, (patient.address, ids)
                counts.update(ids)
            assert len(counts) == ROWS and set(counts.values()) == {1}
            report = await ledger.report("convocations-test")
            assert {f"<{row.message_id}>" for row in report} == set(counts)
        finally:
            await store.close()
