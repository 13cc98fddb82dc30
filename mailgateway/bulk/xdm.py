"""Writing IHE_XDM.zip packages for campaigns carrying CDA documents (IHE ITI TF-1 §16, ITI-32
Distribute Document Set on Media; ITI TF-3 §4.2 metadata, with the French CI-SIS values).

The package: ``README.TXT`` and ``INDEX.HTM`` at the root, ``IHE_XDM/SUBSET01/METADATA.XML``
(an ebRIM 3.0 ``lcm:SubmitObjectsRequest``: one DocumentEntry per document with its ``hash``
(SHA-1), ``size``, ``URI``, ``creationTime``, ``sourcePatientId`` (the INS, OID
``1.2.250.1.213.1.4.8``), ``sourcePatientInfo`` (names, birth date), ``typeCode`` (the CDA's
``code``), ``classCode``, ``confidentialityCode``, ``formatCode``, author; the SubmissionSet with
its author, patient and intended recipient) and the documents beside it.

:func:`cda_facts` reads what the metadata needs from a CDA header (its code, its patient);
:func:`mss_headers` gives ``X-MSS-CODECDA`` and ``X-MSS-INS`` (mssante.md §5). The bulk sender
reads every package it builds back with :func:`pli.mailbox.xdm.read_xdm` before sending it, so a
package that a receiver would refuse is a row error of the dry run, never a message sent.

Pure: bytes in, bytes out. XML is built with ElementTree (escaped), never by string pasting.
"""

from __future__ import annotations

import hashlib
import io
import uuid
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from xml.etree import ElementTree as ET

from pli.mailbox.xdm.cda import peek_cda_header
from pli.mailbox.xdm.model import INS_NIR_OID, Code, Refused
from pli.mailbox.xdm.reader import METADATA_FILE, ROOT_DIRECTORY
from pli.mailbox.xdm.vocabulary import (
    CLASS_CODE,
    CONFIDENTIALITY_CODE,
    DOCUMENT_AUTHOR,
    DOCUMENT_ENTRY,
    DOCUMENT_PATIENT_ID,
    DOCUMENT_UNIQUE_ID,
    FORMAT_CODE,
    LCM,
    LCM_NS,
    RIM,
    RIM_NS,
    SUBMISSION_AUTHOR,
    SUBMISSION_PATIENT_ID,
    SUBMISSION_SET,
    SUBMISSION_SOURCE_ID,
    SUBMISSION_UNIQUE_ID,
    TYPE_CODE,
)

SUBSET = f"{ROOT_DIRECTORY}/SUBSET01"

APPROVED = "urn:oasis:names:tc:ebxml-regrep:StatusType:Approved"
HAS_MEMBER = "urn:oasis:names:tc:ebxml-regrep:AssociationType:HasMember"
REGISTRY_PACKAGE = "urn:oasis:names:tc:ebxml-regrep:ObjectType:RegistryObject:RegistryPackage"
#: Code systems (CI-SIS, "Jeux de valeurs"): LOINC for typeCode, the ASIP class codes, HL7
#: confidentiality, the French restriction codes (TRE_A07), the CI-SIS format codes; the RPPS
#: and FINESS identifier authorities.
LOINC = "2.16.840.1.113883.6.1"
CLASS_SCHEME = "1.2.250.1.213.1.1.4.1"
CONFIDENTIALITY_HL7 = "2.16.840.1.113883.5.25"
CONFIDENTIALITY_FR = "1.2.250.1.213.1.1.4.13"
FORMAT_SCHEME = "1.2.250.1.213.1.1.4.2.282"
RPPS_AUTHORITY = "1.2.250.1.71.4.2.1"
FINESS_AUTHORITY = "1.2.250.1.71.4.2.2"
#: ITU-T X.667: an OID from a UUID (deterministic unique ids for entries and submission sets).
UUID_OID_ARC = "2.25"
#: The French restriction codes are confidentiality codes of their own scheme (policy P7).
FRENCH_RESTRICTIONS = frozenset({"INVISIBLE_PATIENT", "MASQUE_PS", "INVISIBLE_REP_LEGAUX"})

