"""Reading over HTTP: the list grouped by professional with names (never addresses), unread
state, one message (marked read, audited), HTML bodies sanitised in a sandboxed frame,
attachments inline only for PDF/text/JPEG whose bytes match, downloads with safe names."""

from __future__ import annotations

import re

import httpx
from plitest.store import build_message
from plitest.web import WebStack, login

from pli.mailbox.store.demo import PARENT_INS
from pli.mailbox.web.security import APP_CSP, ATTACHMENT_CSP, MESSAGE_CSP

PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << >>\n%%EOF\n"
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 64 + b"\xff\xd9"


def links(html: str, pattern: str) -> list[str]:
    return re.findall(rf'href="({pattern})"', html)


async def test_list_groups_by_professional_with_names_and_unread_state(
    stack: WebStack, client: httpx.AsyncClient
) -> None:
    doctor = stack.accounts.doctor
    await stack.write_to_citizen(doctor, stack.accounts.parent, subject="Résultats d'analyse")
    page = await client.get("/messages")
    html = page.text
    assert page.status_code == 200
    assert page.headers["content-security-policy"] == APP_CSP
    assert "<script" not in html
    # Groups: the doctor (two messages, newest first) and the no-reply reports mailbox.
    headings = re.findall(r"<h2 id=\"groupe-\d+\">([^<]+)", html)
    assert [h.strip() for h in headings] == ["Dr Claire Martin", "Comptes rendus (ne pas répondre)"]
    assert html.index("Résultats d&#39;analyse") < html.index("Votre rendez-vous de contrôle")
    assert "3 messages non lus" in html and "2 non lus" in html
    for address in ("dr.martin@", "cr-patient-noreply@"):
        assert address not in html  # never a raw address


async def test_opening_a_message_marks_it_read_and_audits_who_read(
    stack: WebStack, client: httpx.AsyncClient
) -> None:
    page = await client.get("/messages/reception/1")
    assert page.status_code == 200
    assert "Votre rendez-vous de contrôle est fixé au 12 mars" in page.text
    assert "Dr Claire Martin" in page.text
    listing = await client.get("/messages")
    assert "1 message non lu." in listing.text
    [record] = [
        r
        for r in await stack.store.audit.history(PARENT_INS + "@patient.mssante.fr")
        if r.action == "webmail-read"
    ]
    assert record.actor == stack.accounts.parent.address and record.acting_for is None
    assert "Votre rendez-vous" not in record.request  # never content


async def test_unknown_messages_parts_and_boxes_are_404(client: httpx.AsyncClient) -> None:
    for path in (
        "/messages/reception/999",
        "/messages/reception/0",
        "/messages/reception/99999999999999999999",
        "/messages/corbeille/1",
        "/messages/reception/1/pieces/9",
        "/messages/reception/1/pieces/..%2F1",
        "/messages/reception/1/corps",  # a text-only message has no HTML body
    ):
        answer = await client.get(path)
        assert answer.status_code == 404, path
        assert "Page introuvable" in answer.text


async def test_another_citizens_messages_are_unreachable(stack: WebStack) -> None:
    """Léa's message UID 1 is not Paul's UID 1: every URL is within the acting profile."""
    await stack.write_to_citizen(stack.accounts.doctor, stack.accounts.child, subject="Pour Léa")
    async with stack.client() as client:
        await login(client, stack.outbox, PARENT_INS)
        page = await client.get("/messages/reception/1")
        assert "Pour Léa" not in page.text


async def test_html_body_is_sanitised_in_a_sandboxed_frame(
    stack: WebStack, client: httpx.AsyncClient
) -> None:
    html = (
        "<p>Bonjour <b>Paul</b></p><script>alert(1)</script>"
        '<img src="https://tracker.example/pixel.gif" alt="logo">'
        '<a href="javascript:alert(2)">clic</a><a href="https://www.ameli.fr">ameli</a>'
        '<p onmouseover="alert(3)" style="color:#000091;background:url(https://x.example/b)">x</p>'
        "<iframe src=https://evil.example></iframe><form action=https://evil.example><input></form>"
    )
    delivered = await stack.store.messages.deliver(
        _html_message(html), [_target(stack.accounts.parent.id)]
    )
    uid = delivered[0].uid
    page = await client.get(f"/messages/reception/{uid}")
    frame = re.search(r"<iframe[^>]*>", page.text)
    assert frame is not None
    assert 'sandbox="allow-popups allow-popups-to-escape-sandbox"' in frame.group(0)
    assert "allow-scripts" not in frame.group(0) and "allow-same-origin" not in frame.group(0)
    body = await client.get(f"/messages/reception/{uid}/corps")
    assert body.headers["content-security-policy"] == MESSAGE_CSP
    assert body.headers["x-frame-options"] == "SAMEORIGIN"
    text = body.text
    for forbidden in (
        "<script",
        "alert(",
        "javascript:",
        "onmouseover",
        "tracker.example",
        "url(",
        "<iframe",
        "<form",
        "evil.example",
    ):
        assert forbidden not in text, forbidden
    assert "<b>Paul</b>" in text
    assert '<a href="https://www.ameli.fr" target="_blank" rel="noopener noreferrer">' in text
    assert "[image distante bloquée : logo]" in text
    assert "1 image(s)" in text


def _target(account_id: int):  # type: ignore[no-untyped-def]
    from pli.mailbox.store import DeliveryTarget

    return DeliveryTarget(account_id)


