"""Trust-space benchmark: what the checks of every inbound connection cost.

    .venv/bin/python bench/certs.py [--list ../shared/data/listeblanchemssante.xml]
                                    [--repeat 5] [--lookups 100000] [--verifications 300]
                                    [--handshakes 100]

Prints, best of --repeat runs:
- parsing ANS's whitelist (the 2025 file: 6,554 entries) and building its index;
- ``Whitelist.allows`` lookups per second, with a DN string and with a certificate name;
- ``TrustStore.verify`` of a client certificate per second (chain with cryptography's
  ``x509.verification``, EKU, CRL lookup of leaf and intermediate), and the same with OCSP
  answers cached;
- TLS 1.2 handshakes per second with the MSSanté profile and a client certificate (one
  process, loopback, both ends in Python).
"""

from __future__ import annotations

import argparse
import socket
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # plitest: the session's test PKI

from plitest.pki import session_pki  # noqa: E402

from pli.certs.whitelist import parse_whitelist  # noqa: E402

DEFAULT_LIST = ROOT.parent / "shared" / "data" / "listeblanchemssante.xml"


def best(repeat: int, run: Callable[[], int]) -> tuple[float, int]:
    """The fastest of ``repeat`` runs: (seconds, operations)."""
    results = []
    for _ in range(repeat):
        start = time.perf_counter()
        count = run()
        results.append((time.perf_counter() - start, count))
    return min(results)


def report(label: str, seconds: float, count: int) -> None:
    per_second = count / seconds if seconds else float("inf")
    print(f"{label:<58} {seconds * 1000 / count:9.3f} ms/op {per_second:12,.0f} op/s")


def bench_whitelist(path: Path, repeat: int, lookups: int) -> None:
    data = path.read_bytes()
    seconds, _ = best(repeat, lambda: len(parse_whitelist(data)) and 1)
    label = f"whitelist parse + index ({len(data):,} bytes)"
    print(f"{label:<58} {seconds * 1000:9.1f} ms")
    whitelist = parse_whitelist(data)
    dn = "CN=medimail-asip.mipih.fr,OU=318310021300028,O=GIP MIPIH,ST=Haute-Garonne (31),C=FR"
    domains = sorted({entry.domain for entry in whitelist.entries})

    def by_string() -> int:
        for i in range(lookups):
            whitelist.allows(dn, domains[i % len(domains)])
        return lookups

    report("whitelist.allows(DN string, domain)", *best(repeat, by_string))
    pki = session_pki()
    name = pki.issue_operator("medimail-asip.mipih.fr").certificate.subject

    def by_name() -> int:
        for i in range(lookups):
            whitelist.allows(name, domains[i % len(domains)])
        return lookups

    report("whitelist.allows(certificate name, domain)", *best(repeat, by_name))


def bench_verify(repeat: int, count: int) -> None:
    pki = session_pki()
    leaf = pki.issue_operator("mx.bench.fr", ocsp=True)
    crl_only = pki.trust_store()
    with_ocsp = pki.trust_store(ocsp=True)
    with_ocsp.verify(leaf.certificate, "client")  # warm the OCSP cache

    def verify(store: object) -> Callable[[], int]:
        def run() -> int:
            for _ in range(count):
                store.verify(leaf.der, "client")  # type: ignore[attr-defined]
            return count

        return run

    report("TrustStore.verify (chain, EKU, CRLs)", *best(repeat, verify(crl_only)))
    report("TrustStore.verify (chain, EKU, CRL + cached OCSP)", *best(repeat, verify(with_ocsp)))


def bench_handshakes(repeat: int, count: int) -> None:
    pki = session_pki()
    server_context = pki.server_context(client_cert="required")
    client_context = pki.client_context()
    listener = socket.create_server(("127.0.0.1", 0))
    address = listener.getsockname()
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            connection, _ = listener.accept()
            try:
                with server_context.wrap_socket(connection, server_side=True) as tls:
                    tls.recv(1)
            except OSError:
                pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()

    def run() -> int:
        for _ in range(count):
            with (
                socket.create_connection(address) as raw,
                client_context.wrap_socket(raw, server_hostname="localhost") as tls,
            ):
                tls.sendall(b"x")
        return count

    report("TLS 1.2 handshake, mutual (ECDHE-RSA-AES256-GCM, RSA 2048)", *best(repeat, run))
    stop.set()
    socket.create_connection(address).close()
    thread.join(timeout=5)
    listener.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--list", type=Path, default=DEFAULT_LIST)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--lookups", type=int, default=100_000)
    parser.add_argument("--verifications", type=int, default=300)
    parser.add_argument("--handshakes", type=int, default=100)
    arguments = parser.parse_args()
    bench_whitelist(arguments.list, arguments.repeat, arguments.lookups)
    bench_verify(arguments.repeat, arguments.verifications)
    bench_handshakes(arguments.repeat, arguments.handshakes)


if __name__ == "__main__":
    main()
