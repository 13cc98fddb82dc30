"""The recipients file of a campaign: a CSV export of the establishment's information system,
read defensively. One bad line is reported with its line number and never stops the others.

Decisions (docs/bulk.md):

- **Encoding**: UTF-8, with or without a byte order mark; a file that is not valid UTF-8 is read
  as Windows-1252 (what Excel and most French hospital exports write), and the report says so.
  A file that is neither (bytes Windows-1252 leaves undefined, or NUL bytes) is refused.
- **Delimiter**: ``;`` (the French default, as the decimal separator is ``,``), ``,`` or a tab:
  the one the header line uses most, ``;`` on a tie. Quotes as RFC 4180 (``"`` doubled inside).
- **Columns**, matched by name (case, accents, spaces and punctuation ignored):
  ``ins`` (required), ``nom`` (family name, required), ``prenoms`` (given names, required),
  ``date_naissance`` (required: ``JJ/MM/AAAA``, ``JJ-MM-AAAA``, ``AAAA-MM-JJ`` or ``AAAAMMJJ``),
  ``pieces_jointes`` (optional: per-row attachment paths separated by ``|``), ``cle`` (optional
  row key); every other column is a free field, available to the templates under its normalised
  name (``Date RDV`` → ``date_rdv``).
- **Row key**: ``cle`` when the file has it, else the INS. Two rows with one key are an error on
  the second: a duplicated export line must not become a second convocation.
- **INS**: spaces removed, upper case, shape and key checked (``policy/ins.py``).

Pure: text in, rows and errors out; no file system (the caller reads the bytes).
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date

from pli.policy.ins import InsProblem, ins_problem

from .limits import MAX_COLUMNS, MAX_FIELD_LENGTH, MAX_ROW_ATTACHMENTS, ROW_KEY_LENGTH

DELIMITERS = (";", ",", "\t")
ATTACHMENT_SEPARATOR = "|"
#: The oldest birth year accepted (the oldest living people were born after it).
OLDEST_BIRTH_YEAR = 1890

#: Canonical column → the normalised header names that mean it.
COLUMN_ALIASES: dict[str, frozenset[str]] = {
    "ins": frozenset({"ins", "matricule_ins", "ins_nir", "nir", "matricule"}),
    "nom": frozenset({"nom", "nom_naissance", "nom_de_naissance", "nom_famille", "family_name"}),
    "prenoms": frozenset({"prenoms", "prenom", "liste_des_prenoms", "given_names", "prenom_s"}),
    "date_naissance": frozenset(
        {"date_naissance", "date_de_naissance", "ddn", "naissance", "birth_date"}
    ),
    "pieces_jointes": frozenset({"pieces_jointes", "piece_jointe", "attachments", "fichiers"}),
    "cle": frozenset({"cle", "key", "row_key", "cle_ligne"}),
}
REQUIRED = ("ins", "nom", "prenoms", "date_naissance")

#: Line error reasons (stable codes) and their French texts.
MISSING_FIELD = "missing-field"
COLUMN_COUNT = "column-count"
FIELD_TOO_LONG = "field-too-long"
BAD_BIRTH_DATE = "birth-date-invalid"
DUPLICATE_KEY = "duplicate-key"
KEY_TOO_LONG = "key-too-long"
TOO_MANY_ATTACHMENTS = "too-many-attachments"
MALFORMED_LINE = "malformed-line"
INS_TEXTS = {
    InsProblem.LENGTH: "l'INS doit compter 15 caractères (NIR de 13 caractères et sa clé)",
    InsProblem.SHAPE: "l'INS n'a pas la forme d'un NIR (chiffres, 2A/2B pour la Corse)",
    InsProblem.KEY: "la clé de l'INS ne correspond pas au NIR (faute de frappe ?)",
}
_BIRTH_FORMATS = (
    re.compile(r"^(?P<d>\d{2})[/.-](?P<m>\d{2})[/.-](?P<y>\d{4})$"),
    re.compile(r"^(?P<y>\d{4})-(?P<m>\d{2})-(?P<d>\d{2})$"),
    re.compile(r"^(?P<y>\d{4})(?P<m>\d{2})(?P<d>\d{2})$"),
)


class RecipientFileError(Exception):
    """The file as a whole cannot be used (no header, a required column missing, unreadable
    encoding, too large); ``text`` is French."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


