"""METADATA.XML: an ebRIM 3.0 SubmitObjectsRequest (IHE ITI TF-3 §4.2, XDM §4.2.1) read into
plain records: one per DocumentEntry (ExtrinsicObject) and the SubmissionSet.

Hardened: parsed by defusedxml with DTDs, entities and external references forbidden (no
billion laughs, no XXE), after a size check, with bounded depth and element count; slot values
longer than ebRIM allows are refused. Only the structure is read here; sizes, hashes and URIs
are checked against the archive by ``reader.py``.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field
from xml.etree.ElementTree import Element, ParseError

import defusedxml
import defusedxml.ElementTree as SafeET

from .hl7v2 import parse_cx, parse_xcn, parse_xon_name
from .limits import (
    MAX_LOCALIZED_STRING,
    MAX_SLOT_VALUE,
    MAX_XML_DEPTH,
    MAX_XML_ELEMENTS,
)
from .model import Author, Code, PatientId, Reason, Refused
from .vocabulary import (
    CLASS_CODE,
    CONFIDENTIALITY_CODE,
    DOCUMENT_AUTHOR,
    DOCUMENT_ENTRY,
    DOCUMENT_PATIENT_ID,
    DOCUMENT_UNIQUE_ID,
    FORMAT_CODE,
    LCM,
    ON_DEMAND_ENTRY,
    RIM,
    SUBMISSION_AUTHOR,
    SUBMISSION_PATIENT_ID,
    SUBMISSION_SET,
    TYPE_CODE,
)

_SHA1 = re.compile(r"^[0-9a-fA-F]{40}$")
_SIZE = re.compile(r"^\d{1,15}$")
_URI_PART = re.compile(r"^(\d{1,3})\|(.*)$", re.DOTALL)


@dataclass
class EntryMetadata:
    """A DocumentEntry as the metadata describes it (not yet checked against the archive)."""

    entry_id: str
    mime_type: str
    uri: str
    size: int
    sha1: str
    title: str | None = None
    creation_time: str | None = None
    type_code: Code | None = None
    class_code: Code | None = None
    format_code: Code | None = None
    confidentiality: list[Code] = field(default_factory=list)
    authors: list[Author] = field(default_factory=list)
    patient_id: PatientId | None = None
    source_patient_id: PatientId | None = None
    unique_id: str | None = None


@dataclass
class SubmissionMetadata:
    patient_id: PatientId | None = None
    submission_time: str | None = None
    title: str | None = None
    authors: list[Author] = field(default_factory=list)


@dataclass
class Metadata:
    entries: list[EntryMetadata]
    submission: SubmissionMetadata | None


def _invalid(text: str) -> Refused:
    return Refused(Reason.METADATA_INVALID, text)


def parse_xml(data: bytes) -> Element:
    """The root element of METADATA.XML, parsed with DTDs and entities forbidden, depth and
    element count bounded."""
    depth = 0
    count = 0
    root: Element | None = None
    try:
        for event, element in SafeET.iterparse(
            io.BytesIO(data), events=("start", "end"), forbid_dtd=True
        ):
            if event == "end":
                depth -= 1
                continue
            root = element if root is None else root
            depth += 1
            count += 1
            if depth > MAX_XML_DEPTH or count > MAX_XML_ELEMENTS:
                raise Refused(
                    Reason.METADATA_MALFORMED,
                    f"METADATA.XML nests deeper than {MAX_XML_DEPTH} or holds more than "
                    f"{MAX_XML_ELEMENTS} elements",
                )
    except defusedxml.DefusedXmlException as error:
        raise Refused(
            Reason.METADATA_FORBIDDEN_XML,
            f"METADATA.XML uses a forbidden XML feature ({type(error).__name__}: DTDs, "
            "entities and external references are refused)",
        ) from None
    except (ParseError, UnicodeError, ValueError) as error:
        raise Refused(
            Reason.METADATA_MALFORMED, f"METADATA.XML is not well-formed XML ({error})"
        ) from None
    if root is None:
        raise Refused(Reason.METADATA_MALFORMED, "METADATA.XML is empty")
    return root


def read_metadata(data: bytes) -> Metadata:
    root = parse_xml(data)
    if root.tag != f"{LCM}SubmitObjectsRequest":
        raise Refused(
            Reason.METADATA_MALFORMED,
            f"METADATA.XML's root is {_local(root.tag)!r}, not an ebRIM 3.0 "
            "lcm:SubmitObjectsRequest",
        )
    registry = root.find(f"{RIM}RegistryObjectList")
    if registry is None:
        raise Refused(Reason.METADATA_MALFORMED, "METADATA.XML has no rim:RegistryObjectList")
    entries = [
        _entry(element)
        for element in registry.findall(f"{RIM}ExtrinsicObject")
        if element.get("objectType", DOCUMENT_ENTRY) in (DOCUMENT_ENTRY, ON_DEMAND_ENTRY)
    ]
    return Metadata(entries=entries, submission=_submission(registry))


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1][:64]


def _text(value: str | None, limit: int, what: str) -> str | None:
    if value is None:
        return None
    if len(value) > limit:
        raise _invalid(f"{what} is longer than {limit} characters (ebRIM 3.0)")
    return value.strip() or None


def slots(element: Element) -> dict[str, list[str]]:
    """The element's own Slots: name → values, each value bounded."""
    found: dict[str, list[str]] = {}
    for slot in element.findall(f"{RIM}Slot"):
        name = slot.get("name") or ""
        values = []
        for value in slot.iterfind(f"{RIM}ValueList/{RIM}Value"):
            text = _text(value.text or "", MAX_SLOT_VALUE, f"a value of slot {name[:40]!r}")
            if text is not None:
                values.append(text)
        found.setdefault(name, []).extend(values)
    return found


