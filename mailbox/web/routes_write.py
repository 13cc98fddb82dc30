"""Writing pages: reply to a message, and write to a professional the citizen may write to (one
who wrote and did not end the exchange: policy P2, or a pharmacy: P3).

The page asks the policy first (:func:`.correspondents.may_write`) and offers the form only when
it allows; the message then goes through the injected submission pipeline, which decides again
per recipient. A refusal shows the policy's French text and keeps what the citizen typed. An
accepted message is copied to the profile's Sent folder (the webmail is the citizen's mail
client: RFC 6409 leaves the Sent copy to the client) and audited with the acting guardian.
"""

from __future__ import annotations

from typing import Annotated

import structlog
from fastapi import APIRouter, Path, Request
from fastapi.responses import Response
from starlette.datastructures import FormData, UploadFile

from pli.mailbox.submit import SubmissionRefused

from . import reading
from .compose import ComposeError, Original, Party, Upload, build_message
from .correspondents import Permission, display_names, may_write
from .pages import PageNotFound, Webmail
from .routes_login import web
from .routes_mail import Uid, load, message_page
from .sessions import WebSession

log = structlog.get_logger(__name__)
router = APIRouter()

Address = Annotated[str, Path(max_length=320, pattern=r"^[^@\s/]{1,64}@[a-zA-Z0-9.-]{1,255}$")]
#: Professionals listed on the "write" page (the correspondents of the profile, newest first).
MAX_CORRESPONDENTS = 50
#: Pharmacies listed for one search.
MAX_PHARMACIES = 20
#: Characters of a search.
MAX_QUERY = 100


async def uploads(webmail: Webmail, form: FormData) -> list[Upload]:
    """The files of the form (empty file inputs skipped); one byte more than the limit is read
    so that an oversized file is refused by :func:`build_message` with its name."""
    found = []
    for item in form.getlist("fichiers"):
        if isinstance(item, UploadFile) and item.filename:
            data = await item.read(webmail.config.upload_size + 1)
            found.append(Upload(item.filename, item.content_type or "", data))
    return found


async def send(
    webmail: Webmail,
    session: WebSession,
    recipient: Party,
    *,
    subject: str,
    body: str,
    files: list[Upload],
    original: Original | None,
) -> str | None:
    """Build, submit, copy to Sent, audit; None when sent, else the French reason."""
    sender = Party(session.acting_as.address, session.acting_as.display_name)
    try:
        raw, message_id = build_message(
            sender=sender,
            recipient=recipient,
            subject=subject,
            body=body,
            now=webmail.deps.clock(),
            hostname=webmail.config.hostname,
            original=original,
            uploads=files,
            upload_size=webmail.config.upload_size,
            message_size=webmail.config.message_size,
        )
    except ComposeError as error:
        return error.text
    try:
        result = await webmail.deps.submit(
            session.principal, sender.address, [recipient.address], raw
        )
    except SubmissionRefused as refused:
        await webmail.audit(
            session, "webmail-send", f"to <{recipient.address}>", f"refused: {refused.reason}"
        )
        return refused.text
    outcome = result.recipients[0]
    await webmail.audit(
        session,
        "webmail-send",
        f"to <{recipient.address}> message-id <{result.message_id or message_id}>",
        ("ok: " if outcome.accepted else "refused: ") + outcome.reason,
    )
    if not outcome.accepted:
        return outcome.text
    sent = await webmail.sent_folder(session)
    if sent is not None:
        await webmail.store.messages.append(sent.id, raw, flags=("\\Seen",))
    return None


@router.post("/messages/{box}/{uid}/repondre")
async def reply(request: Request, box: str, uid: Uid) -> Response:
    webmail = web(request)
    session = await webmail.session(request)
    form = await webmail.form(request, session)
    if box != "reception":
        raise PageNotFound
    loaded = await load(webmail, session, box, uid)
    view = reading.view(loaded.raw, loaded.structure)
    body = str(form.get("corps") or "")
    permission = await may_write(webmail.deps.facts, session, view.sender_address)
    error = permission.text if not permission.allowed else None
    if error is None:
        names = await display_names(webmail.store, [view.sender_address])
        error = await send(
            webmail,
            session,
            Party(view.sender_address, names[view.sender_address]),
            subject=view.subject,
            body=body,
            files=await uploads(webmail, form),
            original=view.original,
        )
    if error is None:
        return webmail.redirect(f"/messages/{box}/{uid}?etat=envoye")
    return await message_page(webmail, session, loaded, view, error=error, draft=body, status=400)


async def correspondents(webmail: Webmail, session: WebSession) -> list[str]:
    """Professional mailboxes that wrote to this profile, newest exchange first."""
    ins = session.acting_as.ins
    if not ins:
        return []
    found = await webmail.store.conversations.for_citizen(ins)
    found = [item for item in found if item.professional_has_written]
    found.sort(key=lambda item: item.last_professional_at or item.opened_at, reverse=True)
    return [item.professional for item in found[:MAX_CORRESPONDENTS]]


@router.get("/ecrire")
async def write_choices(request: Request, q: str = "") -> Response:
    webmail = web(request)
    session = await webmail.session(request)
    query = " ".join(q.split())[:MAX_QUERY]
    facts = webmail.deps.facts
    addresses = await correspondents(webmail, session)
    pharmacies: list[str] = []
    if query:
        entries = await webmail.store.directory.search(query, limit=MAX_PHARMACIES * 5)
        pharmacies = [entry.address for entry in entries if entry.pharmacy][:MAX_PHARMACIES]
    permissions: dict[str, Permission] = {}
    for address in [*addresses, *pharmacies]:
        if address not in permissions:
            permissions[address] = await may_write(facts, session, address)
    names = await display_names(webmail.store, list(permissions))
    return webmail.render(
        "write.html",
        {
            "title": "Écrire un message",
            "correspondents": addresses,
            "pharmacies": pharmacies,
            "permissions": permissions,
            "names": names,
            "query": query,
        },
        session=session,
    )


async def compose_page(
    webmail: Webmail,
    session: WebSession,
    address: str,
    *,
    error: str = "",
    subject: str = "",
    body: str = "",
    status: int = 200,
) -> Response:
    permission = await may_write(webmail.deps.facts, session, address)
    names = await display_names(webmail.store, [address])
    return webmail.render(
        "compose.html",
        {
            "title": f"Écrire à {names[address]}",
            "address": address,
            "name": names[address],
            "permission": permission,
            "error": error,
            "subject": subject,
            "body": body,
            "upload_megabytes": webmail.config.upload_size // (1024 * 1024),
        },
        session=session,
        status=status,
    )


@router.get("/ecrire/{address}")
async def compose(request: Request, address: Address) -> Response:
    webmail = web(request)
    session = await webmail.session(request)
    return await compose_page(webmail, session, address.lower())


@router.post("/ecrire/{address}")
async def send_new(request: Request, address: Address) -> Response:
    webmail = web(request)
    session = await webmail.session(request)
    form = await webmail.form(request, session)
    address = address.lower()
    subject = str(form.get("objet") or "")
    body = str(form.get("corps") or "")
    permission = await may_write(webmail.deps.facts, session, address)
    error = permission.text if not permission.allowed else None
    if error is None:
        names = await display_names(webmail.store, [address])
        error = await send(
            webmail,
            session,
            Party(address, names[address]),
            subject=subject,
            body=body,
            files=await uploads(webmail, form),
            original=None,
        )
    if error is None:
        return webmail.redirect("/envoyes?etat=envoye")
    return await compose_page(
        webmail, session, address, error=error, subject=subject, body=body, status=400
    )