@dataclass(frozen=True, slots=True)
class Recipient:
    """One usable line: a citizen, the fields the templates see, the attachments it names."""

    line: int
    key: str
    ins: str
    family_name: str
    given_names: str
    birth_date: date
    fields: dict[str, str] = field(hash=False)
    attachments: tuple[str, ...] = ()

    def template_context(self) -> dict[str, str]:
        """What the templates see: the free fields, then the identity (which wins)."""
        return {
            **self.fields,
            "ins": self.ins,
            "nom": self.family_name,
            "prenoms": self.given_names,
            "prenom": self.given_names.split(" ")[0] if self.given_names else "",
            "date_naissance": self.birth_date.strftime("%d/%m/%Y"),
        }


@dataclass(frozen=True, slots=True)
class LineError:
    """A line that cannot be sent: where, which row (when known), why."""

    line: int
    key: str
    ins: str
    reason: str
    text: str


@dataclass(frozen=True)
class RecipientFile:
    encoding: str  # "utf-8" (BOM or not) or "windows-1252"
    delimiter: str
    columns: tuple[str, ...]  # normalised names, in file order
    rows: tuple[Recipient, ...]
    errors: tuple[LineError, ...]

    @property
    def count(self) -> int:
        return len(self.rows) + len(self.errors)


def normalise_name(name: str) -> str:
    """A header name as the templates see it: accents dropped, lower case, ``_`` between words;
    one that would start with a digit gets ``c_`` in front."""
    decomposed = unicodedata.normalize("NFKD", name.strip().lstrip("\ufeff"))
    plain = "".join(char for char in decomposed if not unicodedata.combining(char)).lower()
    words = re.sub(r"[^a-z0-9]+", "_", plain).strip("_")
    return f"c_{words}" if words[:1].isdigit() else words


def decode(data: bytes) -> tuple[str, str]:
    """(text, encoding name) of the file's bytes; RecipientFileError when unreadable."""
    if b"\x00" in data:
        raise RecipientFileError("le fichier contient des octets nuls : ce n'est pas un CSV texte")
    try:
        return data.decode("utf-8-sig"), "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp1252"), "windows-1252"
    except UnicodeDecodeError as error:
        raise RecipientFileError(
            f"encodage non reconnu (ni UTF-8 ni Windows-1252, octet {error.start + 1})"
        ) from None


def sniff_delimiter(header_line: str) -> str:
    """The delimiter the header line uses most, outside quotes (``;`` on a tie)."""
    counts = dict.fromkeys(DELIMITERS, 0)
    quoted = False
    for char in header_line:
        if char == '"':
            quoted = not quoted
        elif not quoted and char in counts:
            counts[char] += 1
    return max(DELIMITERS, key=lambda delimiter: counts[delimiter])


def parse_birth_date(text: str, today: date) -> date | None:
    for pattern in _BIRTH_FORMATS:
        match = pattern.match(text.strip())
        if match is None:
            continue
        try:
            value = date(int(match["y"]), int(match["m"]), int(match["d"]))
        except ValueError:
            return None
        return value if value.year >= OLDEST_BIRTH_YEAR and value <= today else None
    return None


def clean_ins(text: str) -> str:
    return re.sub(r"[\s.]", "", text).upper()


