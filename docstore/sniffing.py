"""What a document really is: its type recognised from its bytes, checked against the declared one.

A filing declares a media type (the attachment's Content-Type, often wrong or generic); the store
looks at the document's first bytes (its "magic number", the approach of the WHATWG MIME Sniffing
standard) and decides:

- the declared type says nothing (``application/octet-stream``, empty) or is an alias
  (``image/jpg``): the document is stored under the recognised type, with a note saying so;
- the declared type names another accepted type than the content (a PDF sent as ``image/jpeg``):
  refused, ``content-type-mismatch``;
- the content is of a type the store does not keep (archives, HTML or SVG that could run script
  in a viewer, executables, unknown binary): refused with the reason.

Pure functions over bytes already read (the head and the tail of the document); no I/O.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass

PDF = "application/pdf"
JPEG = "image/jpeg"
PNG = "image/png"
TIFF = "image/tiff"
DICOM = "application/dicom"
TEXT = "text/plain"
#: An HL7 CDA R2 document: IHE XDS-SD and the French CI-SIS declare it ``text/xml``.
CDA = "text/xml"

ACCEPTED = frozenset({PDF, JPEG, PNG, TIFF, DICOM, TEXT, CDA})

#: Declared types that say nothing about the content.
GENERIC = frozenset(
    {
        "",
        "application/octet-stream",
        "binary/octet-stream",
        "application/binary",
        "application/x-download",
        "application/force-download",
        "application/unknown",
    }
)

#: Names clients use for an accepted type.
ALIASES = {
    "image/jpg": JPEG,
    "image/pjpeg": JPEG,
    "image/x-png": PNG,
    "application/x-pdf": PDF,
    "application/acrobat": PDF,
    "application/xml": CDA,
    "application/hl7-cda+xml": CDA,
    "application/hl7-v3": CDA,
    "application/x-hl7-cda-level-one+xml": CDA,
    "image/tif": TIFF,
    "application/dicom+dcm": DICOM,
}

_UTF_BOMS = (
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
_ROOT_ELEMENT = re.compile(r"<([A-Za-z_][\w.\-]*:)?([A-Za-z_][\w.\-]*)")
_MARKUP_PROLOGUE = re.compile(r"^\s*(<\?.*?\?>\s*|<!--.*?-->\s*)*", re.DOTALL)
_TEXT_CONTROLS = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")


class ContentRefused(Exception):
    """The document is not kept; ``reason`` is a stable code, ``text`` says why to a person."""

    def __init__(self, reason: str, text: str) -> None:
        super().__init__(text)
        self.reason = reason
        self.text = text


@dataclass(frozen=True)
class Classification:
    """The type a document is stored under, and a note when it differs from the declared one."""

    mime_type: str
    note: str | None = None


def normalise_declared(declared: str | None) -> str:
    """The bare, lower-case media type of a Content-Type value (parameters dropped)."""
    return (declared or "").split(";", 1)[0].strip().lower()


def recognise(head: bytes) -> str:
    """A coarse kind of content from its first bytes: an accepted media type, or one of
    ``empty``, ``zip``, ``html``, ``svg``, ``xml``, ``executable``, ``unknown``."""
    if not head:
        return "empty"
    magic = _magic_kind(head)
    if magic is not None:
        return magic
    text = _as_text(head)
    if text is None:
        return "unknown"
    return _markup_kind(text) or TEXT


def _magic_kind(head: bytes) -> str | None:
    if head.startswith(b"%PDF-"):
        return PDF
    if head.startswith(b"\xff\xd8\xff"):
        return JPEG
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    if head.startswith((b"II*\x00", b"MM\x00*")):
        return TIFF
    if head[128:132] == b"DICM":  # DICOM PS3.10 §7.1: 128-byte preamble, then "DICM"
        return DICOM
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")):
        return "zip"
    if head.startswith((b"MZ", b"\x7fELF", b"\xca\xfe\xba\xbe", b"\xcf\xfa\xed\xfe", b"#!")):
        return "executable"
    return None


def _as_text(head: bytes) -> str | None:
    """The head decoded as text (UTF-8 or UTF-16 with a BOM, else UTF-8, else Windows-1252), or
    None when it holds control characters or does not decode: it is binary."""
    encoding = "utf-8"
    for bom, name in _UTF_BOMS:
        if head.startswith(bom):
            head, encoding = head[len(bom) :], name
            break
    try:
        # final=False: a multi-byte character cut at the end of the head is not an error
        text = codecs.getincrementaldecoder(encoding)().decode(head, final=False)
    except UnicodeDecodeError:
        if encoding != "utf-8":
            return None
        text = head.decode("cp1252", errors="replace")
    if _TEXT_CONTROLS.search(text):
        return None
    return text


def _markup_kind(text: str) -> str | None:
    body = _MARKUP_PROLOGUE.sub("", text, count=1)
    lowered = body[:512].lower()
    if lowered.startswith("<!doctype html") or lowered.startswith("<html"):
        return "html"
    if lowered.startswith("<!doctype"):
        body = body[body.find(">") + 1 :].lstrip()
    if not body.startswith("<"):
        return "html" if "<script" in lowered else None
    root = _ROOT_ELEMENT.match(body)
    if root is None:
        return None
    name = root.group(2)
    if name.lower() in {"html", "svg", "xhtml"}:
        return "html" if name.lower() != "svg" else "svg"
    if name == "ClinicalDocument":  # HL7 CDA R2: root element ClinicalDocument (urn:hl7-org:v3)
        return CDA
    return "xml"


_REFUSALS = {
    "empty": ("empty-document", "the document is empty"),
    "zip": (
        "archive-refused",
        "archives are not filed: file the documents inside (pli reads IHE_XDM.zip packages)",
    ),
    "html": ("active-content-refused", "HTML is not filed: a viewer could run its scripts"),
    "svg": ("active-content-refused", "SVG is not filed: a viewer could run its scripts"),
    "executable": ("unsupported-type", "programs are not filed"),
    "xml": ("unsupported-type", "XML other than an HL7 CDA document is not filed"),
    "unknown": (
        "unsupported-type",
        "the content is not a type the store keeps (PDF, JPEG, PNG, TIFF, DICOM, text, CDA)",
    ),
}


def classify(head: bytes, tail: bytes, declared: str | None) -> Classification:
    """The type to store a document under, or ContentRefused.

    ``head`` is the document's first bytes (``limits.SNIFF_HEAD``), ``tail`` its last
    (``limits.PDF_TAIL``); ``declared`` the Content-Type the client gave (None: none)."""
    kind = recognise(head)
    if kind in _REFUSALS:
        reason, text = _REFUSALS[kind]
        raise ContentRefused(reason, text)
    if kind == PDF and b"%%EOF" not in tail:
        raise ContentRefused("truncated-document", "the PDF has no %%EOF marker: it is truncated")
    stated = normalise_declared(declared)
    wanted = ALIASES.get(stated, stated)
    if stated in GENERIC:
        return Classification(kind, f"declared {stated or 'no type'}; recognised as {kind}")
    if wanted == kind:
        note = None if wanted == stated else f"declared {stated}, stored as {kind}"
        return Classification(kind, note)
    if kind == TEXT and wanted.startswith("text/") and wanted not in ACCEPTED:
        # text/csv, text/x-log…: plain text whatever its subtype; never text/html (recognised)
        return Classification(TEXT, f"declared {stated}, stored as {TEXT}")
    raise ContentRefused(
        "content-type-mismatch", f"declared {stated}, but the content is {_describe(kind)}"
    )


def _describe(kind: str) -> str:
    return {
        PDF: "a PDF",
        JPEG: "a JPEG image",
        PNG: "a PNG image",
        TIFF: "a TIFF image",
        DICOM: "a DICOM file",
        TEXT: "plain text",
        CDA: "an HL7 CDA document",
    }.get(kind, kind)
