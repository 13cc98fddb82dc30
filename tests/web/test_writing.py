"""Writing over HTTP through the real submission pipeline: replies when the policy allows, the
policy's French text when it does not ([FIN], no-reply), writing to a pharmacy (P3), guardians
acting in a child's profile (P9), read receipts (RFC 8098), CSRF on every form."""

from __future__ import annotations

import email
import email.policy
from pathlib import Path

import httpx
import pytest
from markupsafe import escape
from plitest.store import build_message
from plitest.web import PHARMACY_DOMAIN, WebStack, csrf_of, login, webmail_stack

from pli.mailbox.store import Account
from pli.mailbox.store.demo import PARENT_INS, PHARMACY_ADDRESS
from pli.policy.reasons import DECISIONS, Reason


def parsed(raw: bytes) -> email.message.EmailMessage:
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, email.message.EmailMessage)
    return message


async def reply(
    client: httpx.AsyncClient,
    uid: int,
    text: str,
    files: list[tuple[str, bytes, str]] = (),  # type: ignore[assignment]
) -> httpx.Response:
    page = await client.get(f"/messages/reception/{uid}")
    return await client.post(
        f"/messages/reception/{uid}/repondre",
        data={"csrf": csrf_of(page.text), "corps": text},
        files=[("fichiers", file) for file in files] or None,
    )


async def sent_copies(stack: WebStack, account: Account) -> list[bytes]:
    for folder in await stack.store.folders.all(account.id):
        if folder.special_use == "\\Sent":
            uids = await stack.store.messages.uids(folder.id)
            return [await stack.store.messages.read(folder.id, uid) for uid in uids]
    return []


async def test_reply_goes_to_the_professional_threaded_and_copied_to_sent(
    stack: WebStack, client: httpx.AsyncClient
) -> None:
    before = len(await stack.inbox_of(stack.accounts.doctor))
    answer = await reply(
        client,
        1,
        "Merci, je serai là.\nPaul",
        [("ordonnance.pdf", b"%PDF-1.4\n", "application/pdf")],
    )
    assert (
        answer.status_code == 303
        and answer.headers["location"] == "/messages/reception/1?etat=envoye"
    )
    received = await stack.inbox_of(stack.accounts.doctor)
    assert len(received) == before + 1
    message = parsed(received[-1])
    original = parsed(
        await stack.store.messages.read(
            (await stack.store.folders.get(stack.accounts.parent.id, "INBOX")).id, 1
        )
    )
    assert message["Subject"] == "Re: Votre rendez-vous de contrôle"
    assert message["In-Reply-To"] == original["Message-ID"]
    assert original["Message-ID"] in message["References"]
    assert message["From"].addresses[0].addr_spec == stack.accounts.parent.address
    assert message["From"].addresses[0].display_name == "Paul Lefebvre"
    assert message["To"].addresses[0].display_name == "Dr Claire Martin"
    body = message.get_body(("plain",))
    assert body is not None and "Merci, je serai là." in body.get_content()
    [attachment] = list(message.iter_attachments())
    assert attachment.get_filename() == "ordonnance.pdf"
    [copy] = await sent_copies(stack, stack.accounts.parent)
    assert parsed(copy)["Message-ID"] == message["Message-ID"]
    page = await client.get("/envoyes")
    assert "Re: Votre rendez-vous de contrôle" in page.text and "Dr Claire Martin" in page.text
    records = await stack.store.audit.history(stack.accounts.parent.address)
    sent = [r for r in records if r.action == "webmail-send"]
    assert sent and sent[0].result == "ok: citizen-reply"


