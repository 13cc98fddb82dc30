"""IHE_XDM.zip packages for tests: realistic valid ones, and every kind of broken or hostile one.

A valid package has the ITI-32 layout (``README.TXT``, ``INDEX.HTM``,
``IHE_XDM/SUBSET01/METADATA.XML`` and the documents beside it), an ebRIM 3.0
SubmitObjectsRequest with the French CI-SIS values (INS patient id, RPPS-based author, LOINC
type code, class code, confidentiality), and CDA R2 documents whose header agrees with it.

    package = build_xdm([XdmDoc(cda_document(CITIZEN))])
    broken = build_xdm([XdmDoc(cda_document(CITIZEN), sha1="0" * 40)])
"""

from __future__ import annotations

import hashlib
import io
import stat
import zipfile
from dataclasses import dataclass, field
from xml.sax.saxutils import quoteattr

from plitest.docstore import CITIZEN

INS_NIR_OID = "1.2.250.1.213.1.4.8"
LOINC = "2.16.840.1.113883.6.1"
RPPS_AUTHORITY = "1.2.250.1.71.4.2.1"
CONFIDENTIALITY_HL7 = "2.16.840.1.113883.5.25"
META_DMP_MSS = "1.2.250.1.213.1.1.4.13"

README = b"""IHE XDM media created by pli tests
Contents: IHE_XDM/SUBSET01 (one submission set)
"""
INDEX = b"""<html><head><title>IHE XDM</title></head><body>
<a href="IHE_XDM/SUBSET01/METADATA.XML">Submission set</a></body></html>
"""