def localized_name(element: Element) -> str | None:
    string = element.find(f"{RIM}Name/{RIM}LocalizedString")
    if string is None:
        return None
    return _text(string.get("value"), MAX_LOCALIZED_STRING, "a name")


def _first(found: dict[str, list[str]], name: str) -> str | None:
    values = found.get(name)
    return values[0] if values else None


def _code(classification: Element) -> Code | None:
    code = _text(classification.get("nodeRepresentation"), MAX_SLOT_VALUE, "a code")
    if code is None:
        return None
    return Code(
        code=code,
        scheme=_first(slots(classification), "codingScheme"),
        display=localized_name(classification),
    )


def _author(classification: Element) -> Author:
    found = slots(classification)
    person = _first(found, "authorPerson")
    author = parse_xcn(person) if person else Author()
    institution = _first(found, "authorInstitution")
    return Author(
        family=author.family,
        given=author.given,
        prefix=author.prefix,
        identifier=author.identifier,
        identifier_authority=author.identifier_authority,
        identifier_type=author.identifier_type,
        institution=parse_xon_name(institution) if institution else None,
        role=_first(found, "authorRole"),
        specialty=_first(found, "authorSpecialty"),
    )


def _external_ids(element: Element) -> dict[str, str]:
    found = {}
    for identifier in element.findall(f"{RIM}ExternalIdentifier"):
        scheme = identifier.get("identificationScheme") or ""
        value = _text(identifier.get("value"), MAX_SLOT_VALUE, "an external identifier")
        if value is not None:
            found[scheme] = value
    return found


def uri_of(values: list[str]) -> str | None:
    """The URI slot's value; a long URI is split over values ``1|…``, ``2|…`` (ITI TF-3
    §4.2.3.2.24, as for XDS.b URI slots)."""
    if not values:
        return None
    if len(values) == 1 and not _URI_PART.match(values[0]):
        return values[0]
    parts = []
    for value in values:
        match = _URI_PART.match(value)
        if match is None:
            raise _invalid("a multi-valued URI slot needs 'n|' prefixes on every value")
        parts.append((int(match.group(1)), match.group(2)))
    parts.sort()
    if [number for number, _ in parts] != list(range(1, len(parts) + 1)):
        raise _invalid("the URI slot's parts are not numbered 1, 2, …")
    return "".join(text for _, text in parts)


def _entry(element: Element) -> EntryMetadata:
    entry_id = element.get("id") or ""
    where = f"document entry {entry_id[:64]!r}"
    found = slots(element)
    mime_type = _text(element.get("mimeType"), MAX_SLOT_VALUE, "mimeType")
    uri = uri_of(found.get("URI", []))
    size_text = _first(found, "size")
    sha1 = _first(found, "hash")
    if mime_type is None:
        raise _invalid(f"{where} has no mimeType")
    if uri is None:
        raise _invalid(f"{where} has no URI slot (XDM requires it)")
    if size_text is None or not _SIZE.match(size_text):
        raise _invalid(f"{where} has no size slot, or not a whole number of bytes")
    if sha1 is None or not _SHA1.match(sha1):
        raise _invalid(f"{where} has no hash slot, or not a SHA-1 of 40 hexadecimal digits")
    entry = EntryMetadata(
        entry_id=entry_id,
        mime_type=mime_type,
        uri=uri,
        size=int(size_text),
        sha1=sha1.lower(),
        title=localized_name(element),
        creation_time=_first(found, "creationTime"),
        source_patient_id=_cx(_first(found, "sourcePatientId")),
    )
    for classification in element.findall(f"{RIM}Classification"):
        scheme = classification.get("classificationScheme")
        if scheme == DOCUMENT_AUTHOR:
            entry.authors.append(_author(classification))
        elif scheme == CONFIDENTIALITY_CODE:
            code = _code(classification)
            if code is not None:
                entry.confidentiality.append(code)
        elif scheme == TYPE_CODE:
            entry.type_code = _code(classification)
        elif scheme == CLASS_CODE:
            entry.class_code = _code(classification)
        elif scheme == FORMAT_CODE:
            entry.format_code = _code(classification)
    identifiers = _external_ids(element)
    entry.patient_id = _cx(identifiers.get(DOCUMENT_PATIENT_ID))
    entry.unique_id = identifiers.get(DOCUMENT_UNIQUE_ID)
    return entry


def _cx(value: str | None) -> PatientId | None:
    return parse_cx(value) if value else None


def _submission(registry: Element) -> SubmissionMetadata | None:
    marked = {
        classification.get("classifiedObject")
        for classification in registry.iter(f"{RIM}Classification")
        if classification.get("classificationNode") == SUBMISSION_SET
    }
    for package in registry.findall(f"{RIM}RegistryPackage"):
        identifiers = _external_ids(package)
        if package.get("id") not in marked and SUBMISSION_PATIENT_ID not in identifiers:
            continue  # a folder
        return SubmissionMetadata(
            patient_id=_cx(identifiers.get(SUBMISSION_PATIENT_ID)),
            submission_time=_first(slots(package), "submissionTime"),
            title=localized_name(package),
            authors=[
                _author(classification)
                for classification in package.findall(f"{RIM}Classification")
                if classification.get("classificationScheme") == SUBMISSION_AUTHOR
            ],
        )
    return None