async def test_reply_refused_after_fin_shows_the_policy_text_and_sends_nothing(
    stack: WebStack, client: httpx.AsyncClient
) -> None:
    await stack.write_to_citizen(stack.accounts.doctor, stack.accounts.parent, subject="[FIN]")
    text = DECISIONS[Reason.THREAD_CLOSED].text
    page = await client.get("/messages/reception/1")
    assert str(escape(text)) in page.text
    assert 'action="/messages/reception/1/repondre"' not in page.text  # no reply form
    before = len(await stack.inbox_of(stack.accounts.doctor))
    answer = await reply(client, 1, "Et pourtant je réponds")
    assert answer.status_code == 400 and str(escape(text)) in answer.text
    assert "Et pourtant je réponds" in answer.text  # what was typed is kept
    assert len(await stack.inbox_of(stack.accounts.doctor)) == before
    assert await sent_copies(stack, stack.accounts.parent) == []
    # A later ordinary message from the doctor reopens the exchange (policy P4).
    uid = await stack.write_to_citizen(stack.accounts.doctor, stack.accounts.parent)
    assert (await reply(client, uid, "Merci")).status_code == 303


async def test_no_reply_mailbox_offers_no_reply(client: httpx.AsyncClient) -> None:
    page = await client.get("/messages/reception/2")  # the demo's report, from a no-reply APP
    assert str(escape(DECISIONS[Reason.NO_REPLY_MAILBOX].text)) in page.text
    assert "/repondre" not in page.text


async def test_write_to_my_pharmacy_where_p3_allows(
    stack: WebStack, client: httpx.AsyncClient
) -> None:
    page = await client.get("/ecrire", params={"q": "pharmacie centrale"})
    assert "Pharmacie Centrale" in page.text
    assert f'href="/ecrire/{PHARMACY_ADDRESS}"' in page.text
    assert "Dr Claire Martin" in page.text  # a correspondent who wrote
    form = await client.get(f"/ecrire/{PHARMACY_ADDRESS}")
    answer = await client.post(
        f"/ecrire/{PHARMACY_ADDRESS}",
        data={"csrf": csrf_of(form.text), "objet": "Ordonnance", "corps": "Est-elle prête ?"},
    )
    assert answer.status_code == 303 and answer.headers["location"] == "/envoyes?etat=envoye"
    [copy] = await sent_copies(stack, stack.accounts.parent)
    assert parsed(copy)["To"].addresses[0].domain == PHARMACY_DOMAIN
    # Léa has no dispensation there: the policy's text, and no form.
    assert PHARMACY_ADDRESS.endswith(PHARMACY_DOMAIN)


async def test_writing_to_someone_who_never_wrote_is_refused(
    stack: WebStack, client: httpx.AsyncClient
) -> None:
    target = "dr.bernard@clinique-demo.mssante.fr"
    page = await client.get(f"/ecrire/{target}")
    assert 'action="/ecrire/' not in page.text
    answer = await client.post(
        f"/ecrire/{target}", data={"csrf": csrf_of(page.text), "objet": "x", "corps": "y"}
    )
    assert answer.status_code == 400
    assert await sent_copies(stack, stack.accounts.parent) == []


async def test_guardian_switches_to_a_child_profile_and_acts_in_its_name(
    stack: WebStack, client: httpx.AsyncClient
) -> None:
    child = stack.accounts.child
    uid = await stack.write_to_citizen(stack.accounts.doctor, child, subject="Vaccin de Léa")
    page = await client.get("/profils")
    assert "Léa Lefebvre" in page.text and "Enfant" in page.text
    answer = await client.post(
        "/profils", data={"csrf": csrf_of(page.text), "profil": str(child.id)}
    )
    assert answer.headers["location"] == "/messages"
    listing = await client.get("/messages")
    assert "Vaccin de Léa" in listing.text and "Léa Lefebvre" in listing.text
    assert (await reply(client, uid, "Merci pour Léa")).status_code == 303
    delivered = parsed((await stack.inbox_of(stack.accounts.doctor))[-1])
    assert delivered["From"].addresses[0].addr_spec == child.address
    history = await stack.store.audit.history(child.address)
    acted = {(r.action, r.actor, r.acting_for) for r in history}
    parent = stack.accounts.parent.address
    assert ("switch-profile", parent, child.address) in acted
    assert ("webmail-read", parent, child.address) in acted
    assert ("webmail-send", parent, child.address) in acted
    page = await client.get("/historique")
    assert "Ouverture de ce profil" in page.text and "par Vous" in page.text


