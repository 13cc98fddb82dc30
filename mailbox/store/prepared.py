"""Hot statements compiled once and run on the SQLite driver's cursor.

SQLAlchemy's execution path (the execution context, the cursor adapter, the result object and
its rows, the compiled-cache lookup) costs 100-300 µs per statement here; SQLite answers a
lookup by primary key or unique index from its page cache in 10-15. The policy's facts read
five rows at every RCPT (bench/smtp.py: statements were half of the event loop's time), so
those statements are :class:`Prepared`: compiled for the connection's dialect at their first
use, and, inside a quick SQLite transaction (``inline.py``, whose connections live in the event
loop's thread), executed directly on its ``sqlite3`` connection. The rows come back as named
tuples carrying the same values SQLAlchemy would give (its result processors are applied: a
``UtcDateTime`` is an aware ``datetime``, a ``Boolean`` a ``bool``), so the store's
``…_from_row`` functions read both kinds alike.

Anywhere else (PostgreSQL, the threaded aiosqlite engine, an in-memory database) the statement
runs through SQLAlchemy as usual: :class:`Prepared` is then only a name for it.

Only for statements whose parameters are plain values: an expanding ``IN`` list is rendered at
execution time and is refused when the statement is prepared.
"""

from __future__ import annotations

import sqlite3
from collections import namedtuple
from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import Executable
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ClauseElement

from .inline import InlineConnection


class _Compiled:
    """One statement compiled for one dialect: its SQL, how to order and convert the
    parameters, and how to build and convert the rows."""

    __slots__ = ("_binds", "_processors", "_row", "sql")

    def __init__(self, statement: Executable, dialect: Dialect) -> None:
        compiled = cast(SQLCompiler, cast(ClauseElement, statement).compile(dialect=dialect))
        if compiled.positiontup is None:
            raise ValueError("prepared statements need a positional paramstyle (SQLite)")
        bind_processors = compiled._bind_processors
        binds: list[tuple[str, Any, Any]] = []
        for name in compiled.positiontup:
            bind = compiled.binds[name]
            if bind.expanding:
                raise ValueError(f"an expanding parameter cannot be prepared: {name}")
            # A value given in the statement (a literal compared to a column) is a default.
            binds.append((name, bind.effective_value, bind_processors.get(name)))
        self.sql = compiled.string
        self._binds = tuple(binds)
        columns = compiled._result_columns or []
        self._row: Any = namedtuple("PreparedRow", [column.keyname for column in columns])  # type: ignore[misc]
        self._processors = tuple(
            (index, processor)
            for index, column in enumerate(columns)
            if (processor := column.type._cached_result_processor(dialect, None)) is not None
        )

    def parameters(self, values: dict[str, Any]) -> list[Any]:
        ordered = []
        for name, default, processor in self._binds:
            value = values.get(name, default)
            ordered.append(processor(value) if processor is not None else value)
        return ordered

    def row(self, raw: Sequence[Any]) -> Any:
        if not self._processors:
            return self._row._make(raw)
        values = list(raw)
        for index, processor in self._processors:
            values[index] = processor(values[index])
        return self._row._make(values)


class Prepared:
    """A statement run on the SQLite driver inside quick transactions, else by SQLAlchemy.
    :meth:`first` and :meth:`all` return rows whose columns are attributes, as SQLAlchemy's."""

    __slots__ = ("_compiled", "statement")

    def __init__(self, statement: Executable) -> None:
        self.statement = statement
        self._compiled: dict[Dialect, _Compiled] = {}

    async def first(self, conn: AsyncConnection, **values: Any) -> Any:
        driver = _inline_driver(conn)
        if driver is None:
            return (await conn.execute(self.statement, values)).first()
        compiled = self._for(conn.dialect)
        cursor = driver.execute(compiled.sql, compiled.parameters(values))
        try:
            raw = cursor.fetchone()
        finally:
            cursor.close()
        return compiled.row(raw) if raw is not None else None

    async def all(self, conn: AsyncConnection, **values: Any) -> list[Any]:
        driver = _inline_driver(conn)
        if driver is None:
            return list((await conn.execute(self.statement, values)).all())
        compiled = self._for(conn.dialect)
        cursor = driver.execute(compiled.sql, compiled.parameters(values))
        try:
            return [compiled.row(raw) for raw in cursor.fetchall()]
        finally:
            cursor.close()

    def _for(self, dialect: Dialect) -> _Compiled:
        compiled = self._compiled.get(dialect)
        if compiled is None:
            compiled = self._compiled[dialect] = _Compiled(self.statement, dialect)
        return compiled


def _inline_driver(conn: AsyncConnection) -> sqlite3.Connection | None:
    """The sqlite3 connection under ``conn`` when it is one of ``inline.py``'s (its statements
    may run here, in the loop's thread), else None."""
    driver = conn.sync_connection.connection.driver_connection  # type: ignore[union-attr]
    if isinstance(driver, InlineConnection):
        return driver.raw
    return None
