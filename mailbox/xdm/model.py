"""What reading an IHE_XDM.zip gives: a package of checked documents, or a refusal.

Plain frozen dataclasses; the refusal reasons are stable codes (logged, shown to operators, used
by the filing client to decide what to tell the citizen).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from pli.policy.ins import is_valid_ins

#: INS assigning authorities (mssante.md §3; ANS "Référentiel INS"): NIR, NIA, and their test OIDs.
INS_NIR_OID = "1.2.250.1.213.1.4.8"
INS_NIA_OID = "1.2.250.1.213.1.4.9"
INS_NIR_TEST_OID = "1.2.250.1.213.1.4.10"
INS_NIA_TEST_OID = "1.2.250.1.213.1.4.11"
INS_OIDS = {
    INS_NIR_OID: "INS-NIR",
    INS_NIA_OID: "INS-NIA",
    INS_NIR_TEST_OID: "INS-NIR-TEST",
    INS_NIA_TEST_OID: "INS-NIA-TEST",
}

#: Media types an XDM document entry gives a CDA R2 document (IHE XDS: text/xml).
CDA_MEDIA_TYPES = frozenset({"text/xml", "application/xml", "application/hl7-cda+xml"})

#: French restriction codes carried as confidentialityCode (CI-SIS, table MetaDMP/MSS).
INVISIBLE_PATIENT = "INVISIBLE_PATIENT"
MASQUE_PS = "MASQUE_PS"


class Reason(StrEnum):
    """Why a package is refused for filing."""

    NOT_ZIP = "xdm-not-zip"
    TOO_LARGE = "xdm-too-large"
    TOO_MANY_ENTRIES = "xdm-too-many-entries"
    BOMB = "xdm-bomb"
    UNSAFE_NAME = "xdm-unsafe-name"
    SYMLINK = "xdm-symlink"
    ENCRYPTED = "xdm-encrypted"
    DUPLICATE_NAME = "xdm-duplicate-name"
    UNSUPPORTED_COMPRESSION = "xdm-unsupported-compression"
    CORRUPT_ENTRY = "xdm-corrupt-entry"
    NO_METADATA = "xdm-no-metadata"
    METADATA_TOO_LARGE = "xdm-metadata-too-large"
    METADATA_FORBIDDEN_XML = "xdm-metadata-forbidden-xml"
    METADATA_MALFORMED = "xdm-metadata-malformed"
    METADATA_INVALID = "xdm-metadata-invalid"
    NO_DOCUMENTS = "xdm-no-documents"
    TOO_MANY_DOCUMENTS = "xdm-too-many-documents"
    URI_OUTSIDE_SUBSET = "xdm-uri-outside-subset"
    DOCUMENT_MISSING = "xdm-document-missing"
    SIZE_MISMATCH = "xdm-size-mismatch"
    HASH_MISMATCH = "xdm-hash-mismatch"
    PATIENT_INCONSISTENT = "xdm-patient-inconsistent"
    CDA_INCONSISTENT = "xdm-cda-inconsistent"
    DOCUMENT_FORBIDDEN_XML = "xdm-document-forbidden-xml"
    WRONG_PATIENT = "xdm-wrong-patient"


class Refused(Exception):
    """Raised inside the reader; ``read_xdm`` turns it into an XdmRefusal."""

    def __init__(self, reason: Reason, text: str) -> None:
        super().__init__(text)
        self.reason = reason
        self.text = text


@dataclass(frozen=True)
class Code:
    """A coded value: ``code`` in ``scheme`` (an OID), with its display name when given."""

    code: str
    scheme: str | None = None
    display: str | None = None


@dataclass(frozen=True)
class PatientId:
    """An HL7 CX patient identifier: the value and its assigning authority (an OID)."""

    value: str
    authority: str | None = None
    id_type: str | None = None

    @property
    def kind(self) -> str | None:
        """INS-NIR, INS-NIA (or their -TEST forms) when the authority is an INS one."""
        return INS_OIDS.get(self.authority or "")

    @property
    def is_qualified_ins(self) -> bool:
        """An INS authority and a well-formed matricule with a correct key."""
        return self.kind is not None and is_valid_ins(self.value)


@dataclass(frozen=True)
class Author:
    """A document's author (XDS author classification): person, identifier, institution."""

    family: str | None = None
    given: str | None = None
    prefix: str | None = None
    identifier: str | None = None  # RPPS-based national id of a professional, …
    identifier_authority: str | None = None
    identifier_type: str | None = None
    institution: str | None = None
    role: str | None = None
    specialty: str | None = None

    @property
    def name(self) -> str | None:
        parts = [part for part in (self.prefix, self.given, self.family) if part]
        return " ".join(parts) or self.institution


@dataclass(frozen=True)
class XdmDocument:
    """One document of the package, its size and SHA-1 checked against the metadata."""

    path: str  # the zip entry's name
    uri: str  # as the metadata gives it
    entry_id: str  # the ExtrinsicObject's id
    mime_type: str
    size: int
    sha1: str
    title: str | None
    type_code: Code | None
    class_code: Code | None
    format_code: Code | None
    confidentiality: tuple[Code, ...]
    authors: tuple[Author, ...]
    creation_time: datetime | None
    patient_id: PatientId | None
    source_patient_id: PatientId | None
    unique_id: str | None
    content: bytes = field(repr=False)

    @property
    def is_cda(self) -> bool:
        return self.mime_type.lower() in CDA_MEDIA_TYPES

    @property
    def invisible_to_patient(self) -> bool:
        """Flagged never to be shown to the patient (policy P7)."""
        return any(code.code == INVISIBLE_PATIENT for code in self.confidentiality)

    @property
    def hidden_from_professionals(self) -> bool:
        return any(code.code == MASQUE_PS for code in self.confidentiality)


@dataclass(frozen=True)
class HeaderMismatch:
    """An X-MSS-* header that disagrees with the package (reported, not a refusal)."""

    header: str
    reason: str
    text: str


@dataclass(frozen=True)
class XdmPackage:
    documents: tuple[XdmDocument, ...]
    patient_id: PatientId | None  # the submission set's
    submission_time: datetime | None
    submission_title: str | None
    submission_authors: tuple[Author, ...]
    header_mismatches: tuple[HeaderMismatch, ...] = ()

    @property
    def has_qualified_ins(self) -> bool:
        ids = [self.patient_id, *(d.patient_id for d in self.documents)]
        return any(pid is not None and pid.is_qualified_ins for pid in ids)


@dataclass(frozen=True)
class XdmRefusal:
    """The package is refused for filing: a stable reason and a precise text."""

    reason: Reason
    text: str


XdmResult = XdmPackage | XdmRefusal


@dataclass(frozen=True)
class MssHeaders:
    """The MSSanté headers of the message that carried the package (None: absent)."""

    codecda: str | None = None  # X-MSS-CODECDA: CDA codes, comma-separated
    ins: str | None = None  # X-MSS-INS: O (a qualified INS is present) or N
