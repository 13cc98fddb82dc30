"""Unhandled exceptions in asyncio tasks, recorded so that the test that caused them fails."""

from __future__ import annotations

import asyncio
from typing import Any

errors: list[dict[str, Any]] = []


def _record(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    errors.append(context)
    loop.default_exception_handler(context)


def new_strict_loop() -> asyncio.AbstractEventLoop:
    loop = asyncio.new_event_loop()
    loop.set_exception_handler(_record)
    return loop


def take_failure() -> str | None:
    """A description of what was recorded since the last call (None: nothing), then forget it."""
    if not errors:
        return None
    described = "; ".join(f"{c.get('message')}: {c.get('exception')!r}" for c in errors)
    errors.clear()
    return "unhandled exception in an asyncio task: " + described
