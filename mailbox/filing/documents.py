"""The documents one filing sends to the document store, built from the message's bytes.

An ordinary attachment gives one document: its bytes decoded from the transfer encoding, its
declared type, its file name as title, the message's date, and its author (the sender as the
directory knows them). An IHE_XDM.zip gives one document per entry of the package, once
:func:`pli.mailbox.xdm.read_xdm` has verified it (the recipient's INS and the X-MSS-* headers
passed): title, type code, author, creation date and confidentiality come from its metadata. A
refused package is a refusal with the reader's reason, never an exception.

Documents the patient must not see (INVISIBLE_PATIENT, or INVISIBLE_REPRESENTANTS_LEGAUX: a
guardian acts in the citizen's documents, policy P9) are never filed (policy P7): they are
listed as skipped.

Pure: bytes in, documents out (run it in a thread: a package may inflate to 64 MiB).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field

from pli.mailbox.mime.structure import parse_structure
from pli.mailbox.xdm import HeaderMismatch, MssHeaders, XdmDocument, XdmRefusal, read_xdm
from pli.policy.documents import restrictions

from .limits import CODE_LENGTH, MEDIA_TYPE_LENGTH, MESSAGE_ID_LENGTH, NAME_LENGTH, TITLE_LENGTH
from .reasons import (
    ENCODING_UNSUPPORTED,
    INVISIBLE_TO_PATIENT,
    NOTHING_TO_FILE,
    PART_NOT_FOUND,
)
from .source import (
    MessageFacts,
    UndecodableBody,
    decode_body,
    filename_of,
    is_xdm,
    leaf_at,
    media_type_of,
    part_body,
)

#: A title when neither a file name, nor the metadata, nor the subject gives one.
DEFAULT_TITLE = "Document"
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")
_SPACES = re.compile(r"\s{2,}")


@dataclass(frozen=True, slots=True)
class Sender:
    """Who wrote the message, as the directory knows them (the From: address otherwise)."""

    address: str
    name: str | None = None
    identifier: str | None = None  # the professional's RPPS-based national identifier


@dataclass(frozen=True)
class OutgoingDocument:
    """One POST to the document store: the form ``fields``, the file's name, type and bytes."""

    source_part: str  # the part path, and the path inside the package for an XDM document
    filename: str
    mime_type: str
    fields: dict[str, str]
    content: bytes = field(repr=False)

    @property
    def title(self) -> str:
        return self.fields["title"]


@dataclass(frozen=True, slots=True)
class Skipped:
    source_part: str
    reason: str


@dataclass(frozen=True, slots=True)
class Refusal:
    reason: str
    detail: str  # for operators (English, may name the package's entries)


@dataclass(frozen=True)
class Prepared:
    documents: tuple[OutgoingDocument, ...] = ()
    skipped: tuple[Skipped, ...] = ()
    refusal: Refusal | None = None
    header_mismatches: tuple[HeaderMismatch, ...] = ()


def text_field(value: str | None, limit: int) -> str:
    """A value the store accepts: control characters made spaces, spaces collapsed, cut."""
    if not value:
        return ""
    cleaned = _SPACES.sub(" ", _CONTROL.sub(" ", value)).strip()
    return cleaned[:limit].strip()


def prepare(
    raw: bytes,
    part_path: str,
    *,
    ins: str,
    message_id: str,
    facts: MessageFacts,
    sender: Sender,
) -> Prepared:
    """What filing part ``part_path`` of the message ``raw`` for citizen ``ins`` sends."""
    part = leaf_at(parse_structure(raw), part_path)
    if part is None:
        return Prepared(refusal=Refusal(PART_NOT_FOUND, f"no leaf part {part_path!r}"))
    try:
        content = decode_body(part_body(raw, part), part["encoding"])
    except UndecodableBody as error:
        return Prepared(refusal=Refusal(ENCODING_UNSUPPORTED, str(error)))
    common = {
        "source_message_id": text_field(message_id, MESSAGE_ID_LENGTH),
        "author_name": text_field(sender.name or facts.sender_name or sender.address, NAME_LENGTH),
        "author_id": text_field(sender.identifier, NAME_LENGTH),
    }
    if is_xdm(part):
        return _package(content, part_path, ins=ins, facts=facts, common=common)
    filename = text_field(filename_of(part), TITLE_LENGTH)
    fields = {
        **common,
        "title": filename or text_field(facts.subject, TITLE_LENGTH) or DEFAULT_TITLE,
        "source_part": part_path,
        "document_date": facts.sent_at.isoformat() if facts.sent_at else "",
        "confidentiality": "visible",
        "mime_type": text_field(media_type_of(part), MEDIA_TYPE_LENGTH),
    }
    return Prepared(
        documents=(_document(part_path, filename, fields["mime_type"], fields, content),)
    )


def _package(
    data: bytes, part_path: str, *, ins: str, facts: MessageFacts, common: dict[str, str]
) -> Prepared:
    result = read_xdm(
        data, headers=MssHeaders(codecda=facts.codecda, ins=facts.ins_flag), expected_ins=ins
    )
    if isinstance(result, XdmRefusal):
        return Prepared(refusal=Refusal(result.reason.value, result.text))
    documents: list[OutgoingDocument] = []
    skipped: list[Skipped] = []
    for index, document in enumerate(result.documents, start=1):
        source_part = f"{part_path}/{document.path}"
        if len(source_part) > NAME_LENGTH:  # a long entry name: its position names it
            source_part = f"{part_path}/#{index}"
        patient, representatives = restrictions(code.code for code in document.confidentiality)
        if patient or representatives:  # policy P7
            skipped.append(Skipped(source_part, INVISIBLE_TO_PATIENT))
            continue
        documents.append(_xdm_document(document, source_part, common))
    refusal = None
    if not documents:
        refusal = Refusal(
            NOTHING_TO_FILE, "every document of the package is invisible to the patient"
        )
    return Prepared(tuple(documents), tuple(skipped), refusal, result.header_mismatches)


def _xdm_document(
    document: XdmDocument, source_part: str, common: dict[str, str]
) -> OutgoingDocument:
    author = document.authors[0] if document.authors else None
    name = document.path.rsplit("/", 1)[-1]
    type_code = document.type_code
    fields = {
        **common,
        "title": text_field(document.title, TITLE_LENGTH) or name,
        "source_part": source_part,
        "type_code": text_field(type_code.code if type_code else None, CODE_LENGTH),
        "type_code_scheme": text_field(type_code.scheme if type_code else None, CODE_LENGTH),
        "document_date": document.creation_time.isoformat() if document.creation_time else "",
        "confidentiality": "hidden" if document.hidden_from_professionals else "visible",
        "mime_type": text_field(document.mime_type, MEDIA_TYPE_LENGTH),
    }
    if author is not None and (author.name or author.identifier):
        fields["author_name"] = text_field(author.name, NAME_LENGTH)
        fields["author_id"] = text_field(author.identifier, NAME_LENGTH)
    return _document(source_part, name, fields["mime_type"], fields, document.content)


def _document(
    source_part: str, filename: str, mime_type: str, fields: dict[str, str], content: bytes
) -> OutgoingDocument:
    fields = {**fields, "sha256": hashlib.sha256(content).hexdigest()}
    return OutgoingDocument(
        source_part=source_part,
        filename=filename or "document",
        mime_type=mime_type,
        fields={name: value for name, value in fields.items() if value},
        content=content,
    )