async def test_a_profile_one_does_not_guard_cannot_be_chosen(
    stack: WebStack, client: httpx.AsyncClient
) -> None:
    page = await client.get("/profils")
    answer = await client.post(
        "/profils", data={"csrf": csrf_of(page.text), "profil": str(stack.accounts.doctor.id)}
    )
    assert answer.headers["location"] == "/profils"
    assert "Dr Claire Martin" not in (await client.get("/profils")).text


async def test_ended_guardianship_ends_access_at_the_next_request(
    stack: WebStack, client: httpx.AsyncClient
) -> None:
    child = stack.accounts.child
    page = await client.get("/profils")
    await client.post("/profils", data={"csrf": csrf_of(page.text), "profil": str(child.id)})
    await stack.store.accounts.remove_guardian(child.id, stack.accounts.parent.id)
    page = await client.get("/messages")
    assert "Profil affiché : <strong>Paul Lefebvre</strong>" in page.text


@pytest.mark.parametrize(
    ("path", "fields"),
    [
        ("/deconnexion", {}),
        ("/profils", {"profil": "1"}),
        ("/messages/reception/1/repondre", {"corps": "forged"}),
        ("/messages/reception/1/accuse", {"choix": "envoyer"}),
        ("/ecrire/officine.centrale@pharmacie-demo.mssante.fr", {"objet": "x", "corps": "y"}),
    ],
)
async def test_attack_csrf_every_form_needs_the_session_token(
    stack: WebStack, client: httpx.AsyncClient, path: str, fields: dict[str, str]
) -> None:
    before = len(await stack.inbox_of(stack.accounts.doctor))
    for data in ({**fields}, {**fields, "csrf": "forged"}):
        answer = await client.post(path, data=data)
        assert answer.status_code == 403, (path, data)
    page = await client.get("/messages")
    answer = await client.post(
        path,
        data={**fields, "csrf": csrf_of(page.text)},
        headers={"Origin": "https://evil.example"},
    )
    assert answer.status_code == 403
    assert (await client.get("/messages")).status_code == 200  # still logged in
    assert len(await stack.inbox_of(stack.accounts.doctor)) == before


async def test_oversized_upload_is_refused_before_it_is_read(
    stack: WebStack, client: httpx.AsyncClient
) -> None:
    limit = stack.smtp.settings.limits.message_size
    page = await client.get("/messages/reception/1")
    answer = await client.post(
        "/messages/reception/1/repondre",
        data={"csrf": csrf_of(page.text), "corps": "x"},
        files=[("fichiers", ("big.bin", b"\0" * (limit + 2 * 1024 * 1024), "application/pdf"))],
    )
    assert answer.status_code == 413


async def test_upload_over_the_per_file_limit_is_refused_by_name(
    tmp_path: Path, database_url: str
) -> None:
    async with (
        webmail_stack(
            tmp_path, database_url, sections={"webmail": {"upload_size": 1024 * 1024}}
        ) as stack,
        stack.client() as client,
    ):
        await login(client, stack.outbox, PARENT_INS)
        answer = await reply(
            client, 1, "x", [("gros.pdf", b"%PDF" + b"\0" * (1024 * 1024), "application/pdf")]
        )
        assert answer.status_code == 400 and "gros.pdf" in answer.text and "1 Mo" in answer.text


# -- read receipts ---------------------------------------------------------------------------


def with_receipt(to: str, *, subject: str = "Merci") -> bytes:
    headers = {"Disposition-Notification-To": to}
    raw = build_message(
        sender="Dr Claire Martin <dr.martin@hopital-demo.mssante.fr>",
        to=["180017512345660@patient.mssante.fr"],
        subject=subject,
        headers=headers,
    )
    return raw


async def receipts_to_doctor(stack: WebStack) -> list[email.message.EmailMessage]:
    return await receipts_to(stack, stack.accounts.doctor)


async def receipts_to(stack: WebStack, account: Account) -> list[email.message.EmailMessage]:
    return [
        message
        for message in map(parsed, await stack.inbox_of(account))
        if message.get_content_type() == "multipart/report"
    ]


