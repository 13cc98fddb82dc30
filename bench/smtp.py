"""SMTP benchmark: messages accepted per second by pli's inbound MTA, delivered into mailboxes
(durable: fsync on, SQLite synchronous=FULL), against Postfix on the same machine in the same run.

    .venv/bin/python bench/smtp.py                            # all cases, SQLite
    .venv/bin/python bench/smtp.py --messages 1000 --seconds 20 --no-postfix
    .venv/bin/python bench/smtp.py --url postgresql://postgres@127.0.0.1:5432/test

Load: ``--connections`` (20) clients on 127.0.0.1, each does STARTTLS once (MSSanté profile,
with our operator client certificate) then sends messages back to back on its connection
(MAIL, RCPT, DATA pipelined), to ``--mailboxes`` (50) citizen mailboxes, until ``--messages``
or ``--seconds`` is reached. Messages are 4 KB and 100 KB. The figure is messages acknowledged
per second, and the p50/p99 latency of the reply to the end of DATA (a 250 from pli means the
message is in the mailbox and committed; from Postfix, that it is in Postfix's queue, so the
Postfix cases also give the rate into its virtual maildirs: queued messages over the time until
the last one is filed, with no latency since no reply says so).

Cases: pli with group commit (the default), pli without it (one transaction per message), pli
with the listener in 2 processes, pli without the citizens' new-mail notifier
(its write transactions share SQLite's single writer with the deliveries), and Postfix
accepting into virtual mailboxes (needs root, to start Postfix's master). The load generator
runs in this process (asyncio), pli and Postfix in their own processes; all share the machine's
cores. Prints a table; its last columns are the CPU the machine spent per message outside the load
generator ("cpu ms": the server's, so long as nothing else runs) and the load generator's own
("gen ms"), in milliseconds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from plitest.pki import session_pki
from plitest.process import PliProcess
from plitest.store import sized_message

from pli.config.loading import load_settings
from pli.mailbox.store import Store
from pli.mailbox.store.demo import DEMO_DOMAIN
from pli.policy.ins import make_ins

SENDER = f"dr.martin@{DEMO_DOMAIN}"
CITIZEN_DOMAIN = "patient.mssante.fr"
POSTFIX_DOMAIN = "clinique-demo.mssante.fr"
#: How long the Postfix case waits for its queue to reach the mailboxes (seconds).
DELIVERY_WAIT = 120.0


@dataclass
class Result:
    name: str
    size: int
    sent: int = 0
    failed: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    #: The 1-minute load average at the end of the case (other work on the machine shows here).
    load: float = 0.0
    #: CPU seconds the machine spent during the case outside this load generator (the server
    #: under test, and whatever else runs: see ``load``), and the load generator's own.
    server_cpu: float = 0.0
    client_cpu: float = 0.0

    def ms_per_message(self, cpu_seconds: float) -> str:
        return f"{cpu_seconds * 1000 / self.sent:.2f}" if self.sent and cpu_seconds else "-"

    @property
    def rate(self) -> float:
        return self.sent / self.seconds if self.seconds else 0.0

    def percentile(self, fraction: float) -> float:
        if not self.latencies:
            return 0.0
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] * 1000


async def _reply(reader: asyncio.StreamReader) -> int:
    while True:
        line = await reader.readline()
        if not line:
            raise ConnectionError("closed")
        if line[3:4] != b"-":
            return int(line[:3])


def _payload(size: int, recipient: str) -> bytes:
    raw = sized_message(size, sender=SENDER, to=[recipient], subject="Bench")
    return raw.replace(b"\r\n.", b"\r\n..") + b".\r\n"


async def _connection(
    address: tuple[str, int],
    context: ssl.SSLContext,
    jobs: Iterator[tuple[str, bytes]],
    result: Result,
    deadline: float,
) -> None:
    reader, writer = await asyncio.open_connection(*address)
    try:
        await _reply(reader)
        writer.write(b"EHLO bench.test\r\n")
        await _reply(reader)
        writer.write(b"STARTTLS\r\n")
        assert await _reply(reader) == 220
        await writer.start_tls(context)
        writer.write(b"EHLO bench.test\r\n")
        await _reply(reader)
        for recipient, payload in jobs:
            if time.perf_counter() > deadline:
                break
            writer.write(f"MAIL FROM:<{SENDER}>\r\nRCPT TO:<{recipient}>\r\nDATA\r\n".encode())
            codes = [await _reply(reader) for _ in range(3)]
            if codes[2] != 354:
                result.failed += 1
                writer.write(b"RSET\r\n")
                await _reply(reader)
                continue
            started = time.perf_counter()
            writer.write(payload)
            code = await _reply(reader)
            if code == 250:
                result.sent += 1
                result.latencies.append(time.perf_counter() - started)
            else:
                result.failed += 1
        writer.write(b"QUIT\r\n")
        await _reply(reader)
    finally:
        writer.close()


def _machine_busy_seconds() -> float:
    """CPU seconds every core has spent not idle since boot (/proc/stat: user, nice, system,
    irq, softirq, steal; idle and iowait left out)."""
    with open("/proc/stat") as stat:
        fields = stat.readline().split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def _own_cpu_seconds() -> float:
    return time.process_time()


async def load(
    name: str,
    address: tuple[str, int],
    context: ssl.SSLContext,
    recipients: list[str],
    size: int,
    *,
    messages: int,
    seconds: float,
    connections: int,
) -> Result:
    payloads = {recipient: _payload(size, recipient) for recipient in recipients}
    result = Result(name, size)

    def jobs() -> Iterator[tuple[str, bytes]]:
        for index in range(messages):
            recipient = recipients[index % len(recipients)]
            yield recipient, payloads[recipient]

    shared = jobs()  # one iterator: the connections share the budget
    busy, own = _machine_busy_seconds(), _own_cpu_seconds()
    start = time.perf_counter()
    await asyncio.gather(
        *(
            _connection(address, context, shared, result, start + seconds)
            for _ in range(connections)
        )
    )
    result.seconds = time.perf_counter() - start
    result.client_cpu = _own_cpu_seconds() - own
    result.server_cpu = _machine_busy_seconds() - busy - result.client_cpu
    result.load = os.getloadavg()[0]
    return result


# -- pli --------------------------------------------------------------------------------------


def init_pli(directory: Path, url: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "pli.mailgateway", "init", "--dir", str(directory), "--demo"],
        check=True,
        capture_output=True,
        env={**os.environ, **({"PLI_DATABASE__URL": url} if url else {})},
    )


async def prepare_pli(directory: Path, url: str, mailboxes: int) -> list[str]:
    await asyncio.to_thread(init_pli, directory, url)
    if url:
        with (directory / "pli.toml").open("a") as config:
            config.write(f'\n[database]\nurl = "{url}"\n')
    settings = load_settings(directory / "pli.toml", environ={})
    addresses = [
        f"{make_ins(f'1{index % 2 + 80:02d}0175{index:06d}')}@{CITIZEN_DOMAIN}"
        for index in range(mailboxes)
    ]

    store = await Store.open(settings)
    try:
        for address in addresses:
            if await store.accounts.find(address) is None:
                await store.accounts.create_citizen(address.split("@")[0], CITIZEN_DOMAIN)
    finally:
        await store.close()
    return [address.lower() for address in addresses]


def client_context(directory: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=directory / "pki/trust/anchors.pem")
    context.load_verify_locations(directory / "pki/trust/intermediates.pem")
    context.check_hostname = False
    context.load_cert_chain(
        directory / "pki/server/operator.crt", directory / "pki/server/operator.key"
    )
    return context


def start_pli(directory: Path, **env: str) -> tuple[PliProcess, tuple[str, int]]:
    settings = load_settings(directory / "pli.toml", environ={})
    ports = {f"PLI_LISTENERS__{name.upper()}__PORT": "0" for name in settings.listeners}
    process = PliProcess(["serve", "-c", str(directory / "pli.toml")], env={**ports, **env})
    try:
        where = process.listening()
    except BaseException:
        process.stop()
        raise
    return process, where["mta"]


async def pli_case(
    name: str,
    directory: Path,
    recipients: list[str],
    size: int,
    args: argparse.Namespace,
    **env: str,
) -> Result:
    process, address = start_pli(directory, **env)
    try:
        return await load(
            name,
            address,
            client_context(directory),
            recipients,
            size,
            messages=args.messages,
            seconds=args.seconds,
            connections=args.connections,
        )
    finally:
        process.signal()
        process.wait(60)
        process.stop()


# -- Postfix ----------------------------------------------------------------------------------


async def postfix_cases(sizes: list[int], args: argparse.Namespace) -> list[Result]:
    from plitest.postfix import postfix_operator

    pki = session_pki()
    users = [f"patient{index}" for index in range(args.mailboxes)]
    recipients = [f"{user}@{POSTFIX_DOMAIN}" for user in users]
    results = []
    with postfix_operator(
        pki,
        domain=POSTFIX_DOMAIN,
        client=pki.operator,
        server=pki.issue_server(f"mx.{POSTFIX_DOMAIN}"),
        relay_domains=[],
        pli_port=25,
        users=users,
    ) as postfix:
        context = pki.client_context()
        for size in sizes:
            before = _delivered(postfix.root / "mail")
            queued = await load(
                "postfix (queued)",
                ("127.0.0.1", postfix.port),
                context,
                recipients,
                size,
                messages=args.messages,
                seconds=args.seconds,
                connections=args.connections,
            )
            results.append(queued)
            results.append(await _until_delivered(postfix.root / "mail", before, queued))
    return results


def _delivered(mail: Path) -> int:
    """Messages in the virtual maildirs (``new/``: Postfix's virtual(8) fsyncs each file before
    it renames it there)."""
    return sum(len(os.listdir(user / "new")) for user in mail.iterdir() if (user / "new").is_dir())


async def _until_delivered(mail: Path, before: int, queued: Result) -> Result:
    """Postfix answers 250 once the message is in its queue; virtual(8) files it later. The
    rate into the mailboxes, comparable with pli's (whose 250 means filed): messages queued by
    the case over the time from the case's start until the last of them is in a maildir
    (waiting at most ``DELIVERY_WAIT`` seconds more)."""
    result = Result("postfix (in mailboxes)", queued.size)
    waited = time.perf_counter()
    busy, own = _machine_busy_seconds(), _own_cpu_seconds()
    while _delivered(mail) - before < queued.sent:
        if time.perf_counter() - waited > DELIVERY_WAIT:
            break
        await asyncio.sleep(0.05)
    result.sent = min(queued.sent, _delivered(mail) - before)
    result.failed = queued.sent - result.sent
    result.seconds = queued.seconds + time.perf_counter() - waited
    result.client_cpu = queued.client_cpu + _own_cpu_seconds() - own
    result.server_cpu = (
        queued.server_cpu + _machine_busy_seconds() - busy - (_own_cpu_seconds() - own)
    )
    result.load = os.getloadavg()[0]
    return result


# -- main -------------------------------------------------------------------------------------


def _ms(result: Result, fraction: float) -> str:
    return f"{result.percentile(fraction):.1f}" if result.latencies else "-"


def table(results: list[Result]) -> str:
    lines = [
        f"{'case':<34} {'size':>7} {'msgs':>6} {'fail':>5} {'msg/s':>8}"
        f" {'p50 ms':>8} {'p99 ms':>8} {'load':>5} {'cpu ms':>7} {'gen ms':>7}",
        "-" * 104,
    ]
    for r in results:
        lines.append(
            f"{r.name:<34} {r.size // 1024:>5}KB {r.sent:>6} {r.failed:>5} {r.rate:>8.1f} "
            f"{_ms(r, 0.5):>8} {_ms(r, 0.99):>8} {r.load:>5.1f} "
            f"{r.ms_per_message(r.server_cpu):>7} {r.ms_per_message(r.client_cpu):>7}"
        )
    return "\n".join(lines)


def ratios(results: list[Result], main_case: str) -> str:
    """pli's main case over Postfix into its mailboxes, per size: each round's pair (a case
    and the Postfix case that follows it in the run), then the median."""
    lines = []
    for size in sorted({r.size for r in results}):
        pairs: list[float] = []
        pending: Result | None = None
        for result in results:
            if result.size != size:
                continue
            if result.name == main_case:
                pending = result
            elif result.name == "postfix (in mailboxes)" and pending is not None and result.rate:
                pairs.append(pending.rate / result.rate)
                pending = None
        if pairs:
            shown = " ".join(f"{pair:.2f}" for pair in pairs)
            lines.append(
                f"pli / Postfix, {size // 1024} KB: {shown} (median {statistics.median(pairs):.2f})"
            )
    return "\n".join(lines)


async def main(args: argparse.Namespace) -> None:
    sizes = [int(size) for size in args.sizes.split(",")]
    results: list[Result] = []
    root = Path(tempfile.mkdtemp(prefix="pli-bench-smtp-"))
    try:
        directory = root / "pli"
        recipients = await prepare_pli(directory, args.url, args.mailboxes)
        main_case = "pli, group commit"
        more = dict(item.split("=", 1) for item in args.env)
        if args.processes > 1:
            main_case += f", {args.processes} processes"
            more["PLI_LISTENERS__MTA__PROCESSES"] = str(args.processes)
        postfix = not args.no_postfix and shutil.which("postfix") and os.geteuid() == 0
        for _ in range(args.rounds - 1):  # the earlier rounds: the main case and Postfix
            for size in sizes:
                results.append(await pli_case(main_case, directory, recipients, size, args, **more))
            if postfix:
                results += await postfix_cases(sizes, args)
        for size in sizes:
            results.append(await pli_case(main_case, directory, recipients, size, args, **more))
        if not args.quick:
            results.append(
                await pli_case(
                    "pli, one commit per message",
                    directory,
                    recipients,
                    sizes[0],
                    args,
                    PLI_SMTP__GROUP_COMMIT_WINDOW="0",
                    PLI_SMTP__GROUP_COMMIT_SIZE="1",
                )
            )
            results.append(
                await pli_case(
                    "pli, 2 processes",
                    directory,
                    recipients,
                    sizes[0],
                    args,
                    PLI_LISTENERS__MTA__PROCESSES="2",
                )
            )
            results.append(
                await pli_case(
                    "pli, citizen notifier off",
                    directory,
                    recipients,
                    sizes[0],
                    args,
                    PLI_NOTIFICATIONS__ENABLED="false",
                )
            )
        if postfix:
            results += await postfix_cases(sizes, args)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(
        f"{args.connections} connections, STARTTLS (TLS 1.2 ECDHE-RSA), {os.cpu_count()} CPUs, "
        f"{'PostgreSQL' if args.url else 'SQLite'}"
    )
    print(table(results))
    print(ratios(results, main_case))
    if args.json:
        print(json.dumps([r.__dict__ | {"rate": r.rate} for r in results], default=str))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=2000, help="messages per case at most")
    parser.add_argument("--seconds", type=float, default=30.0, help="time per case at most")
    parser.add_argument("--connections", type=int, default=20)
    parser.add_argument("--mailboxes", type=int, default=50)
    parser.add_argument("--sizes", default="4096,102400", help="message sizes (bytes)")
    parser.add_argument("--url", default="", help="PostgreSQL URL (default: SQLite)")
    parser.add_argument("--no-postfix", action="store_true")
    parser.add_argument("--quick", action="store_true", help="only pli with group commit")
    parser.add_argument(
        "--processes", type=int, default=1, help="SMTP listener processes of the main pli case"
    )
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="PLI_SECTION__KEY=VALUE",
        help="a setting for the main pli case (repeatable), e.g. PLI_NOTIFICATIONS__ENABLED=false",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="run the main pli case and Postfix this many times, alternately (this machine's "
        "speed varies by 20 %% and more from minute to minute: compare pairs, not runs)",
    )
    parser.add_argument("--json", action="store_true")
    asyncio.run(main(parser.parse_args()))