def _html_message(html: str, *, cid_image: bytes | None = None) -> bytes:
    from email.message import EmailMessage

    message = EmailMessage()
    message["From"] = "Dr Claire Martin <dr.martin@hopital-demo.mssante.fr>"
    message["To"] = "180017512345660@patient.mssante.fr"
    message["Subject"] = "Lettre HTML"
    message["Message-ID"] = "<html-1@hopital-demo.mssante.fr>"
    message.set_content(html, subtype="html")
    if cid_image is not None:
        message.get_payload()  # single part: make it related
        message.add_related(cid_image, maintype="image", subtype="jpeg", cid="<logo@x>")
    return message.as_bytes()


async def test_embedded_cid_images_travel_inside_the_document(
    stack: WebStack, client: httpx.AsyncClient
) -> None:
    raw = _html_message('<p>Logo</p><img src="cid:logo@x" alt="logo">', cid_image=JPEG)
    delivered = await stack.store.messages.deliver(raw, [_target(stack.accounts.parent.id)])
    body = await client.get(f"/messages/reception/{delivered[0].uid}/corps")
    assert '<img src="data:image/jpeg;base64,' in body.text
    assert "image distante bloquée" not in body.text


async def test_attachments_inline_only_for_pdf_text_jpeg_whose_bytes_match(
    stack: WebStack, client: httpx.AsyncClient
) -> None:
    uid = await stack.write_to_citizen(
        stack.accounts.doctor,
        stack.accounts.parent,
        subject="Pièces",
        attachments=[
            ("compte-rendu.pdf", "application/pdf", PDF),
            ("radio.jpg", "image/jpeg", JPEG),
            ("notes.txt", "text/plain", "Tension 12/8, été".encode("latin-1")),
            ("faux.pdf", "application/pdf", b"<html><script>alert(1)</script></html>"),
            ("archive.zip", "application/zip", b"PK\x03\x04" + b"\x00" * 20),
            ("page.html", "text/html", b"<script>alert(1)</script>"),
        ],
    )
    page = await client.get(f"/messages/reception/{uid}")
    viewable = links(page.text, rf"/messages/reception/{uid}/pieces/[0-9.]+/voir")
    assert viewable == [f"/messages/reception/{uid}/pieces/{n}/voir" for n in (2, 3, 4, 5)]
    # PDF: inline, as PDF, framed by our pages only.
    pdf = await client.get(f"/messages/reception/{uid}/pieces/2/contenu")
    assert pdf.status_code == 200 and pdf.content == PDF
    assert pdf.headers["content-type"] == "application/pdf"
    assert pdf.headers["content-disposition"].startswith("inline;")
    assert pdf.headers["content-security-policy"] == ATTACHMENT_CSP
    assert pdf.headers["x-content-type-options"] == "nosniff"
    jpeg = await client.get(f"/messages/reception/{uid}/pieces/3/contenu")
    assert jpeg.headers["content-type"] == "image/jpeg"
    text = await client.get(f"/messages/reception/{uid}/pieces/4/contenu")
    assert text.headers["content-type"] == "text/plain; charset=utf-8"
    # Declared latin-1? build_message says nothing: the body is shown, decoded without loss
    # of the page (U+FFFD at worst), and never as HTML.
    assert "Tension 12/8" in text.text
    # A "PDF" that is HTML is never shown; HTML and ZIP are downloads only.
    for section in (5, 6, 7):
        assert (
            await client.get(f"/messages/reception/{uid}/pieces/{section}/contenu")
        ).status_code == 404
    download = await client.get(f"/messages/reception/{uid}/pieces/7")
    assert download.headers["content-type"] == "application/octet-stream"
    assert download.headers["content-disposition"] == (
        "attachment; filename=\"page.html\"; filename*=UTF-8''page.html"
    )
    viewer = await client.get(f"/messages/reception/{uid}/pieces/2/voir")
    assert f'<iframe class="viewer" src="/messages/reception/{uid}/pieces/2/contenu"' in viewer.text


async def test_attack_xss_in_subject_body_sender_and_file_names(
    stack: WebStack, client: httpx.AsyncClient
) -> None:
    payload = '"><script>alert(document.cookie)</script><img src=x onerror=alert(1)>'
    uid = await stack.write_to_citizen(
        stack.accounts.doctor,
        stack.accounts.parent,
        subject=f"Résultat {payload}",
        body=f"Bonjour {payload}\n",
        attachments=[(f"{payload}.pdf", "application/pdf", PDF)],
    )
    for path in (
        "/messages",
        f"/messages/reception/{uid}",
        f"/messages/reception/{uid}/pieces/2/voir",
    ):
        html = (await client.get(path)).text
        assert "<script>alert" not in html and "<img src=x" not in html, path
        assert "&lt;script&gt;alert(document.cookie)&lt;/script&gt;" in html, path
    download = await client.get(f"/messages/reception/{uid}/pieces/2")
    disposition = download.headers["content-disposition"]
    assert "\r" not in disposition and "\n" not in disposition
    assert disposition.count('"') == 2  # the quoted fallback cannot be broken out of
    assert "<" not in disposition.split(";")[1]


async def test_attack_xss_display_name_of_an_unknown_sender(
    stack: WebStack, client: httpx.AsyncClient
) -> None:
    raw = build_message(
        sender='"<script>alert(1)</script>" <x@clinique-inconnue.mssante.fr>', subject="Inconnu"
    )
    await stack.store.messages.deliver(raw, [_target(stack.accounts.parent.id)])
    html = (await client.get("/messages")).text
    assert "<script>alert(1)" not in html
    assert "x@clinique-inconnue" not in html
