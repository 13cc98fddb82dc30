"""`pli serve` as a real process with its SMTP listeners: delivery over mutual TLS, kill -9 with
messages in flight (every acknowledged message survives), SIGTERM during DATA (completed and
acknowledged, or never acknowledged), a listener in two processes sharing its connections.

These tests use the configuration `pli init --demo` writes (SQLite in its data directory), on
either database run of the suite."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import ssl
from collections import Counter
from pathlib import Path

import aiosmtplib
import pytest
from plitest.process import PliProcess, run_pli
from plitest.smtp import RawClient
from plitest.store import build_message

from pli.config.loading import load_settings
from pli.mailbox.store import Store
from pli.mailbox.store.demo import DEMO_DOMAIN, DEMO_PASSWORD, PARENT_INS

PAUL = f"{PARENT_INS}@patient.mssante.fr".lower()
DOCTOR = f"dr.martin@{DEMO_DOMAIN}"
PORTS = {
    f"PLI_LISTENERS__{name}__PORT": "0"
    for name in (
        "ADMIN",
        "DOCSTORE",
        "MTA",
        "SUBMISSION",
        "SUBMISSIONS",
        "IMAP",
        "IMAPS",
        "WEBMAIL",
    )
}


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "pli"
    result = run_pli("init", "--dir", str(directory), "--demo")
    assert result.returncode == 0, result.stderr
    return directory


def operator_context(data_dir: Path) -> ssl.SSLContext:
    """Our own operator certificate (the demo whitelist lists it for the demo domains)."""
    context = ssl.create_default_context(cafile=data_dir / "pki/trust/anchors.pem")
    context.load_verify_locations(data_dir / "pki/trust/intermediates.pem")
    context.check_hostname = False
    context.load_cert_chain(
        data_dir / "pki/server/operator.crt", data_dir / "pki/server/operator.key"
    )
    return context


def free_ports(data_dir: Path) -> dict[str, str]:
    """Every listener of the configuration on a free port (tests run side by side)."""
    listeners = load_settings(data_dir / "pli.toml", environ={}).listeners
    return {f"PLI_LISTENERS__{name.upper()}__PORT": "0" for name in listeners}


def serve(data_dir: Path, **env: str) -> tuple[PliProcess, dict[str, tuple[str, int]]]:
    process = PliProcess(
        ["serve", "-c", str(data_dir / "pli.toml")], env={**free_ports(data_dir), **env}
    )
    try:
        return process, process.listening()
    except BaseException:
        process.stop()
        raise


async def client(address: tuple[str, int], data_dir: Path) -> aiosmtplib.SMTP:
    smtp = aiosmtplib.SMTP(
        hostname=address[0],
        port=address[1],
        start_tls=False,
        tls_context=operator_context(data_dir),
        timeout=30,
    )
    await smtp.connect()
    await smtp.starttls()
    return smtp


async def stored_subjects(data_dir: Path) -> set[str]:
    store = await Store.open(load_settings(data_dir / "pli.toml", environ={}))
    try:
        account = await store.accounts.by_address(PAUL)
        folder = await store.folders.get(account.id, "INBOX")
        subjects = set()
        for uid in await store.messages.uids(folder.id):
            raw = await store.messages.read(folder.id, uid)
            for line in raw.split(b"\r\n"):
                if line.startswith(b"Subject: n-"):
                    subjects.add(line[9:].decode())
        return subjects
    finally:
        await store.close()


async def test_kill_9_loses_no_acknowledged_message(data_dir: Path) -> None:
    process, where = serve(data_dir)
    acknowledged: list[str] = []

    async def sender(index: int) -> None:
        smtp = await client(where["mta"], data_dir)
        try:
            for number in range(1000):
                subject = f"n-{index}-{number}"
                await smtp.sendmail(
                    DOCTOR, [PAUL], build_message(sender=DOCTOR, to=[PAUL], subject=subject)
                )
                acknowledged.append(subject)
        except (aiosmtplib.SMTPException, OSError):
            return  # the server died under us

    senders = [asyncio.create_task(sender(index)) for index in range(4)]
    try:
        while len(acknowledged) < 60:
            await asyncio.wait(senders, timeout=0.05)
            assert not all(task.done() for task in senders), process.output
        process.process.send_signal(signal.SIGKILL)
        await asyncio.gather(*senders)
    finally:
        process.stop()
    stored = await stored_subjects(data_dir)
    assert set(acknowledged) <= stored  # every acknowledged message survived


async def test_sigterm_during_data_completes_and_acknowledges(data_dir: Path) -> None:
    process, where = serve(data_dir)
    try:
        smtp = await RawClient.connect(where["mta"])
        await smtp.reply()
        await smtp.command("EHLO mx.test")
        await smtp.command("STARTTLS")
        await smtp.starttls(operator_context(data_dir))
        await smtp.command("EHLO mx.test")
        assert (await smtp.command(f"MAIL FROM:<{DOCTOR}>"))[0] == 250
        assert (await smtp.command(f"RCPT TO:<{PAUL}>"))[0] == 250
        assert (await smtp.command("DATA"))[0] == 354
        message = build_message(sender=DOCTOR, to=[PAUL], subject="n-term")
        await smtp.send(message[:200])
        process.signal(signal.SIGTERM)
        process.wait_for("stopping")
        await smtp.send(message[200:] + b".\r\n")
        code, lines = await smtp.reply()
        assert code == 250, lines
        assert (await smtp.reply())[0] == 421
        assert process.wait() == 0
    finally:
        process.stop()
    assert "n-term" in await stored_subjects(data_dir)


async def test_a_listener_in_two_processes_shares_its_connections(data_dir: Path) -> None:
    process, where = serve(data_dir, PLI_LISTENERS__MTA__PROCESSES="2")
    try:
        [worker] = [json.loads(line) for line in process.lines if '"smtp-worker-started"' in line]
        pid = int(worker["pid"])  # logged before "ready": start-up waits for the worker
        assert pid != process.process.pid

        async def one(number: int) -> None:
            smtp = await client(where["mta"], data_dir)
            await smtp.sendmail(
                DOCTOR, [PAUL], build_message(sender=DOCTOR, to=[PAUL], subject=f"n-p-{number}")
            )
            await smtp.quit()

        await asyncio.gather(*(one(number) for number in range(12)))
        # pli serve accepts and hands every other connection to its worker (round-robin)
        connects = [json.loads(line) for line in process.lines if '"smtp-connect"' in line]
        served = Counter(event["process"] for event in connects if event["listener"] == "mta")
        assert served == {process.process.pid: 6, pid: 6}
        process.signal(signal.SIGTERM)
        assert process.wait() == 0
        with pytest.raises(ProcessLookupError):  # the worker stopped with it
            os.kill(pid, 0)
    finally:
        process.stop()
    assert {f"n-p-{n}" for n in range(12)} <= await stored_subjects(data_dir)


def test_queue_and_dkim_commands(data_dir: Path) -> None:
    config = str(data_dir / "pli.toml")
    listed = run_pli("queue", "list", "-c", config)
    assert listed.returncode == 0 and listed.stdout.strip() == "queue empty"

    async def enqueue() -> int:
        from pli.mailgateway.queue.entries import NewRecipient, OutboundQueue

        settings = load_settings(data_dir / "pli.toml", environ={})
        store = await Store.open(settings)
        try:
            queue = OutboundQueue(
                store, settings.server.data_dir / settings.queue.directory, max_lifetime=3600
            )
            raw = build_message(sender=DOCTOR, to=["x@clinique-demo.mssante.fr"])
            return await queue.enqueue(
                raw, DOCTOR, [NewRecipient("x@clinique-demo.mssante.fr")], origin="submission"
            )
        finally:
            await store.close()

    queued = asyncio.run(enqueue())
    listed = run_pli("queue", "list", "-c", config, "--json")
    [entry] = json.loads(listed.stdout)
    assert entry["id"] == queued and entry["recipients"][0]["status"] == "queued"
    assert run_pli("queue", "retry", str(queued), "-c", config).returncode == 0
    assert (
        run_pli("queue", "delete", str(queued), "-c", config).stdout.strip() == f"deleted {queued}"
    )
    missing = run_pli("queue", "delete", str(queued), "-c", config)
    assert missing.returncode == 1 and "no queued message" in missing.stderr
    dns = run_pli("dkim", "dns", "-c", config)
    assert dns.returncode == 0
    assert dns.stdout.startswith(f'pli._domainkey.{DEMO_DOMAIN}. IN TXT ( "v=DKIM1; k=rsa; p=')
    again = run_pli("dkim", "generate", "-c", config)
    assert again.returncode == 1 and "exists" in again.stderr


def test_policy_explain_gathers_its_facts_from_the_store(data_dir: Path) -> None:
    config = str(data_dir / "pli.toml")
    reply = run_pli("policy", "explain", "-c", config, "--from", PAUL, "--to", DOCTOR)
    assert reply.returncode == 0, reply.stderr
    assert reply.stdout.startswith("decision    accept: 250 2.1.5 citizen-reply (rule P2)")
    assert "exchange    open since" in reply.stdout  # the demo doctor wrote to Paul
    noreply = f"cr-patient-noreply@{DEMO_DOMAIN}"
    refused = run_pli("policy", "explain", "-c", config, "--from", PAUL, "--to", noreply)
    assert "no-reply-mailbox (rule P6)" in refused.stdout.splitlines()[0]
    fin = run_pli(
        "policy", "explain", "-c", config, "--from", DOCTOR, "--to", PAUL, "--subject", "[FIN]"
    )
    assert "effect      ended: exchange" in fin.stdout
    options = run_pli(
        "policy", "explain", "-c", config, "--facts", "options", "--from", PAUL, "--to", DOCTOR
    )
    assert "citizen-not-contacted" in options.stdout.splitlines()[0]  # no exchange given


async def test_a_lockout_counts_the_failures_of_every_process(data_dir: Path) -> None:
    """Submission in two processes, three failures allowed: the failures land on both
    processes (round-robin), and the right password is then refused in either."""
    process, where = serve(
        data_dir,
        PLI_LISTENERS__SUBMISSION__PROCESSES="2",
        PLI_AUTH__FAILURES_BEFORE_LOCKOUT="3",
        PLI_AUTH__REQUIRE_OTP="false",
    )
    try:

        async def login(password: str) -> bool:
            smtp = aiosmtplib.SMTP(
                hostname=where["submission"][0],
                port=where["submission"][1],
                start_tls=True,
                tls_context=ssl.create_default_context(cafile=data_dir / "pki/trust/anchors.pem"),
                timeout=30,
            )
            smtp.tls_context.check_hostname = False
            await smtp.connect()
            await smtp.ehlo()
            try:
                await smtp.auth_plain(DOCTOR, password)
            except aiosmtplib.SMTPAuthenticationError as refused:
                assert refused.code == 535
                return False
            finally:
                smtp.close()
            return True

        assert await login(DEMO_PASSWORD)  # the configuration lets a password alone through
        for _ in range(3):
            assert not await login("not-the-password")
        assert not await login(DEMO_PASSWORD)  # locked, in whichever process serves it
        process.signal(signal.SIGTERM)
        assert process.wait() == 0  # and every line the two processes logged is read
        events = [json.loads(line) for line in process.lines if line.startswith("{")]
        served = Counter(e["process"] for e in events if e.get("event") == "smtp-connect")
        assert len(served) == 2 and sum(served.values()) == 5
        refused = [e["reason"] for e in events if e.get("event") == "auth-refused"]
        assert refused == ["bad-password"] * 3 + ["locked"], refused
    finally:
        process.stop()


def _alive(pid: int) -> bool:
    """Running (a zombie nobody reaped yet has ended)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


async def test_a_worker_ends_when_pli_serve_is_killed(data_dir: Path) -> None:
    """kill -9 of `pli serve` closes the hand-off socket: the worker stops by itself (an orphan
    would keep the store open and its connections unserved)."""
    process, _ = serve(data_dir, PLI_LISTENERS__MTA__PROCESSES="2")
    pid: int | None = None
    try:
        [worker] = [json.loads(line) for line in process.lines if '"smtp-worker-started"' in line]
        pid = int(worker["pid"])
        process.signal(signal.SIGKILL)
        for _ in range(300):
            if not _alive(pid):
                break
            await asyncio.sleep(0.1)
        assert not _alive(pid), "the worker outlived pli serve"
        process.wait()  # the output's reader has read everything the worker wrote
        assert any('"smtp-handoff-closed"' in line for line in process.lines)
    finally:
        process.stop()
        if pid is not None and _alive(pid):
            os.kill(pid, signal.SIGKILL)
