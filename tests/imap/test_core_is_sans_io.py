"""The protocol core stays sans-IO (architecture.md § Protocols): no asyncio, ssl, sockets or
store in mailbox/imap's core modules; of pli it imports only config and itself. The adapter
(``server.py``, ``service.py``) and the session layer (``session/``) sit on top and may."""

from __future__ import annotations

import ast
from pathlib import Path

CORE = Path(__file__).resolve().parents[2] / "mailbox" / "imap"
FORBIDDEN = {"asyncio", "ssl", "socket", "selectors", "threading", "sqlalchemy"}
ADAPTER = {"server.py", "service.py"}  # the asyncio shell around the core, the listener


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
    return found


def test_core_imports_no_io_and_no_store() -> None:
    modules = sorted(path for path in CORE.glob("*.py") if path.name not in ADAPTER)
    assert len(modules) > 10
    for path in modules:
        for name in _imports(path):
            assert name.split(".")[0] not in FORBIDDEN, f"{path.name} imports {name}"
            if name.startswith("pli."):
                assert name.startswith("pli.config."), f"{path.name} imports {name}"
