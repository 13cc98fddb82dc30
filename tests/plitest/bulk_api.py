"""Test helpers for the bulk HTTP API (tests/bulk_api): two clients with their tokens, the admin
application served by uvicorn on a real socket on 127.0.0.1."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import httpx

from pli.config.schema import BulkClient, Listener, Settings
from pli.mailgateway.admin import create_admin_app
from pli.mailgateway.asgi import AsgiService
from pli.mailgateway.bulk.service import BulkService
from pli.mailgateway.services import Runtime
from plitest.bulk import SENDER
from plitest.smtp import SmtpStack

TOKEN = "si-hopital-0123456789abcdef0123456789abcdef"
OTHER_TOKEN = "autre-si-0123456789abcdef0123456789abcdef"
OTHER_MAILBOX = "secretariat.cardiologie@hopital-demo.mssante.fr"
#: Small enough that the tests can exceed it cheaply.
MAX_REQUEST = 256 * 1024


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


CLIENTS = [
    BulkClient(name="si-hopital", token_sha256=digest(TOKEN), mailboxes=[SENDER]),
    BulkClient(name="autre-si", token_sha256=digest(OTHER_TOKEN), mailboxes=[OTHER_MAILBOX]),
]


def with_clients(settings: Settings, clients: list[BulkClient]) -> Settings:
    return settings.model_copy(
        update={"bulk": settings.bulk.model_copy(update={"clients": clients})}
    )


@dataclass
class Served:
    stack: SmtpStack
    runtime: Runtime
    bulk: BulkService
    base_url: str
    incoming: Path

    def client(self, token: str | None = TOKEN) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.AsyncClient(base_url=self.base_url, headers=headers, timeout=60)


async def serve_admin(runtime: Runtime) -> AsgiService:
    service = AsgiService("admin", Listener(protocol="admin", port=0), create_admin_app(runtime))
    await service.start()
    return service
