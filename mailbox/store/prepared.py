"""Hot statements compiled once and run on the SQLite driver's cursor.

SQLAlchemy's execution path (the execution context, the cursor adapter, the result object and
its rows, the compiled-cache lookup) costs 100-300 µs per statement here; SQLite answers a
lookup by primary key or unique index from its page cache in 10-15. The policy's facts read
five rows at every RCPT (bench/smtp.py: statements were half of the event loop's time), so
those statements are :class:`Prepared`: compiled for SQLite at their first use, and, inside
a quick SQLite transaction (``inline.py``, whose connections live in the event loop's thread),
executed directly on its ``sqlite3`` connection. The rows come back as named
tuples carrying the same values SQLAlchemy would give (its result processors are applied: a
``UtcDateTime`` is an aware ``datetime``, a ``Boolean`` a ``bool``), so the store's
``…_from_row`` functions read both kinds alike.

Anywhere else (PostgreSQL, the threaded aiosqlite engine, an in-memory database) the statement
runs through SQLAlchemy as usual: :class:`Prepared` is then only a name for it.

An expanding ``IN`` parameter (``bindparam(…, expanding=True)``) gets one placeholder per item,
its SQL kept per list length; an empty list is refused (nothing could match: callers skip).
"""

from __future__ import annotations

import sqlite3
from collections import namedtuple
from collections.abc import Callable, Sequence
from typing import Any, cast

from sqlalchemy import Executable
from sqlalchemy.dialects.sqlite import aiosqlite as sqlite_aiosqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError, StatementError
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ClauseElement

from .inline import InlineConnection

#: Stands for "no default": the caller must give this parameter.
_REQUIRED = object()


class _Compiled:
    """One statement compiled for one dialect: its SQL, how to order and convert the
    parameters, and how to build and convert the rows."""

    __slots__ = ("_binds", "_expanded", "_expanding", "_processors", "_row", "sql")

    def __init__(
        self, statement: Executable, dialect: Dialect, keys: tuple[str, ...] | None
    ) -> None:
        compiled = cast(
            SQLCompiler,
            cast(ClauseElement, statement).compile(
                dialect=dialect, column_keys=list(keys) if keys is not None else None
            ),
        )
        if compiled.positiontup is None:
            raise ValueError("prepared statements need a positional paramstyle (SQLite)")
        if compiled.insert_prefetch or compiled.update_prefetch:
            # Python-side defaults computed per execution: SQLAlchemy's execution context does it.
            raise ValueError("a prepared statement must be given every column with a default")
        bind_processors = compiled._bind_processors
        binds: list[tuple[str, Any, Any, bool]] = []
        for name in compiled.positiontup:
            bind = compiled.binds[name]
            # A value given in the statement (a literal compared to a column) is a default.
            default = _REQUIRED if bind.required else bind.effective_value
            binds.append((name, default, bind_processors.get(name), bind.expanding))
        self.sql = compiled.string
        self._binds = tuple(binds)
        self._expanding = tuple(name for name, _, _, expanding in binds if expanding)
        #: The SQL for each tuple of list lengths of the expanding ``IN`` parameters.
        self._expanded: dict[tuple[int, ...], str] = {}
        columns = compiled._result_columns or []
        self._row: Any = namedtuple("PreparedRow", [column.keyname for column in columns])  # type: ignore[misc]
        self._processors = tuple(
            (index, processor)
            for index, column in enumerate(columns)
            if (processor := column.type._cached_result_processor(dialect, None)) is not None
        )

    def parameters(self, values: dict[str, Any]) -> list[Any]:
        ordered: list[Any] = []
        for name, default, processor, expanding in self._binds:
            value = values.get(name, default)
            if value is _REQUIRED:  # as SQLAlchemy refuses it: never a silent NULL
                raise ValueError(f"a value is required for the parameter {name}")
            if expanding:
                ordered.extend(processor(item) if processor else item for item in value)
            else:
                ordered.append(processor(value) if processor is not None else value)
        return ordered

    def statement(self, values: dict[str, Any]) -> str:
        """The SQL for these values: an expanding ``IN`` parameter becomes one placeholder per
        item of its list (which must not be empty: SQLAlchemy renders an empty one otherwise)."""
        if not self._expanding:
            return self.sql
        lengths = tuple(len(values[name]) for name in self._expanding)
        sql = self._expanded.get(lengths)
        if sql is None:
            sql = self.sql
            for name, length in zip(self._expanding, lengths, strict=True):
                if length == 0:
                    raise ValueError(f"an empty list for {name}: nothing can match")
                sql = sql.replace(f"__[POSTCOMPILE_{name}]", ", ".join("?" * length))
            self._expanded[lengths] = sql
        return sql

    def row(self, raw: Sequence[Any]) -> Any:
        if not self._processors:
            return self._row._make(raw)
        values = list(raw)
        for index, processor in self._processors:
            values[index] = processor(values[index])
        return self._row._make(values)


