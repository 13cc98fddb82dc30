"""Reading an IHE_XDM.zip (IHE ITI TF-1 §16, ITI TF-3 §4.2; ITI-32 Distribute Document Set on
Media): the package's documents, each checked against its metadata, or a refusal.

Order of work: the archive's directory is checked (archive.py) before anything is
decompressed; every ``IHE_XDM/<subset>/METADATA.XML`` is parsed (ebrim.py); each DocumentEntry's
URI must resolve to an entry inside its subset, whose size and SHA-1 must equal the ``size`` and
``hash`` slots; all patient identifiers must agree (and name the recipient's INS when the caller
gives it); a CDA's own code and patient must agree with its metadata (cda.py). Only then are the
X-MSS-* headers compared (headers.py): their mismatches are reported, not fatal.

Pure: bytes in, result out; never raises for any input (the hypothesis tests hold it to that).
"""

from __future__ import annotations

import dataclasses
import hashlib
import posixpath
from datetime import datetime
from urllib.parse import unquote, urlsplit

from .archive import SafeArchive
from .cda import peek_cda_header
from .ebrim import EntryMetadata, Metadata, read_metadata
from .headers import header_mismatches
from .hl7v2 import parse_dtm
from .limits import DEFAULT_LIMITS, XdmLimits
from .model import (
    MssHeaders,
    PatientId,
    Reason,
    Refused,
    XdmDocument,
    XdmPackage,
    XdmRefusal,
    XdmResult,
)

ROOT_DIRECTORY = "IHE_XDM"
METADATA_FILE = "METADATA.XML"


def read_xdm(
    data: bytes,
    *,
    headers: MssHeaders | None = None,
    expected_ins: str | None = None,
    limits: XdmLimits = DEFAULT_LIMITS,
) -> XdmResult:
    """The checked documents of an IHE_XDM.zip, or why it is refused for filing.

    ``headers``: the carrying message's X-MSS-CODECDA / X-MSS-INS, compared with the package.
    ``expected_ins``: the recipient citizen's INS; a package for another patient is refused."""
    try:
        return _read(data, headers or MssHeaders(), expected_ins, limits)
    except Refused as refused:
        return XdmRefusal(refused.reason, refused.text)


def _read(
    data: bytes, headers: MssHeaders, expected_ins: str | None, limits: XdmLimits
) -> XdmPackage:
    archive = SafeArchive(data, limits)
    subsets = metadata_locations(archive)
    parsed: list[tuple[str, Metadata]] = []
    for subset, name in subsets:
        size = archive.entries[name].file_size
        if size > limits.max_metadata_size:
            raise Refused(
                Reason.METADATA_TOO_LARGE,
                f"{name} is {size} bytes; the limit is {limits.max_metadata_size}",
            )
        parsed.append((subset, read_metadata(archive.read(name))))
    count = sum(len(metadata.entries) for _, metadata in parsed)
    if count == 0:
        raise Refused(Reason.NO_DOCUMENTS, "the metadata describes no document")
    if count > limits.max_documents:
        raise Refused(
            Reason.TOO_MANY_DOCUMENTS,
            f"the metadata describes {count} documents; the limit is {limits.max_documents}",
        )
    documents = tuple(
        _document(archive, subset, entry)
        for subset, metadata in parsed
        for entry in metadata.entries
    )
    submission = parsed[0][1].submission
    patient = _one_patient(documents, submission.patient_id if submission else None)
    if expected_ins is not None:
        _check_recipient(patient, documents, expected_ins)
    for document in documents:
        _check_cda(document)
    package = XdmPackage(
        documents=documents,
        patient_id=submission.patient_id if submission else None,
        submission_time=_instant(submission.submission_time, "submissionTime")
        if submission
        else None,
        submission_title=submission.title if submission else None,
        submission_authors=tuple(submission.authors) if submission else (),
    )
    mismatches = header_mismatches(headers, documents, package.has_qualified_ins)
    return dataclasses.replace(package, header_mismatches=mismatches)


def metadata_locations(archive: SafeArchive) -> list[tuple[str, str]]:
    """(subset directory, METADATA.XML entry) for every ``IHE_XDM/<subset>/METADATA.XML``."""
    found = []
    for name in sorted(archive.entries):
        parts = name.split("/")
        if (
            len(parts) == 3
            and parts[0].upper() == ROOT_DIRECTORY
            and parts[2].upper() == METADATA_FILE
        ):
            found.append((f"{parts[0]}/{parts[1]}", name))
    if not found:
        raise Refused(
            Reason.NO_METADATA,
            f"no {ROOT_DIRECTORY}/<subset>/{METADATA_FILE} in the zip: not an IHE XDM package",
        )
    return found


