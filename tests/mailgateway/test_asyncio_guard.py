"""The suite's guard: an exception nobody retrieves in an asyncio task fails the test."""

from __future__ import annotations

import asyncio
import gc

from plitest import loop_guard


async def test_an_unhandled_task_exception_is_recorded_and_reported() -> None:
    async def boom() -> None:
        raise RuntimeError("server task died")

    task = asyncio.create_task(boom())
    await asyncio.sleep(0)
    del task
    gc.collect()
    failure = loop_guard.take_failure()  # taken here, so this test itself passes
    assert failure is not None
    assert "server task died" in failure
    assert loop_guard.take_failure() is None
