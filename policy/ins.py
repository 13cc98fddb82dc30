"""The INS matricule: the identity in a citizen's address ``<INS>@patient.mssante.fr``.

An INS matricule is the 13-character NIR (or NIA) followed by its 2-digit control key, 15
characters in all (ANS examples: ``146026322000196@patient.mssante.fr``). The key is
``97 - (NIR mod 97)``; Corsican NIRs write the department as ``2A`` / ``2B``, replaced by ``19`` /
``18`` to compute the key (``../shared/docs/mssante.md`` §3).

Pure functions; no I/O.
"""

from __future__ import annotations

import re
from enum import Enum

INS_LENGTH = 15  # 13-character NIR + 2-digit key (mssante.md §3)
# sex/category digit, year, month, department (2A/2B for Corsica), commune, order, key
_SHAPE = re.compile(r"^[1-8]\d{4}(?:\d{2}|2[AB])\d{6}\d{2}$")
_CORSICA = {"2A": "19", "2B": "18"}


class InsProblem(Enum):
    """Why a string is not an INS matricule (stable values, usable as reason codes)."""

    LENGTH = "ins-length"
    SHAPE = "ins-shape"
    KEY = "ins-key"


def ins_key(nir: str) -> int:
    """The control key of a 13-character NIR (Corsican 2A/2B accepted)."""
    digits = nir[:5] + _CORSICA.get(nir[5:7].upper(), nir[5:7]) + nir[7:]
    return 97 - int(digits) % 97


def ins_problem(value: str) -> InsProblem | None:
    """None when ``value`` is a well-formed INS with a correct key, else what is wrong."""
    candidate = value.upper()
    if len(candidate) != INS_LENGTH:
        return InsProblem.LENGTH
    if not _SHAPE.match(candidate):
        return InsProblem.SHAPE
    if ins_key(candidate[:13]) != int(candidate[13:]):
        return InsProblem.KEY
    return None


def is_valid_ins(value: str) -> bool:
    return ins_problem(value) is None


def make_ins(nir: str) -> str:
    """The 15-character INS of a 13-character NIR (adds the key): for demo data and tests."""
    if len(nir) != INS_LENGTH - 2:
        raise ValueError("a NIR has 13 characters")
    return f"{nir.upper()}{ins_key(nir):02d}"