def resolve_uri(subset: str, uri: str) -> str:
    """The zip path a DocumentEntry's URI names: relative to its subset's directory, and inside
    it (a URI from the package root, ``IHE_XDM/SUBSET01/DOC.XML``, is accepted too)."""
    parsed = urlsplit(uri)
    if parsed.scheme or parsed.netloc or uri.startswith("/") or "\\" in uri:
        raise Refused(
            Reason.URI_OUTSIDE_SUBSET,
            f"the URI {uri[:100]!r} is not a relative reference inside the package",
        )
    relative = unquote(parsed.path)
    if relative.upper().startswith(subset.upper() + "/"):
        relative = relative[len(subset) + 1 :]
    resolved = posixpath.normpath(posixpath.join(subset, relative))
    if not resolved.upper().startswith(subset.upper() + "/") or "\x00" in resolved:
        raise Refused(
            Reason.URI_OUTSIDE_SUBSET,
            f"the URI {uri[:100]!r} resolves outside {subset}/",
        )
    return resolved


def _document(archive: SafeArchive, subset: str, entry: EntryMetadata) -> XdmDocument:
    wanted = resolve_uri(subset, entry.uri)
    path = archive.find(wanted)
    if path is None:
        raise Refused(
            Reason.DOCUMENT_MISSING,
            f"document entry {entry.entry_id[:64]!r} names {wanted!r}, which is not in the zip",
        )
    declared = archive.entries[path].file_size
    if declared != entry.size:  # before decompressing anything
        raise Refused(
            Reason.SIZE_MISMATCH,
            f"{path} is {declared} bytes; its metadata says {entry.size}",
        )
    content = archive.read(path)
    sha1 = hashlib.sha1(content, usedforsecurity=False).hexdigest()
    if sha1 != entry.sha1:
        raise Refused(
            Reason.HASH_MISMATCH,
            f"{path} has SHA-1 {sha1}; its metadata says {entry.sha1}",
        )
    return XdmDocument(
        path=path,
        uri=entry.uri,
        entry_id=entry.entry_id,
        mime_type=entry.mime_type,
        size=len(content),
        sha1=sha1,
        title=entry.title,
        type_code=entry.type_code,
        class_code=entry.class_code,
        format_code=entry.format_code,
        confidentiality=tuple(entry.confidentiality),
        authors=tuple(entry.authors),
        creation_time=_instant(entry.creation_time, "creationTime"),
        patient_id=entry.patient_id,
        source_patient_id=entry.source_patient_id,
        unique_id=entry.unique_id,
        content=content,
    )


def _instant(value: str | None, slot: str) -> datetime | None:
    if value is None:
        return None
    try:
        return parse_dtm(value)
    except ValueError:
        raise Refused(
            Reason.METADATA_INVALID, f"the {slot} slot {value[:40]!r} is not an HL7 DTM"
        ) from None


def _key(patient: PatientId) -> tuple[str, str]:
    return patient.value.upper(), (patient.authority or "")


def _one_patient(
    documents: tuple[XdmDocument, ...], submission_patient: PatientId | None
) -> PatientId | None:
    """The package's single patient (documents and submission set agree), or a refusal."""
    ids = [submission_patient, *(document.patient_id for document in documents)]
    distinct = {_key(pid): pid for pid in ids if pid is not None}
    if len(distinct) > 1:
        shown = ", ".join(
            f"{value} ({authority or 'no authority'})" for value, authority in distinct
        )
        raise Refused(
            Reason.PATIENT_INCONSISTENT,
            f"the package's documents name different patients: {shown}",
        )
    return next(iter(distinct.values()), None)


def _check_recipient(
    patient: PatientId | None, documents: tuple[XdmDocument, ...], expected_ins: str
) -> None:
    candidates = [patient, *(document.source_patient_id for document in documents)]
    for pid in candidates:
        if pid is not None and pid.kind is not None and pid.value.upper() != expected_ins.upper():
            raise Refused(
                Reason.WRONG_PATIENT,
                f"the package is for {pid.kind} {pid.value}, the recipient's INS is {expected_ins}",
            )


def _check_cda(document: XdmDocument) -> None:
    if not document.is_cda:
        return
    try:
        header = peek_cda_header(document.content)
    except Refused as refused:
        raise Refused(refused.reason, f"{document.path}: {refused.text}") from None
    if header is None:
        return
    if (
        header.code is not None
        and document.type_code is not None
        and header.code.code != document.type_code.code
    ):
        raise Refused(
            Reason.CDA_INCONSISTENT,
            f"{document.path}: the metadata's typeCode is {document.type_code.code}, the "
            f"CDA's code is {header.code.code}",
        )
    expected = document.patient_id
    if expected is None or expected.authority is None:
        return
    for pid in header.patient_ids:
        if pid.authority == expected.authority and pid.value.upper() != expected.value.upper():
            raise Refused(
                Reason.CDA_INCONSISTENT,
                f"{document.path}: the metadata's patient is {expected.value}, the CDA's "
                f"recordTarget is {pid.value} (same authority {expected.authority})",
            )