async def test_read_receipt_asked_then_sent_once(
    stack: WebStack, client: httpx.AsyncClient
) -> None:
    doctor = stack.accounts.doctor
    await stack.send_as(doctor, stack.accounts.parent, with_receipt(doctor.address))
    page = await client.get("/messages/reception/3")
    assert "Accusé de lecture demandé" in page.text
    for _ in range(2):  # a double click sends one
        answer = await client.post(
            "/messages/reception/3/accuse", data={"csrf": csrf_of(page.text), "choix": "envoyer"}
        )
    assert answer.status_code == 303
    [mdn] = await receipts_to_doctor(stack)
    assert mdn.get_param("report-type") == "disposition-notification"
    parts = list(mdn.iter_parts())
    assert [part.get_content_type() for part in parts] == [
        "text/plain",
        "message/disposition-notification",
    ]
    fields = parts[1].as_string()
    assert "Disposition: manual-action/MDN-sent-manually; displayed" in fields
    assert f"Final-Recipient: rfc822;{stack.accounts.parent.address}" in fields
    original = parsed((await stack.inbox_of(stack.accounts.parent))[2])
    assert f"Original-Message-ID: {original['Message-ID']}" in fields
    assert "Accusé de lecture demandé" not in (await client.get("/messages/reception/3")).text


async def test_read_receipt_declined_is_never_sent(
    stack: WebStack, client: httpx.AsyncClient
) -> None:
    doctor = stack.accounts.doctor
    await stack.send_as(doctor, stack.accounts.parent, with_receipt(doctor.address))
    page = await client.get("/messages/reception/3")
    await client.post(
        "/messages/reception/3/accuse", data={"csrf": csrf_of(page.text), "choix": "refuser"}
    )
    await client.post(
        "/messages/reception/3/accuse", data={"csrf": csrf_of(page.text), "choix": "envoyer"}
    )
    assert await receipts_to_doctor(stack) == []
    assert "Accusé de lecture demandé" not in (await client.get("/messages/reception/3")).text


@pytest.mark.parametrize(
    ("setting", "return_path_matches", "sent_on_open", "asked"),
    [
        ("always", True, True, False),
        ("always", False, False, True),  # RFC 8098 §2.1: never automatically then
        ("never", True, False, False),
    ],
)
async def test_read_receipt_settings(
    tmp_path: Path,
    database_url: str,
    setting: str,
    return_path_matches: bool,
    sent_on_open: bool,
    asked: bool,
) -> None:
    sections = {"webmail": {"read_receipts": setting}}
    async with webmail_stack(tmp_path, database_url, sections=sections) as stack:
        doctor = stack.accounts.doctor
        # The pipeline's Return-Path is the envelope sender (the doctor); a receipt asked for
        # another address (the ORG mailbox) does not match it.
        asker = doctor if return_path_matches else stack.accounts.secretariat
        await stack.send_as(doctor, stack.accounts.parent, with_receipt(asker.address))
        async with stack.client() as client:
            await login(client, stack.outbox, PARENT_INS)
            first = await client.get("/messages/reception/3")
            await client.get("/messages/reception/3")
        mdns = await receipts_to(stack, asker)
        assert len(mdns) == (1 if sent_on_open else 0)
        assert ("Accusé de lecture demandé" in first.text) is asked
        if sent_on_open:
            fields = list(mdns[0].iter_parts())[1].as_string()
            assert "Disposition: manual-action/MDN-sent-automatically; displayed" in fields
            assert mdns[0]["Auto-Submitted"] == "auto-replied"


async def test_read_receipt_to_outside_the_trust_space_is_refused_by_the_policy(
    stack: WebStack, client: httpx.AsyncClient
) -> None:
    raw = with_receipt("espion@gmail.com")
    await stack.send_as(stack.accounts.doctor, stack.accounts.parent, raw)
    page = await client.get("/messages/reception/3")
    answer = await client.post(
        "/messages/reception/3/accuse", data={"csrf": csrf_of(page.text), "choix": "envoyer"}
    )
    assert answer.headers["location"].endswith("accuse-impossible")
    records = [r for r in await stack.store.audit.history(stack.accounts.parent.address)]
    [receipt] = [r for r in records if r.action == "read-receipt"]
    assert receipt.result.startswith("refused:")
