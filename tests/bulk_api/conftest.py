"""Fixtures of the bulk HTTP API tests: the admin application (health, metrics, /bulk) served by
uvicorn on a real socket on 127.0.0.1, over a running gateway (plitest.smtp) and the bulk
runner of ``pli serve`` (its loop not started: tests run it with ``run_once``, no waiting)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from plitest.bulk_api import CLIENTS, MAX_REQUEST, Served, serve_admin, with_clients
from plitest.smtp import SmtpStack, smtp_stack

from pli.mailgateway.bulk.check import BulkContext
from pli.mailgateway.bulk.service import BulkService
from pli.mailgateway.services import Runtime


@pytest.fixture
async def stack(tmp_path: Path, database_url: str) -> AsyncIterator[SmtpStack]:
    bulk = {"rate": 1000, "burst": 100, "batch_size": 20, "api_max_request_size": MAX_REQUEST}
    async with smtp_stack(
        tmp_path / "server", database_url, listeners=(), sections={"bulk": bulk}
    ) as running:
        yield running


@pytest.fixture
async def served(stack: SmtpStack) -> AsyncIterator[Served]:
    settings = with_clients(stack.settings, CLIENTS)
    runtime = Runtime(settings=settings, store=stack.store, gateway=stack.gateway)
    bulk = BulkService(BulkContext.from_gateway(stack.gateway))
    runtime.bulk = bulk  # type: ignore[attr-defined]  # as bulk_services does
    admin = await serve_admin(runtime)
    host, port = admin.addresses()[0]
    try:
        yield Served(
            stack,
            runtime,
            bulk,
            f"http://{host}:{port}",
            settings.server.data_dir / settings.bulk.directory / "incoming",
        )
    finally:
        await admin.stop(5)
