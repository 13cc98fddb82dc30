"""The document store as a real process (`pli docstore serve`), for durability and CLI tests."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import Iterator
from pathlib import Path

from pli.config.schema import async_database_url
from plitest.docstore import TEST_TOKEN, drop_schema, postgres_test_url


def write_docstore_config(directory: Path, **docstore: str) -> tuple[Path, str]:
    """A pli.toml whose docstore listens on a free port, on SQLite or on a fresh PostgreSQL
    schema; returns the file and the schema ('' on SQLite) to drop afterwards."""
    directory.mkdir(parents=True, exist_ok=True)
    server = postgres_test_url()
    schema = f"docstore_test_{secrets.token_hex(6)}" if server else ""
    values = {"token": TEST_TOKEN, **docstore}
    if server and "database_url" not in docstore:
        values |= {"database_url": server, "database_schema": schema}
    lines = ["[server]", 'data_dir = "."', "[docstore]"]
    lines += [f'{key} = "{value}"' for key, value in values.items()]
    lines += ["[listeners.docstore]", "port = 0", "[listeners.admin]", "port = 0"]
    # the mail listeners (on by default, fixed development ports, TLS material) are not wanted
    for mail in ("mta", "submission", "submissions", "imap", "imaps"):
        lines += [f"[listeners.{mail}]", "enabled = false"]
    path = directory / "pli.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path, schema


@contextlib.contextmanager
def docstore_config_file(directory: Path, **docstore: str) -> Iterator[Path]:
    """``write_docstore_config``, and its PostgreSQL schema dropped afterwards."""
    path, schema = write_docstore_config(directory, **docstore)
    try:
        yield path
    finally:
        server = postgres_test_url()
        if schema and server:
            asyncio.run(drop_schema(async_database_url(server, Path()), schema))
