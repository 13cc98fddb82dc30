"""A glance at a CDA R2 document's header: its ``code`` and its patient's identifiers.

Enough to check that the XDS metadata says what the document says (the CI-SIS maps
``ClinicalDocument/code`` to ``typeCode`` and ``recordTarget/patientRole/id`` to ``patientId``).
Parsed incrementally with defusedxml (no DTD, no entities) and abandoned at the first
``component`` (the body, which may embed a large PDF), or after a bounded number of elements.
A document that is not a parseable CDA gives None (the document store decides what to keep); a
CDA that declares a DTD is refused: entity expansion would be the next reader's problem.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from xml.etree.ElementTree import ParseError

import defusedxml
import defusedxml.ElementTree as SafeET

from .model import Code, PatientId, Reason, Refused

HL7 = "{urn:hl7-org:v3}"
#: Elements read before giving up on finding the header's end (a CDA header has ~100-300).
MAX_HEADER_ELEMENTS = 5000
_PATIENT_ID_PATH = [f"{HL7}recordTarget", f"{HL7}patientRole", f"{HL7}id"]


@dataclass(frozen=True)
class CdaHeader:
    code: Code | None
    patient_ids: tuple[PatientId, ...]


def peek_cda_header(content: bytes) -> CdaHeader | None:
    code: Code | None = None
    patients: list[PatientId] = []
    path: list[str] = []
    seen = 0
    try:
        for event, element in SafeET.iterparse(
            io.BytesIO(content), events=("start", "end"), forbid_dtd=True
        ):
            if event == "end":
                path.pop()
                continue
            seen += 1
            path.append(element.tag)
            if len(path) == 1 and element.tag != f"{HL7}ClinicalDocument":
                return None
            if element.tag == f"{HL7}component" or seen > MAX_HEADER_ELEMENTS:
                break
            if path == [f"{HL7}ClinicalDocument", f"{HL7}code"] and element.get("code"):
                code = Code(
                    element.get("code", ""), element.get("codeSystem"), element.get("displayName")
                )
            elif path[1:] == _PATIENT_ID_PATH and element.get("extension"):
                patients.append(PatientId(element.get("extension", ""), element.get("root")))
    except defusedxml.DefusedXmlException:
        raise Refused(
            Reason.DOCUMENT_FORBIDDEN_XML,
            "an XML document of the package declares a DTD or entities: refused",
        ) from None
    except (ParseError, UnicodeError, ValueError):
        return None
    if seen == 0:
        return None
    return CdaHeader(code=code, patient_ids=tuple(patients))