def cda_document(
    ins: str = CITIZEN,
    code: str = "11490-0",
    title: str = "Lettre de liaison à la sortie",
    padding: int = 0,
    ins_root: str = INS_NIR_OID,
    body: str | None = None,
) -> bytes:
    """A small CDA R2 document with a French header (CI-SIS): code, INS of the patient; its body
    is ``body``, or ``padding`` bytes of repeated text."""
    if body is None:
        body = "Observation " * (padding // 12 + 1) if padding else "Sortie le 1er mars."
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<?xml-stylesheet type="text/xsl" href="CDA-FO.xsl"?>
<ClinicalDocument xmlns="urn:hl7-org:v3" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
  <realmCode code="FR"/>
  <typeId root="2.16.840.1.113883.1.3" extension="POCD_HD000040"/>
  <templateId root="2.16.840.1.113883.2.8.2.1"/>
  <templateId root="1.2.250.1.213.1.1.1.1"/>
  <id root="1.2.250.1.213.1.1.9" extension="DOC-{code}"/>
  <code code="{code}" codeSystem="{LOINC}" displayName="{title}"/>
  <title>{title}</title>
  <effectiveTime value="20250301093000+0100"/>
  <confidentialityCode code="N" codeSystem="{CONFIDENTIALITY_HL7}"/>
  <languageCode code="fr-FR"/>
  <recordTarget>
    <patientRole>
      <id root="{ins_root}" extension="{ins}"/>
      <patient><name><family qualifier="BR">DUPONT</family><given>MARIE</given></name>
        <administrativeGenderCode code="F" codeSystem="2.16.840.1.113883.5.1"/>
        <birthTime value="19460203"/></patient>
    </patientRole>
  </recordTarget>
  <author><time value="20250301093000+0100"/>
    <assignedAuthor><id root="{RPPS_AUTHORITY}" extension="810001234567"/>
      <assignedPerson><name><family>MARTIN</family><given>Jeanne</given></name></assignedPerson>
    </assignedAuthor></author>
  <component><nonXMLBody><text mediaType="text/plain">{body}</text></nonXMLBody></component>
</ClinicalDocument>
""".encode()


@dataclass
class XdmDoc:
    """One document of a package and the metadata that describes it (overrides break it)."""

    content: bytes
    name: str = "DOC0001.XML"
    mime_type: str = "text/xml"
    title: str = "Lettre de liaison à la sortie"
    type_code: str = "11490-0"
    type_display: str = "Lettre de liaison à la sortie d'un établissement de soins"
    class_code: str = "11"
    confidentiality: tuple[tuple[str, str], ...] = (("N", CONFIDENTIALITY_HL7),)
    author_id: str = "810001234567"
    author_family: str = "MARTIN"
    author_given: str = "Jeanne"
    institution: str = "CH Exemple"
    creation_time: str = "20250301083000"
    entry_id: str = "Document01"
    patient_ins: str | None = None  # None: the package's patient
    uri: str | None = None  # None: ``name``
    uri_values: list[str] | None = None  # explicit URI slot values (split URIs)
    size: int | None = None  # None: the content's size
    sha1: str | None = None  # None: the content's SHA-1
    extra_slots: dict[str, str] = field(default_factory=dict)


def _slot(name: str, *values: str) -> str:
    listed = "".join(f"<rim:Value>{_escape(value)}</rim:Value>" for value in values)
    return f'<rim:Slot name="{name}"><rim:ValueList>{listed}</rim:ValueList></rim:Slot>'


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _classification(
    scheme: str, owner: str, code: str, coding_scheme: str, display: str, number: int
) -> str:
    return (
        f'<rim:Classification id="cl{number:02d}-{owner}" classificationScheme="{scheme}" '
        f'classifiedObject="{owner}" nodeRepresentation={quoteattr(code)}>'
        f"{_slot('codingScheme', coding_scheme)}"
        f"<rim:Name><rim:LocalizedString value={quoteattr(display)}/></rim:Name>"
        "</rim:Classification>"
    )


def patient_cx(ins: str, oid: str = INS_NIR_OID) -> str:
    return f"{ins}^^^&{oid}&ISO^NH"


def _entry(doc: XdmDoc, patient: str) -> str:
    owner = doc.entry_id
    size = len(doc.content) if doc.size is None else doc.size
    sha1 = doc.sha1 or hashlib.sha1(doc.content).hexdigest()
    uris = doc.uri_values or [doc.name if doc.uri is None else doc.uri]
    author = (
        f"{doc.author_id}^{doc.author_family}^{doc.author_given}^^^Dr^^^"
        f"&{RPPS_AUTHORITY}&ISO^D^^^IDNPS"
    )
    institution = f"{doc.institution}^^^^^&1.2.250.1.71.4.2.2&ISO^IDNST^^^11750000001"
    parts = [
        f'<rim:ExtrinsicObject id="{owner}" mimeType="{doc.mime_type}" '
        'objectType="urn:uuid:7edca82f-054d-47f2-a032-9b2a5b5186c1" '
        'status="urn:oasis:names:tc:ebxml-regrep:StatusType:Approved">',
        _slot("creationTime", doc.creation_time),
        _slot("hash", sha1),
        _slot("languageCode", "fr-FR"),
        _slot("serviceStartTime", "20250227"),
        _slot("size", str(size)),
        _slot("sourcePatientId", patient),
        _slot("sourcePatientInfo", "PID-5|DUPONT^MARIE^^^^^L", "PID-7|19460203", "PID-8|F"),
        _slot("URI", *uris),
        *(_slot(name, value) for name, value in doc.extra_slots.items()),
        f"<rim:Name><rim:LocalizedString value={quoteattr(doc.title)}/></rim:Name>",
        f'<rim:Classification id="au-{owner}" '
        'classificationScheme="urn:uuid:93606bcf-9494-43ec-9b4e-a7748d1a838d" '
        f'classifiedObject="{owner}" nodeRepresentation="">'
        f"{_slot('authorPerson', author)}"
        f"{_slot('authorInstitution', institution)}"
        f"{_slot('authorSpecialty', 'G15_10/SM26^Médecine interne^1.2.250.1.213.1.1.4.5')}"
        "</rim:Classification>",
        _classification(
            "urn:uuid:41a5887f-8865-4c09-adf7-e362475b143a",
            owner,
            doc.class_code,
            "1.2.250.1.213.1.1.4.1",
            "Synthèse",
            1,
        ),
        *(
            _classification(
                "urn:uuid:f4f85eac-e6cb-4883-b524-f2705394840f", owner, code, scheme, code, 2 + i
            )
            for i, (code, scheme) in enumerate(doc.confidentiality)
        ),
        _classification(
            "urn:uuid:a09d5840-386c-46f2-b5ad-9c3699a4309d",
            owner,
            "urn:asip:ci-sis:2010",
            "1.2.250.1.213.1.1.4.2.282",
            "Document à corps non structuré",
            20,
        ),
        _classification(
            "urn:uuid:f0306f51-975f-434e-a61c-c59651d33983",
            owner,
            doc.type_code,
            LOINC,
            doc.type_display,
            21,
        ),
        f'<rim:ExternalIdentifier id="pid-{owner}" registryObject="{owner}" '
        'identificationScheme="urn:uuid:58a6f841-87b3-4a3e-92fd-a8ffeff98427" '
        f'value="{_escape(patient)}"><rim:Name>'
        '<rim:LocalizedString value="XDSDocumentEntry.patientId"/></rim:Name>'
        "</rim:ExternalIdentifier>",
        f'<rim:ExternalIdentifier id="uid-{owner}" registryObject="{owner}" '
        'identificationScheme="urn:uuid:2e82c1f6-a085-4c72-9da3-8640a32e42ab" '
        f'value="1.2.250.1.999.1.{owner[-2:]}"><rim:Name>'
        '<rim:LocalizedString value="XDSDocumentEntry.uniqueId"/></rim:Name>'
        "</rim:ExternalIdentifier>",
        "</rim:ExtrinsicObject>",
    ]
    return "".join(parts)


def metadata_xml(
    docs: list[XdmDoc], patient_ins: str = CITIZEN, patient_oid: str = INS_NIR_OID
) -> bytes:
    """An ebRIM 3.0 SubmitObjectsRequest describing ``docs`` for one patient."""
    package_patient = patient_cx(patient_ins, patient_oid)
    entries = "".join(
        _entry(
            doc, patient_cx(doc.patient_ins, patient_oid) if doc.patient_ins else package_patient
        )
        for doc in docs
    )
    associations = "".join(
        f'<rim:Association id="as{i}" '
        'associationType="urn:oasis:names:tc:ebxml-regrep:AssociationType:HasMember" '
        f'sourceObject="SubmissionSet01" targetObject="{doc.entry_id}">'
        f"{_slot('SubmissionSetStatus', 'Original')}</rim:Association>"
        for i, doc in enumerate(docs)
    )
    recipient = f"{patient_ins}@patient.mssante.fr"
    author = f"810001234567^MARTIN^Jeanne^^^Dr^^^&{RPPS_AUTHORITY}&ISO^D^^^IDNPS"
    submission = (
        '<rim:RegistryPackage id="SubmissionSet01" '
        'objectType="urn:oasis:names:tc:ebxml-regrep:ObjectType:RegistryObject:RegistryPackage">'
        f"{_slot('submissionTime', '20250301094500')}"
        f"{_slot('intendedRecipient', f'|{recipient}^^Internet^{recipient}')}"
        '<rim:Name><rim:LocalizedString value="Envoi de documents"/></rim:Name>'
        '<rim:Classification id="ss-author" '
        'classificationScheme="urn:uuid:a7058bb9-b4e4-4307-ba5b-e3f0ab85e12d" '
        'classifiedObject="SubmissionSet01" nodeRepresentation="">'
        f"{_slot('authorPerson', author)}"
        "</rim:Classification>"
        '<rim:ExternalIdentifier id="ss-pid" registryObject="SubmissionSet01" '
        'identificationScheme="urn:uuid:6b5aea1a-874d-4603-a4bc-96a0a7b38446" '
        f'value="{_escape(package_patient)}"><rim:Name>'
        '<rim:LocalizedString value="XDSSubmissionSet.patientId"/></rim:Name>'
        "</rim:ExternalIdentifier>"
        "</rim:RegistryPackage>"
        '<rim:Classification id="ss-class" classifiedObject="SubmissionSet01" '
        'classificationNode="urn:uuid:a54d6aa5-d40d-43f9-88c5-b4633d873bdd"/>'
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<lcm:SubmitObjectsRequest xmlns:lcm="urn:oasis:names:tc:ebxml-regrep:xsd:lcm:3.0" '
        'xmlns:rim="urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0">'
        f"<rim:RegistryObjectList>{entries}{submission}{associations}"
        "</rim:RegistryObjectList></lcm:SubmitObjectsRequest>\n"
    ).encode()


def zip_entries(entries: list[tuple[str | zipfile.ZipInfo, bytes]], deflate: bool = True) -> bytes:
    """A zip of the entries as given (names unchecked: for hostile packages)."""
    buffer = io.BytesIO()
    method = zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED
    with zipfile.ZipFile(buffer, "w", compression=method) as archive:
        for name, content in entries:
            archive.writestr(name, content)
    return buffer.getvalue()


def build_xdm(
    docs: list[XdmDoc],
    *,
    patient_ins: str = CITIZEN,
    patient_oid: str = INS_NIR_OID,
    subset: str = "IHE_XDM/SUBSET01",
    metadata: bytes | None = None,
    with_metadata: bool = True,
    extra: list[tuple[str | zipfile.ZipInfo, bytes]] | None = None,
) -> bytes:
    """A package: README.TXT, INDEX.HTM, METADATA.XML (built from ``docs`` unless given) and the
    documents in ``subset``; ``extra`` entries are added as they are."""
    entries: list[tuple[str | zipfile.ZipInfo, bytes]] = [
        ("README.TXT", README),
        ("INDEX.HTM", INDEX),
    ]
    if with_metadata:
        entries.append(
            (f"{subset}/METADATA.XML", metadata or metadata_xml(docs, patient_ins, patient_oid))
        )
    entries += [(f"{subset}/{doc.name}", doc.content) for doc in docs]
    return zip_entries(entries + (extra or []))


def symlink_info(name: str) -> zipfile.ZipInfo:
    """A zip entry marked as a Unix symbolic link (its content is the target)."""
    info = zipfile.ZipInfo(name)
    info.create_system = 3
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info


def zip_bomb(uncompressed: int, name: str = "IHE_XDM/SUBSET01/DOC0001.XML") -> bytes:
    """A package whose one document is ``uncompressed`` zeros (deflate: ~1000-fold)."""
    return build_xdm([], extra=[(name, b"\0" * uncompressed)])


def patch_entry(
    data: bytes, name: str, *, size: int | None = None, flags: int | None = None
) -> bytes:
    """Rewrite an entry's declared uncompressed size and/or general purpose flags, in its local
    header and its central directory record (APPNOTE.TXT §4.3.7, §4.3.12)."""
    patched = bytearray(data)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        info = archive.getinfo(name)
    central = 0
    while True:
        central = data.find(b"PK\x01\x02", central)
        length = int.from_bytes(data[central + 28 : central + 30], "little")
        if data[central + 46 : central + 46 + length] == name.encode():
            break
        central += 4
    local = info.header_offset
    if size is not None:
        patched[local + 22 : local + 26] = size.to_bytes(4, "little")
        patched[central + 24 : central + 28] = size.to_bytes(4, "little")
    if flags is not None:
        patched[local + 6 : local + 8] = flags.to_bytes(2, "little")
        patched[central + 8 : central + 10] = flags.to_bytes(2, "little")
    return bytes(patched)


def lying_size_bomb(real: int, declared: int) -> bytes:
    """A package whose document says ``declared`` bytes (as its metadata does) while it
    inflates to ``real``."""
    name = "IHE_XDM/SUBSET01/DOC0001.XML"
    content = b"\0" * real
    doc = XdmDoc(content, size=declared)
    return patch_entry(build_xdm([doc]), name, size=declared)


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<lcm:SubmitObjectsRequest xmlns:lcm="urn:oasis:names:tc:ebxml-regrep:xsd:lcm:3.0">
&lol9;</lcm:SubmitObjectsRequest>
"""

EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<lcm:SubmitObjectsRequest xmlns:lcm="urn:oasis:names:tc:ebxml-regrep:xsd:lcm:3.0">
&xxe;</lcm:SubmitObjectsRequest>
"""


def deep_xml(depth: int) -> bytes:
    return b"<a>" * depth + b"</a>" * depth


def huge_xml(size: int) -> bytes:
    """Well-formed metadata padded to ``size`` bytes with a comment of hexadecimal noise (which
    deflate cannot shrink to a bomb's ratio)."""
    head = b'<?xml version="1.0"?><!--'
    tail = b'--><lcm:SubmitObjectsRequest xmlns:lcm="urn:oasis:names:tc:ebxml-regrep:xsd:lcm:3.0"/>'
    noise = b"".join(hashlib.sha256(b"%d" % i).hexdigest().encode() for i in range(size // 64 + 1))
    return head + noise[: size - len(head) - len(tail)] + tail
