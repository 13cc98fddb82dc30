"""IHE_XDM.zip reading: the documents of an XDM package, checked, or a precise refusal.

    result = read_xdm(zip_bytes, headers=MssHeaders(codecda=..., ins=...), expected_ins=ins)
    if isinstance(result, XdmRefusal): ...  # result.reason (stable code), result.text
    else: for document in result.documents: ...  # content, title, type_code, authors, …

Pure (no I/O, no database, no network); imports only ``pli.config`` and ``pli.policy``. Hostile
packages (zip bombs, path traversal names, symbolic links, billion laughs, external entities,
huge or deep XML) are refused with a reason, bounded in memory and time (see ``limits.py``).
"""

from __future__ import annotations

from .limits import DEFAULT_LIMITS, XdmLimits
from .model import (
    Author,
    Code,
    HeaderMismatch,
    MssHeaders,
    PatientId,
    Reason,
    XdmDocument,
    XdmPackage,
    XdmRefusal,
    XdmResult,
)
from .reader import read_xdm

__all__ = [
    "DEFAULT_LIMITS",
    "Author",
    "Code",
    "HeaderMismatch",
    "MssHeaders",
    "PatientId",
    "Reason",
    "XdmDocument",
    "XdmLimits",
    "XdmPackage",
    "XdmRefusal",
    "XdmResult",
    "read_xdm",
]
