"""Test helpers for the filing client: settings pointing a worker at a document store, a
citizen with a message carrying attachments, an IHE_XDM.zip message, and waiting for filings
to settle (event-driven: the worker's progress, never a fixed sleep).

    async with open_test_store(database_url, tmp_path) as store:
        citizen, folder, uid = await citizen_message(store, attachments=[("cr.pdf", PDF)])
        worker = FilingWorker(store, filing_settings(base_url))
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from pli.config.schema import DocstoreSection, FilingSection, Listener, Settings
from pli.docstore.api import create_docstore_app
from pli.docstore.config import DocstoreConfig
from pli.mailbox.filing import FilingStatus, FilingWorker, list_filings
from pli.mailbox.store import Account, DeliveryTarget, Store
from pli.mailgateway.asgi import AsgiService
from plitest.docstore import CITIZEN, TEST_TOKEN, opened_store
from plitest.process import PliProcess
from plitest.store import build_message
from plitest.xdm import XdmDoc, build_xdm, cda_document

CITIZEN_DOMAIN = "patient.mssante.fr"
SENDER = "dr.martin@hopital-demo.mssante.fr"
PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << >>\n%%EOF\n"


def filing_settings(base_url: str, **filing: Any) -> Settings:
    """Settings whose worker files into the store at ``base_url`` (fast retries for tests)."""
    values: dict[str, Any] = {
        "retry_schedule": [0.05],
        "poll_interval": 0.2,
        "scan_interval": 0.5,
        "timeout": 10.0,
        "lease": 30.0,
        **filing,
    }
    return Settings(
        docstore=DocstoreSection(url=base_url, token=TEST_TOKEN),
        filing=FilingSection.model_validate(values),
    )


async def citizen(store: Store, ins: str = CITIZEN) -> Account:
    found = await store.accounts.find(f"{ins}@{CITIZEN_DOMAIN}")
    return found or await store.accounts.create_citizen(ins, CITIZEN_DOMAIN)


async def deliver(store: Store, account: Account, raw: bytes) -> tuple[int, int]:
    """(folder id, uid) of ``raw`` delivered to the account's INBOX."""
    delivered = await store.messages.deliver(raw, [DeliveryTarget(account.id)])
    return delivered[0].folder_id, delivered[0].uid


async def citizen_message(
    store: Store,
    *,
    ins: str = CITIZEN,
    attachments: Sequence[tuple[str, str, bytes]] = (("compte-rendu.pdf", "application/pdf", PDF),),
    **message: Any,
) -> tuple[Account, int, int]:
    """A citizen and a message delivered to their INBOX: (account, folder id, uid). The first
    attachment is part "2" (the text body is part "1")."""
    account = await citizen(store, ins)
    raw = build_message(
        sender=f"Dr Claire Martin <{SENDER}>",
        to=[account.address],
        attachments=attachments,
        **message,
    )
    folder_id, uid = await deliver(store, account, raw)
    return account, folder_id, uid


def xdm_message(
    ins: str = CITIZEN,
    docs: Sequence[XdmDoc] | None = None,
    *,
    package: bytes | None = None,
    **message: Any,
) -> bytes:
    """A message carrying an IHE_XDM.zip for ``ins`` (one CDA letter by default; ``package``:
    these bytes instead), with its X-MSS-CODECDA and X-MSS-INS headers."""
    docs = list(docs) if docs is not None else [XdmDoc(cda_document(ins))]
    if package is None:
        package = build_xdm(docs, patient_ins=ins)
    codes = ",".join(doc.type_code for doc in docs if doc.mime_type == "text/xml")
    headers = {"X-MSS-CODECDA": codes, "X-MSS-INS": "O", **message.pop("headers", {})}
    return build_message(
        sender=f"Dr Claire Martin <{SENDER}>",
        to=[f"{ins}@{CITIZEN_DOMAIN}"],
        subject="XDM/1.0/DDM+Lettre de liaison DUPONT MARIE 19460203",
        headers=headers,
        attachments=[("IHE_XDM.zip", "application/zip", package)],
        **message,
    )


class FakeClock:
    """A clock tests move by hand (leases, retry times)."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


async def eventually(
    check: Callable[[], Awaitable[bool]],
    workers: Sequence[FilingWorker],
    within: float = 30.0,
) -> None:
    """Return once ``check()`` holds, re-checking each time a worker settles an attempt (and at
    least every half second, for work done by other processes)."""
    deadline = time.monotonic() + within
    while not await check():
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError("the filings did not settle in time")
        waits = [asyncio.ensure_future(w.wait_progress(min(0.5, remaining))) for w in workers]
        if not waits:
            waits = [asyncio.ensure_future(asyncio.sleep(min(0.5, remaining)))]
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        for pending in waits:
            pending.cancel()


async def all_settled(store: Store) -> bool:
    return not await list_filings(store, status=FilingStatus.PENDING, limit=1)


def free_port() -> int:
    """A TCP port nothing listens on now (to start a store there later)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.asynccontextmanager
async def serving(app: Any, port: int = 0) -> AsyncIterator[str]:
    """Serve an ASGI app over real HTTP on 127.0.0.1 (``port``, 0: a free one); yields its URL."""
    service = AsgiService("test-http", Listener(protocol="docstore", port=port), app)
    await service.start()
    try:
        host, bound = service.addresses()[0]
        yield f"http://{host}:{bound}"
    finally:
        await service.stop(5.0)