def _records(text: str, delimiter: str) -> Iterator[tuple[int, list[str] | None]]:
    """(first line number, cells) per record; cells None for a record the csv module refuses
    (it resumes at the next line)."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    line = 1
    while True:
        start = line
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error:
            line = reader.line_num + 1
            yield start, None
            continue
        line = reader.line_num + 1
        yield start, cells


def _columns(header: list[str]) -> tuple[tuple[str, ...], dict[str, int]]:
    """The normalised header and the position of each canonical column."""
    if len(header) > MAX_COLUMNS:
        raise RecipientFileError(f"le fichier a plus de {MAX_COLUMNS} colonnes")
    names = tuple(normalise_name(cell) for cell in header)
    positions: dict[str, int] = {}
    seen: dict[str, int] = {}
    for index, name in enumerate(names):
        if not name:
            raise RecipientFileError(f"la colonne {index + 1} n'a pas de nom")
        if name in seen:
            raise RecipientFileError(f"deux colonnes s'appellent « {name} »")
        seen[name] = index
        for canonical, aliases in COLUMN_ALIASES.items():
            if name in aliases:
                if canonical in positions:
                    raise RecipientFileError(f"deux colonnes donnent « {canonical} »")
                positions[canonical] = index
    missing = [column for column in REQUIRED if column not in positions]
    if missing:
        raise RecipientFileError(
            "colonne(s) obligatoire(s) absente(s) : "
            + ", ".join(missing)
            + f" (colonnes lues : {', '.join(names)})"
        )
    return names, positions


class _LineParser:
    """Turns one record into a Recipient or a LineError."""

    def __init__(self, names: tuple[str, ...], positions: dict[str, int], today: date) -> None:
        self.names = names
        self.positions = positions
        self.today = today
        self.canonical_positions = set(positions.values())
        self.keys: dict[str, int] = {}

    def parse(self, line: int, cells: list[str]) -> Recipient | LineError:
        ins = clean_ins(self._cell(cells, "ins")) if len(cells) > self.positions["ins"] else ""

        def error(reason: str, text: str, key: str = "") -> LineError:
            return LineError(line, key, ins, reason, text)

        if len(cells) != len(self.names):
            return error(
                COLUMN_COUNT, f"{len(cells)} cellule(s) au lieu de {len(self.names)} (en-tête)"
            )
        for name, cell in zip(self.names, cells, strict=True):
            if len(cell) > MAX_FIELD_LENGTH:
                return error(FIELD_TOO_LONG, f"« {name} » dépasse {MAX_FIELD_LENGTH} caractères")
        for column in ("ins", "nom", "prenoms", "date_naissance"):
            if not self._cell(cells, column).strip():
                return error(MISSING_FIELD, f"« {column} » est vide")
        problem = ins_problem(ins)
        if problem is not None:
            return error(problem.value, INS_TEXTS[problem])
        key = self._cell(cells, "cle").strip() if "cle" in self.positions else ins
        if not key:
            return error(MISSING_FIELD, "« cle » est vide")
        if len(key) > ROW_KEY_LENGTH:
            return error(KEY_TOO_LONG, f"la clé dépasse {ROW_KEY_LENGTH} caractères")
        birth = parse_birth_date(self._cell(cells, "date_naissance"), self.today)
        if birth is None:
            return error(
                BAD_BIRTH_DATE,
                "date de naissance invalide (JJ/MM/AAAA attendu, passée, après "
                f"{OLDEST_BIRTH_YEAR})",
                key,
            )
        attachments = tuple(
            path.strip()
            for path in self._cell(cells, "pieces_jointes").split(ATTACHMENT_SEPARATOR)
            if path.strip()
        )
        if len(attachments) > MAX_ROW_ATTACHMENTS:
            return error(TOO_MANY_ATTACHMENTS, f"plus de {MAX_ROW_ATTACHMENTS} pièces jointes", key)
        if key in self.keys:
            return error(
                DUPLICATE_KEY,
                f"la clé {key} figure déjà ligne {self.keys[key]} (ligne en double ? ajoutez "
                "une colonne cle pour envoyer deux messages au même patient)",
                key,
            )
        self.keys[key] = line
        fields = {
            name: cell.strip()
            for index, (name, cell) in enumerate(zip(self.names, cells, strict=True))
            if index not in self.canonical_positions
        }
        return Recipient(
            line=line,
            key=key,
            ins=ins,
            family_name=" ".join(self._cell(cells, "nom").split()),
            given_names=" ".join(self._cell(cells, "prenoms").split()),
            birth_date=birth,
            fields=fields,
            attachments=attachments,
        )

    def _cell(self, cells: list[str], column: str) -> str:
        position = self.positions.get(column)
        if position is None or position >= len(cells):
            return ""
        return cells[position]


def parse_recipients(data: bytes, *, max_rows: int, today: date) -> RecipientFile:
    """The recipients of a campaign file (see the module docstring). Raises
    RecipientFileError for a file that cannot be used at all, with more than ``max_rows``
    lines among them."""
    text, encoding = decode(data)
    first_line = text.split("\n", 1)[0]
    delimiter = sniff_delimiter(first_line)
    records = _records(text, delimiter)
    header: list[str] | None = None
    for _line, cells in records:
        if cells is None:
            raise RecipientFileError("la ligne d'en-tête est malformée (guillemets ?)")
        if any(cell.strip() for cell in cells):
            header = cells
            break
    if header is None:
        raise RecipientFileError("le fichier est vide (pas de ligne d'en-tête)")
    names, positions = _columns(header)
    parser = _LineParser(names, positions, today)
    rows: list[Recipient] = []
    errors: list[LineError] = []
    for line, cells in records:
        if cells is not None and not any(cell.strip() for cell in cells):
            continue  # blank lines are ignored
        if len(rows) + len(errors) >= max_rows:
            raise RecipientFileError(f"le fichier a plus de {max_rows} destinataires")
        if cells is None:
            errors.append(
                LineError(line, "", "", MALFORMED_LINE, "ligne malformée (guillemet non fermé ?)")
            )
            continue
        parsed = parser.parse(line, cells)
        if isinstance(parsed, LineError):
            errors.append(parsed)
        else:
            rows.append(parsed)
    return RecipientFile(encoding, delimiter, names, tuple(rows), tuple(errors))
