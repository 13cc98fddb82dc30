"""Fixtures of the bulk tests: a running gateway (plitest.smtp; no SMTP listener: bulk submits
through the pipeline) and the bulk context built on it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from plitest.smtp import SmtpStack, smtp_stack

from pli.mailgateway.bulk.check import BulkContext


@pytest.fixture
async def stack(tmp_path: Path, database_url: str) -> AsyncIterator[SmtpStack]:
    async with smtp_stack(
        tmp_path / "server",
        database_url,
        listeners=(),
        sections={"bulk": {"rate": 1000, "burst": 100, "batch_size": 7, "concurrency": 4}},
    ) as running:
        yield running


@pytest.fixture
def context(stack: SmtpStack) -> BulkContext:
    return BulkContext.from_gateway(stack.gateway)
