"""Where the workplace's shared material is: ANS's real whitelist (``data/``) and Dovecot's
imaptest scripts (``imaptest/``). It sits beside the repository (``../shared``); a checkout
made elsewhere (a CI clone in a temporary directory) names it with ``PLITEST_SHARED_DIR``, else
the workplace's own copy (``/work/shared``) is used. Tests that need it fail when it cannot be
found: they never skip. (Not ``PLI_…``: `pli` reads every such variable as configuration and
refuses an unknown key, so every process a test starts would fail.)"""

from __future__ import annotations

import os
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[2]
WORKPLACE = Path("/work/shared")


def shared_dir() -> Path:
    candidates = [REPOSITORY.parent / "shared", WORKPLACE]
    if os.environ.get("PLITEST_SHARED_DIR"):
        candidates.insert(0, Path(os.environ["PLITEST_SHARED_DIR"]))
    for candidate in candidates:
        if (candidate / "data").is_dir():
            return candidate
    raise FileNotFoundError(
        "the shared material (ANS whitelist, imaptest) is in none of: "
        + ", ".join(str(candidate) for candidate in candidates)
    )


SHARED = shared_dir()
