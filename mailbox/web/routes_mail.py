"""Reading pages: the message list grouped by professional, the sent list, one message, its
sanitised HTML body, its attachments (inline for PDF, text and JPEG, else downloaded), saving an
attachment to the citizen's documents, and the read-receipt choice.

Every page works in the acting profile's mailbox (the session's ``acting_as``); every action is
audited with the guardian who acted (policy P9).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Path, Request
from fastapi.responses import Response

from pli.mailbox.store import Folder, MessageMeta, NotFound, StoreUserError
from pli.mailbox.store.listing import group_by_sender, summaries
from pli.mailbox.submit import SubmissionRefused

from . import htmlsafe, mdn, parts, reading
from .correspondents import display_names, may_write
from .filenames import clean_filename, content_disposition
from .pages import BOX_TITLES, PageNotFound, Webmail
from .routes_login import web
from .security import ATTACHMENT_CSP, MESSAGE_CSP
from .sessions import WebSession

log = structlog.get_logger(__name__)
router = APIRouter()

#: IMAP UIDs are 32-bit (RFC 9051 §2.3.1.1).
MAX_UID = 2**32 - 1
Uid = Annotated[int, Path(ge=1, le=MAX_UID)]
Section = Annotated[str, Path(pattern=r"^[1-9][0-9]{0,4}(\.[1-9][0-9]{0,4}){0,20}$")]
SEEN = "\\Seen"
NOTICES = {
    "envoye": "Votre message a été envoyé.",
    "enregistrement": "Votre demande d'enregistrement a été prise en compte.",
    "enregistrement-impossible": "Cette pièce jointe ne peut pas être enregistrée.",
    "accuse-envoye": "L'accusé de lecture a été envoyé.",
    "accuse-refuse": "Aucun accusé de lecture ne sera envoyé.",
    "accuse-impossible": "L'accusé de lecture n'a pas pu être envoyé.",
}


@dataclass(frozen=True, slots=True)
class Loaded:
    box: str
    folder: Folder
    meta: MessageMeta
    raw: bytes

    @property
    def structure(self) -> Any:
        return self.meta.structure


async def load(webmail: Webmail, session: WebSession, box: str, uid: int) -> Loaded:
    folder = await webmail.folder(session, box)
    try:
        meta = await webmail.store.messages.get(folder.id, uid)
        raw = await webmail.store.messages.read(folder.id, uid)
    except NotFound:
        raise PageNotFound from None
    return Loaded(box, folder, meta, raw)


@router.get("/")
async def home(request: Request) -> Response:
    return web(request).redirect("/messages")


@router.get("/messages")
async def message_list(request: Request) -> Response:
    webmail = web(request)
    session = await webmail.session(request)
    inbox = await webmail.folder(session, "reception")
    found = await summaries(webmail.store, inbox.id, limit=webmail.config.page_size)
    groups = group_by_sender(found)
    names = await display_names(webmail.store, [group.sender_address for group in groups])
    return webmail.render(
        "messages.html",
        {
            "title": BOX_TITLES["reception"],
            "groups": groups,
            "names": names,
            "unread": sum(group.unread for group in groups),
        },
        session=session,
    )


@router.get("/envoyes")
async def sent_list(request: Request) -> Response:
    webmail = web(request)
    session = await webmail.session(request)
    sent = await webmail.sent_folder(session)
    found = await summaries(webmail.store, sent.id, limit=webmail.config.page_size) if sent else []
    recipients: dict[int, str] = {}
    if sent is not None and found:
        metas = await webmail.store.messages.fetch(
            sent.id, [(item.uid, item.uid) for item in found], envelope=True
        )
        for meta in metas:
            recipients[meta.uid] = first_recipient(meta.envelope or [])
    names = await display_names(webmail.store, [a for a in recipients.values() if a])
    return webmail.render(
        "sent.html",
        {
            "title": BOX_TITLES["envoyes"],
            "messages": found,
            "recipients": recipients,
            "names": names,
        },
        session=session,
    )


def first_recipient(envelope: list[Any]) -> str:
    """The first To: address of a cached ENVELOPE (RFC 3501 §7.4.2: field 5)."""
    to = envelope[5] if len(envelope) > 5 and envelope[5] else []
    for address in to:
        if address[2] and address[3]:
            return f"{address[2]}@{address[3]}".lower()
    return ""


@router.get("/messages/{box}/{uid}")
async def show_message(request: Request, box: str, uid: Uid, etat: str = "") -> Response:
    webmail = web(request)
    session = await webmail.session(request)
    loaded = await load(webmail, session, box, uid)
    view = reading.view(loaded.raw, loaded.structure)
    if SEEN not in loaded.meta.flags:
        await webmail.store.messages.store_flags(loaded.folder.id, [(uid, uid)], "+", [SEEN])
    await webmail.audit(session, "webmail-read", f"uid={uid} from <{view.sender_address}>")
    return await message_page(webmail, session, loaded, view, notice=NOTICES.get(etat, ""))


async def message_page(
    webmail: Webmail,
    session: WebSession,
    loaded: Loaded,
    view: reading.MessageView,
    *,
    notice: str = "",
    error: str = "",
    draft: str = "",
    status: int = 200,
) -> Response:
    received = loaded.box == "reception"
    names = await display_names(webmail.store, [view.sender_address] if view.sender_address else [])
    permission = None
    ask_receipt = False
    if received and view.sender_address:
        permission = await may_write(webmail.deps.facts, session, view.sender_address)
        ask_receipt = await receipt_step(webmail, session, loaded, view)
    filings: dict[str, Any] = {}
    if webmail.deps.filing is not None and received:
        for state in await webmail.deps.filing.states(
            session.acting_as, loaded.folder.id, loaded.meta.uid
        ):
            filings[state.part] = state
    return webmail.render(
        "message.html",
        {
            "title": view.subject,
            "box": loaded.box,
            "box_title": BOX_TITLES[loaded.box],
            "uid": loaded.meta.uid,
            "view": view,
            "sender_name": names.get(view.sender_address, ""),
            "permission": permission,
            "ask_receipt": ask_receipt,
            "filing_enabled": webmail.deps.filing is not None and received,
            "filings": filings,
            "inline_types": {
                item.section: parts.inline_type(item.content_type, item.filename)
                for item in view.attachments
            },
            "notice": notice,
            "error": error,
            "draft": draft,
        },
        session=session,
        status=status,
    )


async def receipt_step(
    webmail: Webmail, session: WebSession, loaded: Loaded, view: reading.MessageView
) -> bool:
    """Send the read receipt now (``always``) or say whether to ask the citizen."""
    mode = mdn.mode_for(webmail.config.read_receipts, view.receipt)
    if mode == mdn.NEVER:
        return False
    key = mdn.message_key(view.original.message_id, loaded.meta.blob_id)
    if await webmail.receipts.state(session.acting_as.id, key) is not None:
        return False
    if mode == mdn.ALWAYS:
        await send_receipt(webmail, session, loaded, view, automatic=True)
        return False
    return True


async def send_receipt(
    webmail: Webmail,
    session: WebSession,
    loaded: Loaded,
    view: reading.MessageView,
    *,
    automatic: bool,
) -> bool:
    """Claim, build and submit the MDN (null envelope sender, RFC 8098 §3); True if sent."""
    request = view.receipt
    assert request is not None
    key = mdn.message_key(view.original.message_id, loaded.meta.blob_id)
    now = webmail.deps.clock()
    if not await webmail.receipts.claim(
        session.acting_as.id, key, mdn.SENDING, actor=session.account.address, at=now
    ):
        return False
    raw = mdn.build_mdn(
        mdn.Receipt(
            sender_address=session.acting_as.address,
            sender_name=session.acting_as.display_name,
            to=request.address,
            original_message_id=view.original.message_id,
            original_recipient=view.original_recipient,
            subject=view.original.subject,
            displayed_at=now,
            automatic=automatic,
        ),
        hostname=webmail.config.hostname,
    )
    try:
        result = await webmail.deps.submit(session.principal, "", [request.address], raw)
    except SubmissionRefused as refused:
        await webmail.receipts.settle(session.acting_as.id, key, None)
        await webmail.audit(
            session, "read-receipt", f"to <{request.address}>", f"refused: {refused.reason}"
        )
        return False
    outcome = result.recipients[0]
    state = mdn.SENT if outcome.accepted else (None if outcome.temporary else mdn.REFUSED)
    await webmail.receipts.settle(session.acting_as.id, key, state)
    await webmail.audit(
        session,
        "read-receipt",
        f"uid={loaded.meta.uid} to <{request.address}>",
        ("ok: " if outcome.accepted else "refused: ") + outcome.reason,
    )
    return outcome.accepted


@router.post("/messages/{box}/{uid}/accuse")
async def receipt_choice(request: Request, box: str, uid: Uid) -> Response:
    webmail = web(request)
    session = await webmail.session(request)
    form = await webmail.form(request, session)
    loaded = await load(webmail, session, box, uid)
    view = reading.view(loaded.raw, loaded.structure)
    here = f"/messages/{box}/{uid}"
    if mdn.mode_for(webmail.config.read_receipts, view.receipt) == mdn.NEVER or box != "reception":
        return webmail.redirect(here)
    if form.get("choix") == "envoyer":
        sent = await send_receipt(webmail, session, loaded, view, automatic=False)
        return webmail.redirect(f"{here}?etat={'accuse-envoye' if sent else 'accuse-impossible'}")
    key = mdn.message_key(view.original.message_id, loaded.meta.blob_id)
    if await webmail.receipts.claim(
        session.acting_as.id,
        key,
        mdn.DECLINED,
        actor=session.account.address,
        at=webmail.deps.clock(),
    ):
        await webmail.audit(session, "read-receipt-declined", f"uid={uid}")
    return webmail.redirect(f"{here}?etat=accuse-refuse")


@router.get("/messages/{box}/{uid}/corps")
async def html_body(request: Request, box: str, uid: Uid) -> Response:
    """The sanitised HTML body, for the sandboxed frame of the message page."""
    webmail = web(request)
    session = await webmail.session(request)
    loaded = await load(webmail, session, box, uid)
    found = reading.html_body(loaded.raw, loaded.structure)
    if found is None:
        raise PageNotFound
    body, blocked = found
    notice = ""
    if blocked:
        notice = (
            f'<p style="background:#fff4ce;padding:0.5rem">{blocked} image(s) hébergée(s) '
            "ailleurs n'ont pas été chargées, pour protéger votre vie privée.</p>"
        )
    document = htmlsafe.document(notice + body, title="Contenu du message")
    return Response(
        document.encode(),
        media_type="text/html; charset=utf-8",
        headers=webmail.headers(csp=MESSAGE_CSP, frame="SAMEORIGIN"),
    )


async def attachment(
    webmail: Webmail, session: WebSession, box: str, uid: int, section: str
) -> tuple[Loaded, parts.AttachmentInfo, bytes]:
    loaded = await load(webmail, session, box, uid)
    listed = {item.section: item for item in parts.attachment_list(loaded.structure)}
    info = listed.get(section)
    found = reading.attachment_bytes(loaded.raw, loaded.structure, section)
    if info is None or found is None:
        raise PageNotFound
    return loaded, info, found[1]


@router.get("/messages/{box}/{uid}/pieces/{section}")
async def download(request: Request, box: str, uid: Uid, section: Section) -> Response:
    """The attachment as a file to save: never rendered by the browser."""
    webmail = web(request)
    session = await webmail.session(request)
    _, info, data = await attachment(webmail, session, box, uid, section)
    await webmail.audit(session, "webmail-attachment", f"uid={uid} part={section} download")
    headers = webmail.headers(csp="default-src 'none'; sandbox")
    headers["Content-Disposition"] = content_disposition("attachment", info.filename)
    return Response(data, media_type="application/octet-stream", headers=headers)


@router.get("/messages/{box}/{uid}/pieces/{section}/contenu")
async def inline_content(request: Request, box: str, uid: Uid, section: Section) -> Response:
    """The attachment shown by the browser: PDF, text or JPEG whose bytes match (else 404).
    Text is sent as UTF-8 whatever its declared charset."""
    webmail = web(request)
    session = await webmail.session(request)
    loaded, info, data = await attachment(webmail, session, box, uid, section)
    shown_as = parts.inline_type(info.content_type, info.filename)
    if shown_as is None or not parts.looks_like(shown_as, data):
        raise PageNotFound
    media = shown_as
    if shown_as == "text/plain":
        part = parts.find_part(loaded.structure, section)
        assert part is not None
        data = parts.decode_text(data, part).encode()
        media = "text/plain; charset=utf-8"
    await webmail.audit(session, "webmail-attachment", f"uid={uid} part={section} inline")
    headers = webmail.headers(csp=ATTACHMENT_CSP, frame="SAMEORIGIN")
    headers["Content-Disposition"] = content_disposition("inline", info.filename)
    return Response(data, media_type=media, headers=headers)


@router.get("/messages/{box}/{uid}/pieces/{section}/voir")
async def viewer(request: Request, box: str, uid: Uid, section: Section) -> Response:
    """A page showing the attachment (in a frame, or as an image) with a download link."""
    webmail = web(request)
    session = await webmail.session(request)
    loaded, info, data = await attachment(webmail, session, box, uid, section)
    shown_as = parts.inline_type(info.content_type, info.filename)
    if shown_as is not None and not parts.looks_like(shown_as, data):
        shown_as = None
    return webmail.render(
        "viewer.html",
        {
            "title": clean_filename(info.filename),
            "box": box,
            "uid": uid,
            "info": info,
            "shown_as": shown_as,
            "message_subject": reading.view(loaded.raw, loaded.structure).subject,
        },
        session=session,
    )


@router.post("/messages/{box}/{uid}/pieces/{section}/enregistrer")
async def save_to_documents(request: Request, box: str, uid: Uid, section: Section) -> Response:
    """ "Enregistrer dans mes documents": ask the filing client (idempotent)."""
    webmail = web(request)
    session = await webmail.session(request)
    await webmail.form(request, session)
    filing = webmail.deps.filing
    loaded, info, _ = await attachment(webmail, session, box, uid, section)
    here = f"/messages/{box}/{uid}"
    if filing is None or box != "reception":
        raise PageNotFound
    try:
        await filing.request(
            session.acting_as, loaded.folder.id, uid, info.section, actor=session.account
        )
    except StoreUserError as error:
        log.info("filing-refused", uid=uid, part=section, error=str(error))
        return webmail.redirect(f"{here}?etat=enregistrement-impossible#pieces")
    return webmail.redirect(f"{here}?etat=enregistrement#piece-{_anchor(section)}")


def _anchor(section: str) -> str:
    return re.sub(r"[^0-9]", "-", section)
