"""X-MSS-CODECDA and X-MSS-INS checked against the package they announce.

The sending software sets them (mssante.md §5): ``X-MSS-CODECDA`` lists the CDA ``code`` of
each CDA document in the IHE_XDM.zip, comma-separated; ``X-MSS-INS`` is ``O`` when a qualified
INS is present, else ``N``. A disagreement is reported, never fatal: the package itself was
verified (sizes, hashes, patient), the headers are the client's summary of it, and refusing a
correct package for a wrong summary would lose a document for a cosmetic fault.
"""

from __future__ import annotations

from .model import HeaderMismatch, MssHeaders, XdmDocument

CODECDA = "X-MSS-CODECDA"
INS = "X-MSS-INS"


def header_mismatches(
    headers: MssHeaders, documents: tuple[XdmDocument, ...], has_qualified_ins: bool
) -> tuple[HeaderMismatch, ...]:
    cda = [document for document in documents if document.is_cda]
    return (*_codecda(headers.codecda, cda), *_ins(headers.ins, bool(cda), has_qualified_ins))


def _codecda(value: str | None, cda: list[XdmDocument]) -> list[HeaderMismatch]:
    in_package = {doc.type_code.code for doc in cda if doc.type_code is not None}
    if value is None:
        if not cda:
            return []
        return [
            HeaderMismatch(
                CODECDA,
                "codecda-absent",
                f"the package holds {len(cda)} CDA document(s) but the message has no {CODECDA}",
            )
        ]
    announced = {code.strip() for code in value.split(",") if code.strip()}
    found = []
    unknown = sorted(announced - in_package)
    missing = sorted(in_package - announced)
    if unknown:
        found.append(
            HeaderMismatch(
                CODECDA,
                "codecda-not-in-package",
                f"{CODECDA} names {', '.join(unknown)}, which no CDA document of the package has",
            )
        )
    if missing:
        found.append(
            HeaderMismatch(
                CODECDA,
                "codecda-missing",
                f"the package has CDA document(s) of type {', '.join(missing)} that {CODECDA} "
                "does not name",
            )
        )
    return found


def _ins(value: str | None, has_cda: bool, has_qualified_ins: bool) -> list[HeaderMismatch]:
    if value is None:
        if not has_cda:
            return []
        return [HeaderMismatch(INS, "ins-header-absent", f"a CDA is carried but {INS} is absent")]
    flag = value.strip().upper()
    if flag not in ("O", "N"):
        return [HeaderMismatch(INS, "ins-header-invalid", f"{INS} must be O or N")]
    if flag == "O" and not has_qualified_ins:
        return [
            HeaderMismatch(
                INS,
                "ins-header-says-qualified",
                f"{INS} is O but the package carries no qualified INS (an INS-NIR or INS-NIA "
                "identifier with a valid key)",
            )
        ]
    if flag == "N" and has_qualified_ins:
        return [
            HeaderMismatch(
                INS,
                "ins-header-says-unqualified",
                f"{INS} is N but the package carries a qualified INS",
            )
        ]
    return []
