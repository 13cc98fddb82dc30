"""IMAP server benchmark: a 10,000-message mailbox over real TLS sockets on 127.0.0.1.

    .venv/bin/python bench/imap.py [--messages 10000] [--repeat 5] [--sessions 1 4]
    .venv/bin/python bench/imap.py --url postgresql://postgres@127.0.0.1:5432/test

The mailbox (a few KB per message, one in twenty with a 100 KB attachment, varied senders and
subjects) is built once in ``--dir`` (default: the system temp dir, ``pli-bench-imap-N``) and
reused by later runs on SQLite; on PostgreSQL it is built in a temporary schema, dropped at the
end. The server runs in its own process (implicit TLS, the test PKI's certificate, the MSSanté
TLS profile), the clients in this one, each on its own thread with a raw socket (the figures are
the server's, not a client library's parsing). Everything is bounded: ``--repeat`` rounds of each
operation per session, 127.0.0.1 only.

Operations, each timed from the command's first octet sent to its tagged response received:
SELECT; ``UID FETCH 1:* (FLAGS INTERNALDATE RFC822.SIZE ENVELOPE)`` (the first of the server's
life: cold render cache; then warm); ``FETCH n BODY.PEEK[]`` of one message (a 100 KB one too);
``FETCH 1:100 BODY.PEEK[]``; ``SEARCH HEADER Message-ID``, ``SEARCH SUBJECT``, ``SEARCH FROM``;
``STORE n +FLAGS (\\Flagged)`` and ``STORE 1:* +FLAGS.SILENT (\\Seen)`` (then removed again).
Prints the median per operation for 1 session and for each concurrency of ``--sessions``.

The reference (the brief): Dovecot 2.3 on this kind of machine answers the metadata FETCH in
about 250 ms, a SUBJECT search in about 70 ms, SELECT in 30-70 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import secrets
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # plitest: the test PKI, message builder

USER = "bench@hopital-demo.mssante.fr"
PASSWORD = "bench-password-1234"  # a benchmark account on a throwaway store
SUBJECTS = (
    "Convocation consultation",
    "Compte rendu opératoire",
    "Résultats de biologie",
    "Lettre de liaison",
    "Demande d'avis",
)
NEEDLE_SUBJECT = "Aiguille"  # one message in 500
SENDERS = [f"Dr Martin {n} <dr.martin{n}@ch-exemple.mssante.fr>" for n in range(97)]


# --- building the mailbox -----------------------------------------------------------------------


def _message(index: int, rng: random.Random) -> bytes:
    from plitest.store import build_message

    subject = NEEDLE_SUBJECT if index % 500 == 7 else rng.choice(SUBJECTS)
    body = ("Bonjour,\n" + "ligne de texte du compte rendu médical. " * rng.randint(20, 80)) + "\n"
    attachments = []
    if index % 20 == 3:
        attachments = [("rapport.pdf", "application/pdf", rng.randbytes(100 * 1024))]
    return build_message(
        sender=SENDERS[index % len(SENDERS)],
        to=[USER],
        subject=f"{subject} {index}",
        body=body,
        message_id=f"<bench-{index}@ch-exemple.mssante.fr>",
        date=datetime(2024, 1, 1, tzinfo=UTC) + timedelta(minutes=index),
        attachments=attachments,
    )


async def build_mailbox(url: str, directory: Path, count: int, schema: str | None) -> None:
    from pli.mailbox.store import AccountKind, DeliveryTarget, Store

    store = await Store.open_url(url, directory / "messages", schema=schema, fsync=False)
    try:
        account = await store.accounts.find(USER)
        if account is None:
            account = await store.accounts.create(USER, AccountKind.PER, password=PASSWORD)
        inbox = await store.folders.get(account.id, "INBOX")
        have = (await store.folders.status(inbox.id)).exists
        rng = random.Random(have)
        start = time.perf_counter()
        for first in range(have, count, 200):
            async with store.transaction() as tx:
                for index in range(first, min(first + 200, count)):
                    raw = _message(index, rng)
                    await store.messages.deliver(raw, [DeliveryTarget(account.id)], tx=tx)
            done = min(first + 200, count)
            print(f"\rbuilding the mailbox: {done}/{count}", end="", flush=True)
        if have < count:
            print(f" ({time.perf_counter() - start:.0f} s)")
    finally:
        await store.close()


# --- the server process -------------------------------------------------------------------------


async def serve(url: str, directory: Path, schema: str | None, certificate: str, key: str) -> None:
    from pli.certs.tls import server_context
    from pli.config.schema import AuthSection, TlsSection
    from pli.mailbox.auth.service import Authenticator
    from pli.mailbox.imap.limits import Limits
    from pli.mailbox.imap.server import ImapServer
    from pli.mailbox.imap.session import SessionRegistry, SessionServices
    from pli.mailbox.store import Store
    from pli.mailgateway.asgi import bind_tcp

    store = await Store.open_url(url, directory / "messages", schema=schema)
    authenticator = Authenticator(
        store, AuthSection(require_otp=False), citizen_domain="patient.mssante.fr"
    )
    limits = Limits(commands_per_second=100000)
    services = SessionServices(
        store=store, authenticator=authenticator, limits=limits, registry=SessionRegistry(100)
    )
    context = server_context(TlsSection(certificate=Path(certificate), key=Path(key)))
    server = ImapServer(services, tls_context=context, implicit_tls=True)
    sock = bind_tcp("127.0.0.1", 0)
    await server.start(sock)
    print(json.dumps({"port": sock.getsockname()[1]}), flush=True)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    await server.stop(1.0)
    await store.close()


# --- the clients --------------------------------------------------------------------------------


class RawClient:
    """Commands over a TLS socket; a response ends with a line starting with its tag."""

    def __init__(self, port: int, context: ssl.SSLContext) -> None:
        raw = socket.create_connection(("127.0.0.1", port), timeout=120)
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock = context.wrap_socket(raw)
        self.counter = 0
        self._read_until(b"* OK")

    def _read_until(self, prefix: bytes) -> bytes:
        chunks: list[bytes] = []
        tail = b""
        while True:
            data = self.sock.recv(1 << 20)
            if not data:
                raise ConnectionError("server closed the connection")
            chunks.append(data)
            tail = (tail + data)[-4096:]
            if tail.endswith(b"\r\n"):
                last = tail[:-2].rpartition(b"\r\n")[2]
                if last.startswith(prefix):
                    return b"".join(chunks)

    def command(self, text: str) -> tuple[float, bytes]:
        self.counter += 1
        tag = f"B{self.counter:06d}".encode()
        start = time.perf_counter()
        self.sock.sendall(tag + b" " + text.encode() + b"\r\n")
        data = self._read_until(tag + b" ")
        elapsed = time.perf_counter() - start
        status = data[-4096:].rpartition(tag + b" ")[2][:2]
        if status != b"OK":
            raise RuntimeError(f"{text!r}: {data[-200:]!r}")
        return elapsed, data

    def close(self) -> None:
        with contextlib.suppress(OSError, RuntimeError, ConnectionError):
            self.command("LOGOUT")
        self.sock.close()


def operations(count: int, rng: random.Random) -> list[tuple[str, Callable[[RawClient], str]]]:
    big = [index + 1 for index in range(count) if index % 20 == 3]
    return [
        ("SELECT INBOX", lambda c: "SELECT INBOX"),
        (
            "UID FETCH 1:* (FLAGS INTERNALDATE RFC822.SIZE ENVELOPE)",
            lambda c: "UID FETCH 1:* (FLAGS INTERNALDATE RFC822.SIZE ENVELOPE)",
        ),
        ("FETCH n BODY.PEEK[] (a few KB)", lambda c: f"FETCH {rng.randint(1, count)} BODY.PEEK[]"),
        (
            "FETCH n BODY.PEEK[] (100 KB attachment)",
            lambda c: f"FETCH {rng.choice(big)} BODY.PEEK[]",
        ),
        ("FETCH 1:100 BODY.PEEK[]", lambda c: "FETCH 1:100 BODY.PEEK[]"),
        (
            "SEARCH HEADER Message-ID <…>",
            lambda c: (
                f"SEARCH HEADER Message-ID <bench-{rng.randrange(count)}@ch-exemple.mssante.fr>"
            ),
        ),
        ("SEARCH SUBJECT", lambda c: f'SEARCH SUBJECT "{NEEDLE_SUBJECT}"'),
        ("SEARCH FROM", lambda c: f"SEARCH FROM dr.martin{rng.randrange(97)}@"),
        (
            "STORE n +FLAGS (\\Flagged)",
            lambda c: f"STORE {rng.randint(1, count)} +FLAGS (\\Flagged)",
        ),
        ("STORE 1:* +FLAGS.SILENT (\\Seen)", lambda c: "STORE 1:* +FLAGS.SILENT (\\Seen)"),
        ("STORE 1:* -FLAGS.SILENT (\\Seen)", lambda c: "STORE 1:* -FLAGS.SILENT (\\Seen)"),
    ]


def run_sessions(port: int, sessions: int, repeat: int, count: int) -> dict[str, list[float]]:
    """Each session: log in, then ``repeat`` rounds of every operation (the sessions start each
    operation together). Returns the timings per operation over all sessions."""
    from plitest.pki import session_pki

    context = session_pki().client_context(with_client_cert=False)
    timings: dict[str, list[float]] = {}
    lock = threading.Lock()
    errors: list[BaseException] = []
    barrier = threading.Barrier(sessions)

    def session(number: int) -> None:
        rng = random.Random(number)
        client = RawClient(port, context)
        try:
            client.command(f'LOGIN "{USER}" "{PASSWORD}"')
            client.command("SELECT INBOX")
            for _ in range(repeat):
                for name, make in operations(count, rng):
                    barrier.wait(timeout=600)
                    elapsed, _ = client.command(make(client))
                    with lock:
                        timings.setdefault(name, []).append(elapsed)
        except BaseException as error:  # reported by the caller
            errors.append(error)
            barrier.abort()
        finally:
            client.close()

    threads = [threading.Thread(target=session, args=(n,)) for n in range(sessions)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return timings


def first_fetch(port: int) -> float:
    from plitest.pki import session_pki

    client = RawClient(port, session_pki().client_context(with_client_cert=False))
    try:
        client.command(f'LOGIN "{USER}" "{PASSWORD}"')
        client.command("SELECT INBOX")
        elapsed, _data = client.command("UID FETCH 1:* (FLAGS INTERNALDATE RFC822.SIZE ENVELOPE)")
        return elapsed
    finally:
        client.close()


def main(args: argparse.Namespace) -> None:
    from plitest.pki import session_pki
    from plitest.store import drop_schema, is_postgresql

    postgres = bool(args.url) and is_postgresql(args.url)
    directory = Path(args.dir or Path(tempfile.gettempdir()) / f"pli-bench-imap-{args.messages}")
    directory.mkdir(parents=True, exist_ok=True)
    url = args.url or f"sqlite:///{directory / 'bench.sqlite3'}"
    schema = f"bench_{secrets.token_hex(4)}" if postgres else None
    if postgres:
        directory = Path(tempfile.mkdtemp(prefix="pli-bench-imap-pg-"))
    asyncio.run(build_mailbox(url, directory, args.messages, schema))
    pki = session_pki()
    command = [
        sys.executable,
        __file__,
        "--serve",
        "--dir",
        str(directory),
        "--url",
        url,
        "--certificate",
        str(pki.server.certificate_path),
        "--key",
        str(pki.server.key_path),
    ]
    if schema:
        command += ["--schema", schema]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        port = json.loads(server.stdout.readline())["port"]
        backend = "PostgreSQL" if postgres else "SQLite"
        print(
            f"IMAP benchmark: {args.messages} messages, {backend}, implicit TLS on 127.0.0.1, "
            f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}"
        )
        cold = first_fetch(port)
        print(
            f"first metadata FETCH of the server's life (cold render cache): {cold * 1000:.0f} ms"
        )
        results: dict[int, dict[str, list[float]]] = {}
        for sessions in args.sessions:
            results[sessions] = run_sessions(port, sessions, args.repeat, args.messages)
        names = [name for name, _ in operations(args.messages, random.Random(0))]
        header = f"{'operation (median ms)':<58}" + "".join(
            f"{f'{n} session' + ('s' if n > 1 else ''):>12}" for n in args.sessions
        )
        print(header)
        for name in names:
            row = f"{name:<58}"
            for sessions in args.sessions:
                row += f"{statistics.median(results[sessions][name]) * 1000:>12.1f}"
            print(row)
        print(f"(load average at the end: {os.getloadavg()[0]:.1f})")
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
        if schema:
            asyncio.run(drop_schema(url, schema))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=10000, help="messages in the mailbox")
    parser.add_argument("--repeat", type=int, default=5, help="rounds per session (bound)")
    parser.add_argument("--sessions", type=int, nargs="+", default=[1, 4], help="concurrencies")
    parser.add_argument("--url", default="", help="database URL (default: SQLite in --dir)")
    parser.add_argument("--dir", default="", help="where the mailbox is built and kept")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--schema", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--certificate", default="", help=argparse.SUPPRESS)
    parser.add_argument("--key", default="", help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.serve:
        asyncio.run(
            serve(
                arguments.url,
                Path(arguments.dir),
                arguments.schema,
                arguments.certificate,
                arguments.key,
            )
        )
    else:
        main(arguments)