@contextlib.asynccontextmanager
async def docstore_on(config: DocstoreConfig, port: int) -> AsyncIterator[str]:
    """The reference document store served on a given port (a store that "comes up")."""
    async with opened_store(config) as store, serving(create_docstore_app(store), port) as url:
        yield url


@dataclass
class Recorded:
    """One request the scripted store received."""

    path: str
    headers: dict[str, str]
    fields: dict[str, str]
    content: bytes


@dataclass
class ScriptedStore:
    """An HTTP service answering filings from a script of (status, headers, JSON body), the
    last one repeating, and recording what it was sent: for answers the reference store does not
    give on demand (503 with Retry-After, 429, 500, a 401)."""

    script: list[tuple[int, dict[str, str], Any]]
    received: list[Recorded] = field(default_factory=list)

    def app(self) -> Any:
        from starlette.applications import Starlette
        from starlette.requests import Request
        from starlette.responses import JSONResponse
        from starlette.routing import Route

        async def file(request: Request) -> JSONResponse:
            form = await request.form()
            upload = form.get("content")
            content = (
                await upload.read() if upload is not None and not isinstance(upload, str) else b""
            )
            fields = {k: v for k, v in form.items() if isinstance(v, str)}
            self.received.append(Recorded(request.url.path, dict(request.headers), fields, content))
            status, headers, body = self.script[min(len(self.received), len(self.script)) - 1]
            return JSONResponse(body, status_code=status, headers=headers)

        return Starlette(routes=[Route("/v1/citizens/{ins}/documents", file, methods=["POST"])])


class StoreProcess:
    """The reference document store as a real process (`pli docstore serve`) on a fixed port,
    so that it can be killed and started again where the worker expects it."""

    def __init__(self, config: Path, port: int) -> None:
        self.config = config
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.process: PliProcess | None = None

    async def start(self) -> None:
        env = {"PLI_LISTENERS__DOCSTORE__PORT": str(self.port), "PLI_FILING__ENABLED": "false"}
        self.process = PliProcess(["docstore", "serve", "-c", str(self.config)], env=env)
        where = await asyncio.to_thread(self.process.listening)
        assert where["docstore"][1] == self.port, self.process.output

    async def kill(self) -> None:
        assert self.process is not None
        self.process.signal(signal.SIGKILL)
        await asyncio.to_thread(self.process.wait)

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()


class GatedUpload(httpx.AsyncByteStream):
    """A request body sent in 16 KiB pieces that stops after the first one until ``release``."""

    PIECE = 16 * 1024

    def __init__(self, inner: Any, half_sent: asyncio.Event, release: asyncio.Event) -> None:
        self.inner = inner
        self.half_sent = half_sent
        self.release = release

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self.inner:
            for start in range(0, len(chunk), self.PIECE):
                yield chunk[start : start + self.PIECE]
                if not self.half_sent.is_set():
                    self.half_sent.set()
                    await self.release.wait()


class Interrupting(httpx.AsyncBaseTransport):
    """The worker's transport, with two accidents on chosen POSTs (counted from 1): one upload
    held half sent until ``release``, and one answer read and then lost (``on_answer`` runs
    first: the test kills the store there)."""

    def __init__(self, hold: int = 0, lose_answer: int = 0) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.hold, self.lose_answer = hold, lose_answer
        self.posts = 0
        self.half_sent = asyncio.Event()
        self.release = asyncio.Event()
        self.answer_lost = asyncio.Event()
        self.lost_status = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            self.posts += 1
            number = self.posts
            if number == self.hold:
                request = httpx.Request(
                    request.method,
                    request.url,
                    headers=request.headers,
                    stream=GatedUpload(request.stream, self.half_sent, self.release),
                )
            if number == self.lose_answer:
                response = await self.inner.handle_async_request(request)
                await response.aread()
                self.lost_status = response.status_code
                self.answer_lost.set()
                raise httpx.ReadError("the answer was lost", request=request)
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


_SERVE_CONFIG = """\
[server]
data_dir = "."
[docstore]
token = "{token}"
url = "{url}"
[filing]
poll_interval = 0.2
scan_interval = 0.2
retry_schedule = [0.2]
{filing}
[listeners.admin]
port = 0
[listeners.docstore]
{docstore}
[listeners.mta]
enabled = false
[listeners.submission]
enabled = false
[listeners.submissions]
enabled = false
[listeners.imap]
enabled = false
[listeners.imaps]
enabled = false
[notifications]
enabled = false
[whitelist]
refresh_interval = 0
"""


def write_serve_config(
    path: Path, *, docstore_url: str, serve_docstore: bool, filing: str = ""
) -> Path:
    """A pli.toml for `pli serve` running the filing worker (and, with ``serve_docstore``, the
    document store on ``docstore_url``'s port), every other listener and job off, its mail
    store the SQLite file of the directory. ``filing``: more TOML lines under [filing]."""
    port = docstore_url.rsplit(":", 1)[-1]
    docstore = f"port = {port}" if serve_docstore else "enabled = false"
    path.parent.mkdir(parents=True, exist_ok=True)
    text = _SERVE_CONFIG.format(
        token=TEST_TOKEN, url=docstore_url, filing=filing, docstore=docstore
    )
    path.write_text(text, encoding="utf-8")
    return path
