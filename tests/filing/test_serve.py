"""The filing worker as `pli serve` runs it, with the document store in the same process: a
message delivered to a citizen (by another process writing the same database) is filed by an
automatic rule, a citizen's request is filed, a refused one is failed and tried again with
`pli filing retry`; `pli filing list|show` print them; an empty docstore.token is refused at
start. The mail store is the SQLite file of the configuration (as `pli init` makes it)."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner, Result
from plitest.docstore import CITIZEN, TEST_TOKEN
from plitest.filing import PDF, deliver, free_port, write_serve_config, xdm_message
from plitest.process import PliProcess, run_pli
from plitest.store import build_message

from pli.config.loading import load_settings
from pli.mailbox.filing import request_filing
from pli.mailbox.store import Store
from pli.mailgateway.cli import main


@pytest.fixture
def config(tmp_path: Path) -> Path:
    rules = '[[filing.rules]]\nname = "xdm-to-patient"\nmatch = "ihe-xdm"'
    url = f"http://127.0.0.1:{free_port()}"
    return write_serve_config(
        tmp_path / "pli.toml", docstore_url=url, serve_docstore=True, filing=rules
    )


@pytest.fixture
async def server(config: Path) -> AsyncIterator[tuple[PliProcess, dict[str, tuple[str, int]]]]:
    process = PliProcess(["serve", "-c", str(config)])
    try:
        yield process, await asyncio.to_thread(process.listening)
    finally:
        process.stop()


async def logged(server: PliProcess, event: str) -> dict[str, object]:
    return await asyncio.to_thread(server.wait_for, event, 60)


async def pli(*args: str) -> Result:
    """A `pli` command run in this process (in a thread: it runs its own event loop)."""
    return await asyncio.to_thread(CliRunner().invoke, main, list(args))


async def settled(server: PliProcess, count: int) -> dict[int, str]:
    """The next ``count`` filing outcomes in the log, in whatever order: filing id → event."""
    outcomes = {}
    for _ in range(count):
        event = await asyncio.to_thread(server._next_of, {"filing-filed", "filing-failed"})
        outcomes[int(event["filing"])] = str(event["event"])
    return outcomes


async def test_pli_serve_files_by_rule_and_by_request_and_the_cli_shows_and_retries(
    config: Path, server: tuple[PliProcess, dict[str, tuple[str, int]]]
) -> None:
    process, where = server
    settings = load_settings(config)
    await logged(process, "filing-rules-running")  # mail delivered from now on is examined
    store = await Store.open(settings)
    try:
        account = await store.accounts.create_citizen(CITIZEN, "patient.mssante.fr")
        await deliver(store, account, xdm_message())  # the rule files it
        first = await logged(process, "filing-filed")
        raw = build_message(
            to=[account.address],
            attachments=[
                ("cr.pdf", "application/pdf", PDF),
                ("photos.zip", "application/zip", b"PK\x03\x04" + b"\0" * 40),
            ],
        )
        folder, uid = await deliver(store, account, raw)
        asked = await request_filing(store, account, folder, uid, "2")
        refused = await request_filing(store, account, folder, uid, "3")
        outcomes = await settled(process, 2)
    finally:
        await store.close()
    assert first["filing"] == 1
    assert outcomes == {asked.id: "filing-filed", refused.id: "filing-failed"}

    host, port = where["docstore"]
    async with httpx.AsyncClient(
        base_url=f"http://{host}:{port}", headers={"Authorization": f"Bearer {TEST_TOKEN}"}
    ) as client:
        listed = (await client.get(f"/v1/citizens/{CITIZEN}/documents")).json()["documents"]
    assert sorted((d["filed_by"]["kind"], d["source_part"]) for d in listed) == [
        ("automatic-rule", "2/IHE_XDM/SUBSET01/DOC0001.XML"),
        ("citizen-request", "2"),
    ]
    host, port = where["admin"]
    async with httpx.AsyncClient() as client:
        health = (await client.get(f"http://{host}:{port}/health")).json()
    assert health["checks"]["filing"] == "ok"

    shown = await pli("filing", "list", "-c", str(config))
    assert shown.exit_code == 0, shown.output
    lines = shown.stdout.splitlines()
    assert len(lines) == 3
    assert lines[0].startswith(f"{refused.id} failed ins={CITIZEN} part=3 kind=attachment")
    assert "reason=archive-refused" in lines[0]
    assert "by=automatic-rule:xdm-to-patient" in lines[2]
    detail = await pli("filing", "show", str(refused.id), "-c", str(config))
    assert "citizen reads: Les archives" in detail.stdout
    assert "detail: " in detail.stdout
    assert (await pli("filing", "list", "--status", "pending", "-c", str(config))).stdout == ""

    retried = await pli("filing", "retry", str(refused.id), "-c", str(config))
    assert retried.stdout.strip() == "retried: 1"
    again = await logged(process, "filing-failed")
    assert again["filing"] == refused.id and again["attempt"] == 1
    assert (await pli("filing", "retry", "--failed", "-c", str(config))).stdout == "retried: 1\n"
    await logged(process, "filing-failed")
    nothing = await pli("filing", "retry", "-c", str(config))
    assert nothing.exit_code == 1 and "give filing ids or --failed" in nothing.stderr
    missing = await pli("filing", "show", "999", "-c", str(config))
    assert missing.exit_code == 1 and "no such filing" in missing.stderr

    process.signal(signal.SIGTERM)
    assert await asyncio.to_thread(process.wait) == 0


def test_an_empty_docstore_token_is_refused_at_start(config: Path) -> None:
    result = run_pli(
        "serve",
        "-c",
        str(config),
        env={"PLI_DOCSTORE__TOKEN": "", "PLI_LISTENERS__DOCSTORE__ENABLED": "false"},
    )
    assert result.returncode == 1
    assert "pli: filing: docstore.token is empty" in result.stderr
