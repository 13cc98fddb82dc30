"""Reading directory extracts: the national pipe-delimited file and a simple CSV.

Two shapes are accepted, recognised by the header line:

1. **The national extract** ("extraction_correspondance_mssante", pipe-delimited ``|``, one
   header line, UTF-8 or Latin-1). Columns are found by name (case, accents and spacing ignored);
   others are ignored. Used columns:

   =============================================  ==========================================
   column                                         meaning
   =============================================  ==========================================
   ``Adresse BAL`` (required)                     the mailbox address
   ``Type de BAL`` (required)                     PER, ORG, APP or CAB
   ``Identification nationale PP`` or             the professional's national id (RPPS)
   ``Identifiant PP``
   ``Nom d'exercice``, ``Prénom d'exercice``      display name of a PER mailbox
   ``Libellé profession``                         profession
   ``Identifiant structure`` or                   structure id (FINESS, SIRET)
   ``Identification nationale structure``
   ``Raison sociale structure BAL`` or            structure name; display name of ORG/APP
   ``Raison sociale structure``
   ``Service de rattachement``                    appended to the ORG display name
   ``Code secteur d'activité`` /                  SA33 or a label containing "officine":
   ``Libellé secteur d'activité``                 the pharmacy (officine) flag (policy P3)
   ``Pharmacie`` / ``Officine``                   explicit flag (O/oui/1/true)
   ``Ne pas répondre`` / ``No reply``             APP no-reply flag (O/oui/1/true)
   =============================================  ==========================================

2. **A simple CSV** (comma-separated, header line) with columns ``address``, ``bal_type``
   (required), and optionally ``display_name``, ``profession``, ``rpps``, ``structure_id``,
   ``structure_name``, ``pharmacy``, ``no_reply``.

Every bad row (missing or invalid address, unknown type, wrong number of fields) is reported with
its line number and skipped; good rows are kept. Pure functions; no I/O beyond the text given.
"""

from __future__ import annotations

import csv
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass

from .records import DirectoryEntry

BAL_TYPES = ("PER", "ORG", "APP", "CAB")  # mssante.md §3
PHARMACY_SECTOR_CODE = "SA33"  # "Pharmacie d'officine" in the national nomenclature
#: Lines read from one file (the national extract holds a few hundred thousand).
MAX_IMPORT_LINES = 5_000_000
_TRUE = {"o", "oui", "y", "yes", "1", "true", "vrai", "x"}
_ADDRESS = re.compile(r"^[^@\s]{1,64}@[a-z0-9.-]{1,255}\.[a-z]{2,63}$")


@dataclass(frozen=True, slots=True)
class ImportProblem:
    line: int
    message: str


@dataclass(frozen=True, slots=True)
class ParsedExtract:
    entries: list[DirectoryEntry]
    problems: list[ImportProblem]
    shape: str  # "national" or "csv"


def _key(name: str) -> str:
    decomposed = unicodedata.normalize("NFKD", name)
    ascii_only = "".join(c for c in decomposed if not unicodedata.combining(c))
    return re.sub(r"[^a-z0-9]+", " ", ascii_only.lower()).strip()


_NATIONAL: dict[str, tuple[str, ...]] = {
    "address": ("adresse bal",),
    "bal_type": ("type de bal", "type bal"),
    "rpps": ("identification nationale pp", "identifiant pp"),
    "last_name": ("nom d exercice", "nom"),
    "first_name": ("prenom d exercice", "prenom"),
    "profession": ("libelle profession",),
    "structure_id": ("identifiant structure", "identification nationale structure"),
    "structure_name": ("raison sociale structure bal", "raison sociale structure"),
    "service": ("service de rattachement",),
    "sector_code": ("code secteur d activite", "code secteur activite"),
    "sector_label": ("libelle secteur d activite", "libelle secteur activite"),
    "pharmacy": ("pharmacie", "officine", "pharmacy"),
    "no_reply": ("ne pas repondre", "no reply", "noreply"),
}
_CSV: dict[str, tuple[str, ...]] = {
    name: (name.replace("_", " "),)
    for name in (
        "address",
        "bal_type",
        "display_name",
        "profession",
        "rpps",
        "structure_id",
        "structure_name",
        "pharmacy",
        "no_reply",
    )
}