DEFAULT_CLASS = Code("11", CLASS_SCHEME, "Compte rendu")
DEFAULT_FORMAT = Code("urn:asip:ci-sis:2010", FORMAT_SCHEME, "Document CDA")
NORMAL = Code("N", CONFIDENTIALITY_HL7, "Normal")

ET.register_namespace("rim", RIM_NS)
ET.register_namespace("lcm", LCM_NS)


class CdaUnusable(Exception):
    """A file given as a CDA document is not one the package can describe; ``text`` French."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


@dataclass(frozen=True)
class Patient:
    ins: str
    family_name: str
    given_names: str
    birth_date: date
    address: str  # the citizen's mailbox: the submission set's intended recipient


@dataclass(frozen=True)
class XdmAuthor:
    """Who wrote the documents: a professional (RPPS-based national id) and/or the
    institution (FINESS)."""

    institution: str
    institution_id: str = ""
    person_id: str = ""
    family: str = ""
    given: str = ""


@dataclass(frozen=True)
class XdmDocumentSpec:
    filename: str
    content: bytes
    type_code: Code
    title: str
    class_code: Code = DEFAULT_CLASS
    format_code: Code = DEFAULT_FORMAT
    confidentiality: tuple[Code, ...] = (NORMAL,)
    mime_type: str = "text/xml"


@dataclass(frozen=True)
class XdmPackageSpec:
    patient: Patient
    author: XdmAuthor
    documents: Sequence[XdmDocumentSpec]
    submitted_at: datetime
    source_oid: str  # the sending system's OID (submission set sourceId)
    seed: str  # makes the unique ids deterministic (campaign id and row key)
    title: str = "Envoi de documents"
    extra: dict[str, bytes] = field(default_factory=dict)


def confidentiality_code(code: str) -> Code:
    scheme = CONFIDENTIALITY_FR if code in FRENCH_RESTRICTIONS else CONFIDENTIALITY_HL7
    return Code(code, scheme, code)


def cda_facts(content: bytes, filename: str, ins: str) -> Code:
    """The type code of a CDA document for ``ins``: its ``ClinicalDocument/code``; the CDA must
    name this patient when it names one by INS. Raises CdaUnusable."""
    try:
        header = peek_cda_header(content)
    except Refused as refused:
        raise CdaUnusable(f"{filename} : {refused.text}") from None
    if header is None:
        raise CdaUnusable(f"{filename} n'est pas un document CDA R2 (ClinicalDocument)")
    if header.code is None or not header.code.code:
        raise CdaUnusable(f"{filename} : le document CDA n'a pas de code (ClinicalDocument/code)")
    for patient in header.patient_ids:
        if patient.authority == INS_NIR_OID and patient.value.upper() != ins.upper():
            raise CdaUnusable(f"{filename} : le document CDA concerne un autre patient (INS)")
    code = header.code
    return Code(code.code, code.scheme or LOINC, code.display)


def mss_headers(documents: Sequence[XdmDocumentSpec]) -> dict[str, str]:
    """``X-MSS-CODECDA`` (each CDA's code, comma-separated) and ``X-MSS-INS`` (``O``: the
    package names a qualified INS, which ours always does)."""
    codes: list[str] = []
    for document in documents:
        if document.type_code.code not in codes:
            codes.append(document.type_code.code)
    return {"X-MSS-CODECDA": ",".join(codes), "X-MSS-INS": "O"}


def uuid_oid(seed: str) -> str:
    """An OID under 2.25 (ITU-T X.667) derived from ``seed``: the same seed, the same OID."""
    return f"{UUID_OID_ARC}.{uuid.uuid5(uuid.NAMESPACE_OID, seed).int}"


def _dtm(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%d%H%M%S")


def _hl7(text: str) -> str:
    """HL7 v2.5 §2.7 escapes for a component value."""
    escaped = text.replace("\\", "\\E\\")
    for char, escape in (("|", "\\F\\"), ("^", "\\S\\"), ("&", "\\T\\"), ("~", "\\R\\")):
        escaped = escaped.replace(char, escape)
    return escaped


def patient_cx(ins: str) -> str:
    return f"{ins}^^^&{INS_NIR_OID}&ISO^NH"


def _slot(parent: ET.Element, name: str, *values: str) -> None:
    slot = ET.SubElement(parent, f"{RIM}Slot", name=name)
    listed = ET.SubElement(slot, f"{RIM}ValueList")
    for value in values:
        ET.SubElement(listed, f"{RIM}Value").text = value


def _name(parent: ET.Element, text: str) -> None:
    name = ET.SubElement(parent, f"{RIM}Name")
    ET.SubElement(name, f"{RIM}LocalizedString", value=text)


def _classification(parent: ET.Element, scheme: str, owner: str, code: Code, number: int) -> None:
    element = ET.SubElement(
        parent,
        f"{RIM}Classification",
        id=f"cl{number:02d}-{owner}",
        classificationScheme=scheme,
        classifiedObject=owner,
        nodeRepresentation=code.code,
    )
    _slot(element, "codingScheme", code.scheme or "")
    _name(element, code.display or code.code)


def _author(parent: ET.Element, scheme: str, owner: str, author: XdmAuthor) -> None:
    element = ET.SubElement(
        parent,
        f"{RIM}Classification",
        id=f"au-{owner}",
        classificationScheme=scheme,
        classifiedObject=owner,
        nodeRepresentation="",
    )
    if author.person_id or author.family:
        person = (
            f"{_hl7(author.person_id)}^{_hl7(author.family)}^{_hl7(author.given)}^^^^^^"
            f"&{RPPS_AUTHORITY}&ISO^D^^^IDNPS"
        )
        _slot(element, "authorPerson", person)
    institution = _hl7(author.institution)
    if author.institution_id:
        institution += f"^^^^^&{FINESS_AUTHORITY}&ISO^IDNST^^^{_hl7(author.institution_id)}"
    _slot(element, "authorInstitution", institution)


def _identifier(parent: ET.Element, scheme: str, owner: str, value: str, label: str) -> None:
    element = ET.SubElement(
        parent,
        f"{RIM}ExternalIdentifier",
        id=f"ei-{label}-{owner}",
        registryObject=owner,
        identificationScheme=scheme,
        value=value,
    )
    _name(element, label)


def _entry(
    registry: ET.Element, spec: XdmPackageSpec, document: XdmDocumentSpec, number: int, uri: str
) -> str:
    owner = f"Document{number:02d}"
    patient = spec.patient
    element = ET.SubElement(
        registry,
        f"{RIM}ExtrinsicObject",
        id=owner,
        mimeType=document.mime_type,
        objectType=DOCUMENT_ENTRY,
        status=APPROVED,
    )
    _slot(element, "creationTime", _dtm(spec.submitted_at))
    _slot(element, "hash", hashlib.sha1(document.content, usedforsecurity=False).hexdigest())
    _slot(element, "languageCode", "fr-FR")
    _slot(element, "size", str(len(document.content)))
    _slot(element, "sourcePatientId", patient_cx(patient.ins))
    _slot(
        element,
        "sourcePatientInfo",
        f"PID-3|{patient_cx(patient.ins)}",
        f"PID-5|{_hl7(patient.family_name)}^{_hl7(patient.given_names)}^^^^^L",
        f"PID-7|{patient.birth_date:%Y%m%d}",
    )
    _slot(element, "URI", uri)
    _name(element, document.title)
    _author(element, DOCUMENT_AUTHOR, owner, spec.author)
    _classification(element, CLASS_CODE, owner, document.class_code, 1)
    for index, code in enumerate(document.confidentiality):
        _classification(element, CONFIDENTIALITY_CODE, owner, code, 2 + index)
    _classification(element, FORMAT_CODE, owner, document.format_code, 20)
    _classification(element, TYPE_CODE, owner, document.type_code, 21)
    _identifier(element, DOCUMENT_PATIENT_ID, owner, patient_cx(patient.ins), "patientId")
    unique = uuid_oid(f"{spec.seed}/{number}/{document.filename}")
    _identifier(element, DOCUMENT_UNIQUE_ID, owner, unique, "uniqueId")
    return owner


def metadata_xml(spec: XdmPackageSpec, uris: Sequence[str]) -> bytes:
    """The SubmitObjectsRequest describing ``spec.documents`` (stored at ``uris``)."""
    root = ET.Element(f"{LCM}SubmitObjectsRequest")
    registry = ET.SubElement(root, f"{RIM}RegistryObjectList")
    owners = [
        _entry(registry, spec, document, number, uri)
        for number, (document, uri) in enumerate(zip(spec.documents, uris, strict=True), 1)
    ]
    package = ET.SubElement(
        registry, f"{RIM}RegistryPackage", id="SubmissionSet01", objectType=REGISTRY_PACKAGE
    )
    recipient = spec.patient.address
    _slot(package, "submissionTime", _dtm(spec.submitted_at))
    _slot(package, "intendedRecipient", f"|{recipient}^^Internet^{recipient}")
    _name(package, spec.title)
    _author(package, SUBMISSION_AUTHOR, "SubmissionSet01", spec.author)
    _identifier(
        package, SUBMISSION_PATIENT_ID, "SubmissionSet01", patient_cx(spec.patient.ins), "pid"
    )
    _identifier(package, SUBMISSION_UNIQUE_ID, "SubmissionSet01", uuid_oid(spec.seed), "uid")
    _identifier(package, SUBMISSION_SOURCE_ID, "SubmissionSet01", spec.source_oid, "source")
    ET.SubElement(
        registry,
        f"{RIM}Classification",
        id="ss-class",
        classifiedObject="SubmissionSet01",
        classificationNode=SUBMISSION_SET,
    )
    for index, owner in enumerate(owners):
        association = ET.SubElement(
            registry,
            f"{RIM}Association",
            id=f"as{index:02d}",
            associationType=HAS_MEMBER,
            sourceObject="SubmissionSet01",
            targetObject=owner,
        )
        _slot(association, "SubmissionSetStatus", "Original")
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(
        root, encoding="utf-8", xml_declaration=False
    )


def _readme(spec: XdmPackageSpec, names: Sequence[str]) -> bytes:
    lines = [
        "IHE XDM (ITI-32) - Envoi de documents de sante",
        f"Emetteur : {spec.author.institution}",
        f"Date : {spec.submitted_at.astimezone(UTC):%Y-%m-%d %H:%M} UTC",
        f"Contenu : {SUBSET} ({len(names)} document(s))",
        *(f"  - {name}" for name in names),
        "",
    ]
    return "\r\n".join(lines).encode("utf-8")


def _index(names: Sequence[str]) -> bytes:
    root = ET.Element("html")
    head = ET.SubElement(root, "head")
    ET.SubElement(head, "title").text = "IHE XDM"
    body = ET.SubElement(root, "body")
    link = ET.SubElement(body, "a", href=f"{SUBSET}/{METADATA_FILE}")
    link.text = "Metadonnees (METADATA.XML)"
    listing = ET.SubElement(body, "ul")
    for name in names:
        item = ET.SubElement(listing, "li")
        ET.SubElement(item, "a", href=f"{SUBSET}/{name}").text = name
    return ET.tostring(root, encoding="utf-8", method="html")


def build_package(spec: XdmPackageSpec) -> bytes:
    """The IHE_XDM.zip of ``spec`` (deflate, as ITI TF-1 §16 asks); documents are stored as
    ``DOC0001.XML``, … in the subset directory."""
    names = [f"DOC{number:04d}.XML" for number in range(1, len(spec.documents) + 1)]
    entries = [
        ("README.TXT", _readme(spec, names)),
        ("INDEX.HTM", _index(names)),
        (f"{SUBSET}/{METADATA_FILE}", metadata_xml(spec, names)),
        *(
            (f"{SUBSET}/{name}", doc.content)
            for name, doc in zip(names, spec.documents, strict=True)
        ),
    ]
    buffer = io.BytesIO()
    stamp = spec.submitted_at.astimezone(UTC).timetuple()[:6]
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, content in entries:
            info = zipfile.ZipInfo(name, date_time=stamp)
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, content)
    return buffer.getvalue()
