"""Test helpers for the mail store: a ready store on SQLite or PostgreSQL, demo accounts, and a
message builder. Other areas' tests use them too::

    from plitest.store import open_test_store, build_message

    async with open_test_store(database_url, tmp_path) as store:
        account = await store.accounts.create("a@x.mssante.fr", AccountKind.PER)

On PostgreSQL (``database_url`` from ``PLI_TEST_DATABASE_URL``) each store lives in a fresh
schema, dropped at the end, so tests never see each other's rows.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from typing import Any

from pli.mailbox.store import Store
from pli.mailbox.store.demo import DemoAccounts, create_demo
from pli.mailbox.store.service import StoreOptions


def is_postgresql(database_url: str) -> bool:
    return database_url.startswith(("postgresql", "postgres:"))


async def drop_schema(database_url: str, schema: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(database_url.replace("postgresql+asyncpg", "postgresql"))
    try:
        await connection.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await connection.close()


@contextlib.asynccontextmanager
async def open_test_store(
    database_url: str,
    tmp_path: Path,
    *,
    options: StoreOptions | None = None,
    schema: str | None = None,
    fsync: bool = False,
    keep_schema: bool = False,
) -> AsyncIterator[Store]:
    """A migrated store (messages under ``tmp_path/messages``), closed and cleaned at exit."""
    postgres = is_postgresql(database_url)
    if postgres and schema is None:
        schema = f"t_{secrets.token_hex(6)}"
    store = await Store.open_url(
        database_url,
        tmp_path / "messages",
        schema=schema if postgres else None,
        options=options,
        fsync=fsync,
        busy_timeout=30.0,
    )
    try:
        yield store
    finally:
        await store.close()
        if postgres and schema and not keep_schema:
            await drop_schema(database_url, schema)


async def demo(store: Store) -> DemoAccounts:
    """The demo accounts of ``pli init --demo`` (doctor, ORG secretariat and its member, APP
    no-reply, a parent and a child citizen with the parent as guardian)."""
    return await create_demo(store)


def build_message(
    *,
    sender: str = "Dr Claire Martin <dr.martin@hopital-demo.mssante.fr>",
    to: Sequence[str] = ("180017512345660@patient.mssante.fr",),
    subject: str = "Bonjour",
    body: str = "Bonjour,\nceci est un test.\n",
    message_id: str | None = None,
    in_reply_to: str | None = None,
    date: datetime | None = None,
    headers: dict[str, str] | None = None,
    attachments: Sequence[tuple[str, str, bytes]] = (),
) -> bytes:
    """A well-formed message (CRLF line ends); ``attachments`` are (filename, type, bytes)."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = ", ".join(to)
    message["Subject"] = subject
    message["Date"] = format_datetime(date or datetime.now(UTC))
    message["Message-ID"] = message_id or f"<{secrets.token_hex(8)}@test.pli>"
    if in_reply_to:
        message["In-Reply-To"] = in_reply_to
    for name, value in (headers or {}).items():
        message[name] = value
    message.set_content(body)
    for filename, content_type, data in attachments:
        maintype, subtype = content_type.split("/")
        message.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    return message.as_bytes(policy=message.policy.clone(linesep="\r\n"))


def sized_message(size: int, **kwargs: Any) -> bytes:
    """A message of about ``size`` bytes (a text body of 76-character lines)."""
    line = ("x" * 74) + "\n"
    body = line * max(1, size // len(line))
    return build_message(body=body, **kwargs)
