"""One campaign message per row: the complete RFC 5322 message the submission pipeline receives.

- ``Message-ID``: :func:`message_id_for` (campaign id, row key), chosen before anything is
  sent: after a crash, the runner finds whether that message was accepted by looking it up
  (``ledger.py``) instead of sending it again.
- ``From``: the sending mailbox with its display name; ``To``: ``<INS>@<citizen domain>`` with
  the patient's names.
- ``Precedence: bulk`` (RFC 2076 §3.9: the queue attempts campaign messages after interactive
  mail) and ``Auto-Submitted: auto-generated`` (RFC 3834 §5: no auto-reply to a campaign).
- ``X-MSS-MES: FIN`` in no-reply mode (policy P4, Référentiel #2 ECO.2.2.8: the patient may not
  reply); ``Disposition-Notification-To`` when a read receipt is asked (RFC 8098 §2.1).
- The body as ``text/plain; charset=utf-8`` in quoted-printable; the common attachments, then
  the row's; with IHE_XDM packaging, the row's CDA documents (``.xml``) in one ``IHE_XDM.zip``
  with ``X-MSS-CODECDA`` and ``X-MSS-INS`` (mssante.md §5), read back with ``read_xdm`` first.

Pure apart from reading the row's attachment files; CPU-bound (callers run it in a thread).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime

from pli.mailbox.xdm import MssHeaders, XdmRefusal, read_xdm
from pli.mailbox.xdm.model import Code

from .campaign import Attachment, Campaign, RowProblem
from .recipients import Recipient
from .templates import RenderError
from .xdm import (
    CLASS_SCHEME,
    CdaUnusable,
    Patient,
    XdmAuthor,
    XdmDocumentSpec,
    XdmPackageSpec,
    build_package,
    cda_facts,
    confidentiality_code,
    mss_headers,
    uuid_oid,
)

XDM_FILENAME = "IHE_XDM.zip"
MESSAGE_TOO_LARGE = "message-too-large"
CDA_UNUSABLE = "xdm-cda-unusable"
#: The digest of the row key in a Message-ID: 128 bits (no collision within a campaign).
MESSAGE_ID_DIGEST = 32


def message_id_for(campaign_id: str, row_key: str, domain: str) -> str:
    """The Message-ID (without <>) of a campaign's row: ``bulk.<digest>.<campaign>@<domain>``;
    the same for the same campaign and row, every time."""
    digest = hashlib.sha256(f"{campaign_id}\0{row_key}".encode()).hexdigest()
    return f"bulk.{digest[:MESSAGE_ID_DIGEST]}.{campaign_id}@{domain}"


def citizen_address(ins: str, citizen_domain: str) -> str:
    return f"{ins.lower()}@{citizen_domain}"


@dataclass(frozen=True)
class Sender:
    """The sending mailbox (an APP or ORG account)."""

    address: str
    display_name: str
    structure_id: str | None = None

    @property
    def domain(self) -> str:
        return self.address.rpartition("@")[2]


@dataclass(frozen=True)
class Composed:
    recipient: str
    message_id: str
    raw: bytes


class Composer:
    def __init__(
        self,
        campaign: Campaign,
        sender: Sender,
        *,
        citizen_domain: str,
        message_size: int,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.campaign = campaign
        self.sender = sender
        self.citizen_domain = citizen_domain
        self.message_size = message_size
        self.clock = clock
        options = campaign.definition.xdm
        self.author = XdmAuthor(
            institution=options.institution or sender.display_name or sender.address,
            institution_id=options.institution_id or sender.structure_id or "",
            person_id=options.author_id,
            family=options.author_family,
            given=options.author_given,
        )
        self.source_oid = options.source_oid or uuid_oid(f"pli-bulk/{sender.address}")

    def message_id(self, row_key: str) -> str:
        return message_id_for(self.campaign.id, row_key, self.sender.domain)

    def compose(self, row: Recipient) -> Composed:
        """The message of ``row`` (RowProblem: why it cannot be sent)."""
        definition = self.campaign.definition
        try:
            rendered = self.campaign.templates.render(row.template_context())
        except RenderError as error:
            raise RowProblem(error.reason, error.text) from None
        attachments = [self.campaign.row_attachment(path) for path in row.attachments]
        recipient = citizen_address(row.ins, self.citizen_domain)
        now = self.clock()
        message = EmailMessage(policy=SMTP)
        message["From"] = Address(self.sender.display_name, addr_spec=self.sender.address)
        message["To"] = Address(f"{row.given_names} {row.family_name}", addr_spec=recipient)
        message["Subject"] = rendered.subject
        message["Date"] = format_datetime(now)
        message_id = self.message_id(row.key)
        message["Message-ID"] = f"<{message_id}>"
        message["Precedence"] = "bulk"
        message["Auto-Submitted"] = "auto-generated"
        if definition.no_reply:
            message["X-MSS-MES"] = "FIN"
        if definition.read_receipt:
            message["Disposition-Notification-To"] = self.sender.address
        packaged = definition.xdm.enabled
        cda = [a for a in attachments if packaged and a.is_xml]
        others = [a for a in attachments if not (packaged and a.is_xml)]
        package = self._package(row, recipient, cda, now) if cda else None
        if package is not None:
            for name, value in mss_headers(package[1]).items():
                message[name] = value
        message.set_content(rendered.body, charset="utf-8", cte="quoted-printable")
        for attachment in (*self.campaign.common, *others):
            _attach(message, attachment)
        if package is not None:
            _attach(message, Attachment(XDM_FILENAME, "application/zip", package[0]))
        raw = message.as_bytes()
        if len(raw) > self.message_size:
            raise RowProblem(
                MESSAGE_TOO_LARGE,
                f"le message ferait {len(raw)} octets, plus que {self.message_size} permis",
            )
        return Composed(recipient, message_id, raw)

    def _package(
        self, row: Recipient, recipient: str, cda: list[Attachment], now: datetime
    ) -> tuple[bytes, list[XdmDocumentSpec]]:
        options = self.campaign.definition.xdm
        documents = []
        for attachment in cda:
            try:
                type_code = cda_facts(attachment.data, attachment.filename, row.ins)
            except CdaUnusable as error:
                raise RowProblem(CDA_UNUSABLE, error.text) from None
            documents.append(
                XdmDocumentSpec(
                    filename=attachment.filename,
                    content=attachment.data,
                    type_code=type_code,
                    title=type_code.display or attachment.filename,
                    class_code=Code(options.class_code, CLASS_SCHEME, options.class_display),
                    confidentiality=tuple(confidentiality_code(c) for c in options.confidentiality),
                )
            )
        spec = XdmPackageSpec(
            patient=Patient(row.ins, row.family_name, row.given_names, row.birth_date, recipient),
            author=self.author,
            documents=documents,
            submitted_at=now,
            source_oid=self.source_oid,
            seed=f"{self.campaign.id}/{row.key}",
        )
        package = build_package(spec)
        headers = mss_headers(documents)
        # Our own reader, as a receiver would read it: a package it refuses is never sent.
        checked = read_xdm(
            package,
            headers=MssHeaders(headers["X-MSS-CODECDA"], headers["X-MSS-INS"]),
            expected_ins=row.ins,
        )
        if isinstance(checked, XdmRefusal):
            raise RowProblem(checked.reason.value, f"paquet IHE_XDM refusé : {checked.text}")
        return package, documents


def _attach(message: EmailMessage, attachment: Attachment) -> None:
    maintype, _, subtype = attachment.content_type.partition("/")
    message.add_attachment(
        attachment.data, maintype=maintype, subtype=subtype, filename=attachment.filename
    )
