"""Fixtures of the SMTP tests: a running stack (plitest.smtp) per test."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from plitest.smtp import SmtpStack, smtp_stack


@pytest.fixture
async def stack(tmp_path: Path, database_url: str) -> AsyncIterator[SmtpStack]:
    async with smtp_stack(tmp_path, database_url) as running:
        yield running
