"""The package layout of architecture.md: import root, no shadowing, dependency direction."""

from __future__ import annotations

import ast
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TOP_FOLDERS = ["config", "certs", "policy", "mailbox", "mailgateway", "docstore"]

# A ← B means B may import A. config ← certs ← policy ← mailbox ← mailgateway; docstore ← config.
ALLOWED = {
    "config": {"config"},
    "certs": {"config", "certs"},
    "policy": {"config", "certs", "policy"},
    "mailbox": {"config", "certs", "policy", "mailbox"},
    "mailgateway": {"config", "certs", "policy", "mailbox", "mailgateway", "docstore"},
    "docstore": {"config", "docstore"},
}


def _modules(folder: str) -> list[Path]:
    return sorted((ROOT / folder).rglob("*.py")) if (ROOT / folder).is_dir() else []


def _imported_folders(path: Path, folder: str) -> set[str]:
    """The top-level pli folders a module imports, absolute (pli.X) or relative (from ..X)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package_depth = len(path.relative_to(ROOT / folder).parts)  # 1 = directly in the folder
    found = set()
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                names = [node.module or ""]
            elif node.level >= package_depth + 1:
                # climbs out of the folder: from ..X import … at the folder's top
                target = (node.module or "").split(".")[0]
                names = [f"pli.{target}" if target else "pli"]
        for name in names:
            parts = name.split(".")
            if parts[0] == "pli" and len(parts) > 1 and parts[1] in TOP_FOLDERS:
                found.add(parts[1])
    return found


def test_top_folders_have_no_init_module() -> None:
    for folder in TOP_FOLDERS:
        assert not (ROOT / folder / "__init__.py").exists(), f"{folder}/__init__.py must not exist"


def test_import_mailbox_is_the_standard_library_even_from_the_repository_root() -> None:
    code = (
        "import sys; sys.path.insert(0, '.'); import mailbox, pli.mailbox;"
        "assert hasattr(mailbox, 'Maildir'), mailbox;"
        "assert mailbox.__file__.startswith(sys.base_prefix) or 'lib/python' in mailbox.__file__;"
        "print(mailbox.__file__)"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "/mailbox/" not in result.stdout


def test_pli_subpackages_resolve_to_the_repository_folders() -> None:
    import pli.config.schema

    assert Path(pli.config.schema.__file__).resolve() == ROOT / "config" / "schema.py"


def test_dependency_direction() -> None:
    violations = []
    for folder in TOP_FOLDERS:
        for path in _modules(folder):
            for imported in _imported_folders(path, folder) - ALLOWED[folder]:
                violations.append(f"{path.relative_to(ROOT)} imports pli.{imported}")
    assert violations == []


def test_dependency_check_catches_a_violation(tmp_path: Path) -> None:
    """The checker itself: an upward import is seen, absolute or relative."""
    module = ROOT / "config" / "_layout_probe.py"
    module.write_text("from pli.mailbox import store\nfrom ..policy import engine\n")
    try:
        assert _imported_folders(module, "config") == {"mailbox", "policy"}
    finally:
        module.unlink()


def test_every_module_folder_is_a_listed_package() -> None:
    """A wheel (non-editable install) must contain every folder holding modules."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    listed = set(pyproject["tool"]["setuptools"]["packages"])
    needed = {"pli"}
    for folder in TOP_FOLDERS:
        for path in _modules(folder):
            parts = path.parent.relative_to(ROOT).parts
            needed.add(".".join(("pli", *parts)))
    assert needed - listed == set(), "add these to [tool.setuptools] packages in pyproject.toml"
    assert listed - needed == set(), "these listed packages have no module (the build fails)"
