"""Prepared statements (``prepared.py``): inside a quick SQLite transaction they run on the
driver, and their rows must carry exactly what SQLAlchemy's would (converted dates and booleans,
NULLs, literals of the statement, the rows of an INSERT … RETURNING in order); elsewhere
SQLAlchemy runs them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from plitest.store import open_test_store
from sqlalchemy import (
    Column,
    Integer,
    MetaData,
    String,
    Table,
    bindparam,
    event,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from pli.mailbox.store import Store
from pli.mailbox.store.database import Database
from pli.mailbox.store.models import AccountRow, ConversationRow
from pli.mailbox.store.prepared import Prepared
from pli.policy.ins import make_ins

CONVERSATION = Prepared(
    select(ConversationRow).where(
        ConversationRow.professional == bindparam("professional"),
        ConversationRow.ins == bindparam("ins"),
    )
)
#: A literal in the statement (the citizen kind) besides a parameter.
CITIZENS_FROM = Prepared(
    select(AccountRow.id, AccountRow.address, AccountRow.disabled, AccountRow.created_at)
    .where(AccountRow.kind == "CIT", AccountRow.id >= bindparam("first"))
    .order_by(AccountRow.id)
)


@pytest.fixture
async def sqlite_store(tmp_path: Path) -> AsyncIterator[Store]:
    async with open_test_store(f"sqlite:///{tmp_path / 'store.sqlite3'}", tmp_path) as store:
        yield store


def _count_sqlalchemy_executions(db: Database) -> list[str]:
    seen: list[str] = []
    for engine in {db.engine, db.quick_engine}:

        @event.listens_for(engine.sync_engine, "before_cursor_execute")
        def _seen(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
            seen.append(statement)

    return seen


async def _conversation_rows(conn: AsyncConnection) -> tuple[object, object]:
    prepared = await CONVERSATION.first(conn, professional="dr@hop.mssante.fr", ins="1800175000001")
    plain = (
        await conn.execute(
            CONVERSATION.statement, {"professional": "dr@hop.mssante.fr", "ins": "1800175000001"}
        )
    ).first()
    return prepared, plain


async def test_rows_on_the_driver_carry_what_sqlalchemys_carry(sqlite_store: Store) -> None:
    store = sqlite_store
    await store.conversations.record_professional_message(
        "dr@hop.mssante.fr", "1800175000001", "<a@hop>", ends=True
    )
    ward = await store.accounts.create_citizen(make_ins("2800175000002"), "patient.mssante.fr")
    await store.accounts.set_disabled(ward.id, True)
    seen = _count_sqlalchemy_executions(store.db)

    async with store.db.read(quick=True) as conn:
        before = len(seen)
        prepared, plain = await _conversation_rows(conn)
        assert len(seen) == before + 1  # only the plain one went through SQLAlchemy
        rows = await CITIZENS_FROM.all(conn, first=1)
        missing = await CONVERSATION.first(conn, professional="nobody@x.fr", ins="1")
    assert prepared is not None and plain is not None
    assert tuple(prepared) == tuple(plain)
    assert prepared._fields == tuple(plain._fields)
    assert isinstance(prepared.ended_at, datetime) and prepared.ended_at.tzinfo == UTC
    assert prepared.reopened_at is None
    assert missing is None
    assert [(row.address, row.disabled) for row in rows] == [(ward.address, True)]
    assert rows[0].disabled is True and rows[0].created_at.tzinfo == UTC


async def test_elsewhere_sqlalchemy_runs_them(store: Store) -> None:
    """The threaded engine on SQLite, and PostgreSQL (the suite runs on both)."""
    await store.conversations.record_professional_message(
        "dr@hop.mssante.fr", "1800175000001", "<a@hop>", ends=True
    )
    seen = _count_sqlalchemy_executions(store.db)
    async with store.db.read() as conn:
        before = len(seen)
        prepared, plain = await _conversation_rows(conn)
    assert len(seen) == before + 2
    assert prepared is not None and tuple(prepared) == tuple(plain or ())


async def test_an_expanding_in_list_gets_a_placeholder_per_item(sqlite_store: Store) -> None:
    first = await sqlite_store.accounts.create_citizen(make_ins("2800175000002"), "p.fr")
    second = await sqlite_store.accounts.create_citizen(make_ins("2800175000003"), "p.fr")
    listed = Prepared(
        select(AccountRow.address)
        .where(AccountRow.id.in_(bindparam("ids", expanding=True)))
        .order_by(AccountRow.id)
    )
    async with sqlite_store.db.read(quick=True) as conn:
        one = await listed.all(conn, ids=[second.id])
        both = await listed.all(conn, ids=[second.id, first.id, 999])
        again = await listed.all(conn, ids=[first.id])  # the one-item SQL, kept
        with pytest.raises(ValueError, match="empty"):
            await listed.all(conn, ids=[])
    assert [row.address for row in one] == [second.address]
    assert [row.address for row in both] == [first.address, second.address]
    assert [row.address for row in again] == [first.address]


_ITEMS = Table(
    "items",
    MetaData(),
    Column("id", Integer, primary_key=True),
    Column("name", String),
    Column("stamp", String, default=lambda: "computed"),
)
_INSERT_ITEM = Prepared(insert(_ITEMS).returning(_ITEMS.c.id, sort_by_parameter_order=True))
_RENAME_ITEM = Prepared(
    update(_ITEMS).where(_ITEMS.c.id == bindparam("item_id")).values(name=bindparam("new_name"))
)


@pytest.fixture
async def items_db(tmp_path: Path) -> AsyncIterator[Database]:
    db = Database.open(f"sqlite:///{tmp_path / 'items.sqlite3'}")
    async with db.write() as conn:
        await conn.execute(
            text("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT, stamp TEXT)")
        )
    yield db
    await db.close()


@pytest.mark.parametrize("quick", [True, False], ids=["driver", "sqlalchemy"])
async def test_each_returns_the_rows_in_order_and_many_updates(
    items_db: Database, quick: bool
) -> None:
    names = [f"n{index}" for index in range(7)]
    async with items_db.write(quick=quick) as conn:
        await conn.execute(text("INSERT INTO items (name, stamp) VALUES ('first', 'x')"))
        inserted = await _INSERT_ITEM.each(conn, [{"name": n, "stamp": "s"} for n in names])
        await _RENAME_ITEM.many(
            conn, [{"item_id": row.id, "new_name": f"renamed-{row.id}"} for row in inserted[:2]]
        )
        assert await _INSERT_ITEM.each(conn, []) == []
    async with items_db.read() as conn:
        stored = {row.id: row.name for row in (await conn.execute(text("SELECT * FROM items")))}
    ids = [row.id for row in inserted]
    assert ids == sorted(ids) and len(set(ids)) == 7
    assert [stored[i] for i in ids] == [f"renamed-{i}" for i in ids[:2]] + names[2:]


async def test_a_default_computed_per_execution_must_be_given(items_db: Database) -> None:
    async with items_db.write(quick=True) as conn:
        with pytest.raises(ValueError, match="default"):
            await _INSERT_ITEM.each(conn, [{"name": "no stamp"}])


async def test_a_missing_parameter_is_refused_not_sent_as_null(items_db: Database) -> None:
    async with items_db.write(quick=True) as conn:
        await conn.execute(text("INSERT INTO items (name, stamp) VALUES ('kept', 's')"))
        with pytest.raises(ValueError, match="required for the parameter new_name"):
            await _RENAME_ITEM.many(conn, [{"item_id": 1}])
        with pytest.raises(ValueError, match="required for the parameter item_id"):
            await _RENAME_ITEM.many(conn, [{"new_name": "lost"}])
    async with items_db.read() as conn:
        assert (await conn.scalar(text("SELECT name FROM items"))) == "kept"
