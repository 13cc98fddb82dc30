"""IHE_XDM.zip reading speed, and what refusing hostile packages costs.

    .venv/bin/python bench/xdm_read.py [--repeat 5]

Prints the best of --repeat runs, with the peak memory of one read (tracemalloc), for: a typical
package (one CDA lettre de liaison and one PDF, ~60 KB), a large one (10 CDA documents of
~2 MB each), a package at the size limit of a message, and the refusal of a zip bomb, of a
billion-laughs METADATA.XML and of a zip whose directory is too large.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from plitest.xdm import (
    BILLION_LAUGHS,
    XdmDoc,
    build_xdm,
    cda_document,
    zip_bomb,
    zip_entries,
)

from pli.mailbox.xdm import XdmPackage, read_xdm
from pli.mailbox.xdm.limits import MAX_TOTAL_UNCOMPRESSED

MiB = 1024 * 1024


def noise(size: int) -> bytes:
    return b"".join(hashlib.sha256(b"%d" % i).digest() for i in range(size // 32 + 1))[:size]


def pdf(size: int) -> bytes:
    return b"%PDF-1.4\n" + noise(size) + b"\n%%EOF\n"


def cda_with_embedded_pdf(size: int) -> bytes:
    """A CDA whose body is a base64 PDF (nonXMLBody), as French "CDA N1" documents are."""
    return cda_document(code="11490-0", body=base64.b64encode(pdf(size)).decode())


def packages() -> list[tuple[str, bytes]]:
    typical = build_xdm(
        [
            XdmDoc(cda_document(padding=20_000)),
            XdmDoc(
                pdf(40_000),
                name="DOC0002.PDF",
                mime_type="application/pdf",
                entry_id="Document02",
                type_code="11502-2",
            ),
        ]
    )
    large = build_xdm(
        [
            XdmDoc(
                cda_with_embedded_pdf(2 * MiB),
                name=f"DOC{i:04d}.XML",
                entry_id=f"Document{i:02d}",
            )
            for i in range(10)
        ]
    )
    limit = build_xdm([XdmDoc(pdf(24 * MiB), name="SCAN.PDF", mime_type="application/pdf")])
    return [
        ("typical (CDA + PDF)", typical),
        ("large (10 CDA x 2 MB)", large),
        ("limit (24 MB PDF)", limit),
        ("bomb refused", zip_bomb(MAX_TOTAL_UNCOMPRESSED + MiB)),
        ("billion laughs refused", build_xdm([], metadata=BILLION_LAUGHS)),
        ("huge directory refused", zip_entries([(f"F{i}", b"") for i in range(5000)])),
    ]


def best_of(repeat: int, action: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        best = min(best, time.perf_counter() - started)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    for name, data in packages():
        seconds = best_of(args.repeat, lambda data=data: read_xdm(data))
        tracemalloc.start()
        result = read_xdm(data)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        outcome = (
            f"{len(result.documents)} documents"
            if isinstance(result, XdmPackage)
            else result.reason.value
        )
        print(
            f"{name:24} {len(data) / 1e6:7.2f} MB  {seconds * 1000:8.2f} ms  "
            f"{len(data) / 1e6 / seconds:8.1f} MB/s  peak {peak / 1e6:6.1f} MB  {outcome}"
        )


if __name__ == "__main__":
    main()