def decode(data: bytes) -> str:
    """UTF-8 (with or without BOM), else Latin-1 (older extracts)."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def parse_extract(text: str, source: str = "") -> ParsedExtract:
    lines = text.splitlines()
    if not lines:
        return ParsedExtract([], [ImportProblem(1, "empty file")], "csv")
    national = "|" in lines[0]
    columns = _NATIONAL if national else _CSV
    rows: Iterator[list[str] | None] = (_split(line, national) for line in lines)
    header = next(rows) or []
    keys = [_key(name) for name in header]
    index: dict[str, int] = {}
    for field, names in columns.items():
        for name in names:
            if name in keys:
                index[field] = keys.index(name)
                break
    missing = [field for field in ("address", "bal_type") if field not in index]
    if missing:
        wanted = ", ".join(columns[field][0] for field in missing)
        return ParsedExtract(
            [],
            [ImportProblem(1, f"header has no column {wanted}")],
            "national" if national else "csv",
        )
    entries: list[DirectoryEntry] = []
    problems: list[ImportProblem] = []
    seen: set[str] = set()
    for number, row in enumerate(rows, start=2):
        if number > MAX_IMPORT_LINES:
            problems.append(ImportProblem(number, f"file longer than {MAX_IMPORT_LINES} lines"))
            break
        if row is None:
            problems.append(ImportProblem(number, "unreadable CSV line"))
            continue
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            problems.append(
                ImportProblem(number, f"{len(row)} fields where the header has {len(header)}")
            )
            continue
        entry, problem = _entry(row, index, national, source)
        if problem:
            problems.append(ImportProblem(number, problem))
            continue
        assert entry is not None
        if entry.address in seen:
            problems.append(ImportProblem(number, f"duplicate address {entry.address}"))
            continue
        seen.add(entry.address)
        entries.append(entry)
    return ParsedExtract(entries, problems, "national" if national else "csv")


def _split(line: str, national: bool) -> list[str] | None:
    """The fields of one line (None for a CSV line that cannot be read); one line is one row:
    quoted fields cannot span lines."""
    if national:
        return line.split("|")
    try:
        return next(csv.reader([line]), [])
    except csv.Error:
        return None


def _entry(
    row: list[str], index: dict[str, int], national: bool, source: str
) -> tuple[DirectoryEntry | None, str | None]:
    def get(field: str) -> str:
        position = index.get(field)
        return row[position].strip() if position is not None else ""

    address = get("address").lower()
    if not _ADDRESS.match(address):
        return None, f"invalid address {address!r}" if address else "missing address"
    bal_type = get("bal_type").upper()
    if bal_type not in BAL_TYPES:
        return None, f"unknown BAL type {bal_type!r} (expected {', '.join(BAL_TYPES)})"
    structure_name = get("structure_name") or None
    if national:
        person = " ".join(part for part in (get("first_name"), get("last_name")) if part)
        service = get("service")
        organisation = " - ".join(part for part in (structure_name or "", service) if part)
        display_name = person if bal_type == "PER" and person else organisation or person
        sector = f"{get('sector_code')} {get('sector_label')}".lower()
        pharmacy = (
            PHARMACY_SECTOR_CODE.lower() in sector.split()
            or "officine" in sector
            or get("pharmacy").lower() in _TRUE
        )
    else:
        display_name = get("display_name")
        pharmacy = get("pharmacy").lower() in _TRUE
    return (
        DirectoryEntry(
            address=address,
            bal_type=bal_type,
            display_name=display_name[:255],
            profession=get("profession")[:255] or None,
            rpps=get("rpps")[:32] or None,
            structure_id=get("structure_id")[:64] or None,
            structure_name=structure_name[:255] if structure_name else None,
            pharmacy=pharmacy,
            no_reply=get("no_reply").lower() in _TRUE,
        ),
        None,
    )