class Prepared:
    """A statement run on the SQLite driver where it can be, else by SQLAlchemy. :meth:`first`
    and :meth:`all` take a SQLAlchemy connection or a quick reader's ``sqlite3`` connection
    (``Database.first``/``all`` choose), and return rows whose columns are attributes, as
    SQLAlchemy's."""

    __slots__ = ("_compiled", "statement")

    def __init__(self, statement: Executable) -> None:
        self.statement = statement
        #: Compiled for the driver, per set of columns given to an INSERT or UPDATE (None: any).
        self._compiled: dict[tuple[str, ...] | None, _Compiled] = {}

    async def first(self, conn: AsyncConnection | sqlite3.Connection, **values: Any) -> Any:
        driver = _driver(conn)
        if driver is None:
            return (await cast(AsyncConnection, conn).execute(self.statement, values)).first()
        compiled = self._for(None)
        raw = _run(driver, compiled, values, sqlite3.Cursor.fetchone)
        return compiled.row(raw) if raw is not None else None

    async def all(self, conn: AsyncConnection | sqlite3.Connection, **values: Any) -> list[Any]:
        driver = _driver(conn)
        if driver is None:
            return list((await cast(AsyncConnection, conn).execute(self.statement, values)).all())
        compiled = self._for(None)
        raws = _run(driver, compiled, values, sqlite3.Cursor.fetchall)
        return [compiled.row(raw) for raw in raws]

    async def each(self, conn: AsyncConnection, rows: Sequence[dict[str, Any]]) -> list[Any]:
        """An INSERT … RETURNING of many rows (each a dict with the same keys): the row it
        returns for each, in order. On the driver, one execution per row (SQLite runs a single-row
        INSERT in microseconds, and SQLAlchemy would also run one per row to keep the order);
        elsewhere SQLAlchemy's "insertmanyvalues", so the statement must say
        ``returning(…, sort_by_parameter_order=True)``."""
        if not rows:
            return []
        driver = _driver(conn)
        if driver is None:
            return list((await conn.execute(self.statement, list(rows))).all())
        compiled = self._for(tuple(rows[0]))
        return [
            compiled.row(_run(driver, compiled, values, sqlite3.Cursor.fetchone)) for values in rows
        ]

    async def many(self, conn: AsyncConnection, rows: Sequence[dict[str, Any]]) -> None:
        """The statement (an UPDATE or INSERT without RETURNING) once per parameter set of
        ``rows`` (dicts with the same keys): the driver's ``executemany``, else SQLAlchemy's."""
        if not rows:
            return
        driver = _driver(conn)
        if driver is None:
            await conn.execute(self.statement, list(rows))
            return
        compiled = self._for(tuple(rows[0]))
        if compiled.statement(rows[0]) != compiled.sql:
            raise ValueError("an expanding parameter cannot be executed many times")
        parameters = [compiled.parameters(values) for values in rows]
        try:
            driver.executemany(compiled.sql, parameters)
        except sqlite3.Error as error:
            raise driver_error(compiled.sql, parameters[0], error) from error

    def _for(self, keys: tuple[str, ...] | None) -> _Compiled:
        compiled = self._compiled.get(keys)
        if compiled is None:
            compiled = self._compiled[keys] = _Compiled(self.statement, _SQLITE, keys)
        return compiled


#: The dialect the driver's statements are compiled for (aiosqlite's: the same SQL and result
#: processors as the engine's).
_SQLITE: Dialect = sqlite_aiosqlite.dialect()


def _run(
    driver: sqlite3.Connection,
    compiled: _Compiled,
    values: dict[str, Any],
    fetch: Callable[[sqlite3.Cursor], Any],
) -> Any:
    """What ``fetch`` reads of the statement's cursor (a driver error raised as SQLAlchemy's:
    :func:`driver_error`)."""
    parameters = compiled.parameters(values)
    sql = compiled.statement(values)
    try:
        cursor = driver.execute(sql, parameters)
        try:
            return fetch(cursor)
        finally:
            cursor.close()
    except sqlite3.Error as error:
        raise driver_error(sql, parameters, error) from error


def driver_error(sql: str, parameters: Sequence[Any], error: sqlite3.Error) -> StatementError:
    """The SQLAlchemy exception of a sqlite3 error (``OperationalError`` for a locked or
    missing database…), as SQLAlchemy raises it: callers catch one kind."""
    return DBAPIError.instance(sql, parameters, error, sqlite3.Error)


def _driver(conn: AsyncConnection | sqlite3.Connection) -> sqlite3.Connection | None:
    """The sqlite3 connection to run on: a quick reader's itself, the one under an
    ``inline.py`` connection (its statements may run here, in the loop's thread); else None
    (SQLAlchemy runs the statement)."""
    if isinstance(conn, sqlite3.Connection):
        return conn
    driver = conn.sync_connection.connection.driver_connection  # type: ignore[union-attr]
    if isinstance(driver, InlineConnection):
        return driver.raw
    return None
