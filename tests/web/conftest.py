"""Fixtures of the webmail and notification tests: a store with the demo accounts, a clock the
test moves; the webmail on the real submission pipeline (``stack``) and a client logged in as
the demo's parent (``client``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from plitest.store import demo, open_test_store
from plitest.web import FakeClock, WebStack, login, webmail_stack

from pli.mailbox.store import Store
from pli.mailbox.store.demo import PARENT_INS, DemoAccounts


@pytest.fixture
async def store(database_url: str, tmp_path: Path) -> AsyncIterator[Store]:
    async with open_test_store(database_url, tmp_path) as opened:
        yield opened


@pytest.fixture
async def accounts(store: Store) -> DemoAccounts:
    return await demo(store)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def stack(tmp_path: Path, database_url: str) -> AsyncIterator[WebStack]:
    async with webmail_stack(tmp_path, database_url) as opened:
        yield opened


@pytest.fixture
async def client(stack: WebStack) -> AsyncIterator[httpx.AsyncClient]:
    async with stack.client() as opened:
        await login(opened, stack.outbox, PARENT_INS)
        yield opened
