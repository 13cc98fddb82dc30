"""Every limit of the webmail and the notifier, reached and passed: a clear answer, nothing
lost, nothing crashed."""

from __future__ import annotations

import email
import email.policy
from pathlib import Path

import httpx
import pytest
from markupsafe import escape
from plitest.store import build_message
from plitest.web import FakeClock, WebStack, csrf_of, outbox_mails

from pli.mailbox.mime.structure import parse_structure
from pli.mailbox.notify import service as notify_service
from pli.mailbox.notify.relay import DevOutbox
from pli.mailbox.notify.service import SEND_LEASE, Notifier, NotifierConfig
from pli.mailbox.store import DeliveryTarget, Store
from pli.mailbox.store.demo import CITIZEN_DOMAIN, DemoAccounts
from pli.mailbox.web import reading
from pli.mailbox.web.compose import MAX_BODY_CHARS, MAX_SUBJECT_CHARS, MAX_UPLOADS
from pli.mailbox.web.history import HISTORY_PAGE
from pli.mailbox.web.login import BAD_CREDENTIALS, MAX_IDENTIFIER
from pli.mailbox.web.pages import MAX_FORM_FIELDS
from pli.mailbox.web.routes_write import MAX_QUERY
from pli.policy.ins import make_ins


async def test_too_many_form_fields_is_a_plain_400(client: httpx.AsyncClient) -> None:
    page = await client.get("/messages/reception/1")
    fields = {f"f{n}": "x" for n in range(MAX_FORM_FIELDS)}
    answer = await client.post(
        "/messages/reception/1/repondre", data={"csrf": csrf_of(page.text), **fields}
    )
    assert answer.status_code == 400 and "Demande invalide" in answer.text


async def test_one_file_too_many_is_refused_with_a_sentence(
    stack: WebStack, client: httpx.AsyncClient
) -> None:
    page = await client.get("/messages/reception/1")
    files = [("fichiers", (f"f{n}.txt", b"x", "text/plain")) for n in range(MAX_UPLOADS + 1)]
    answer = await client.post(
        "/messages/reception/1/repondre",
        data={"csrf": csrf_of(page.text), "corps": "x"},
        files=files,
    )
    assert answer.status_code == 400
    assert f"au plus {MAX_UPLOADS} fichiers" in answer.text


async def test_a_reply_over_the_text_limit_is_refused_and_kept(client: httpx.AsyncClient) -> None:
    page = await client.get("/messages/reception/1")
    text = "é" * (MAX_BODY_CHARS + 1)
    answer = await client.post(
        "/messages/reception/1/repondre", data={"csrf": csrf_of(page.text), "corps": text}
    )
    assert answer.status_code == 400 and "trop long" in answer.text
    assert text in answer.text


async def test_a_long_subject_is_cut(stack: WebStack, client: httpx.AsyncClient) -> None:
    address = "officine.centrale@pharmacie-demo.mssante.fr"
    page = await client.get(f"/ecrire/{address}")
    answer = await client.post(
        f"/ecrire/{address}",
        data={"csrf": csrf_of(page.text), "objet": "o" * 500, "corps": "Bonjour"},
    )
    assert answer.status_code == 303
    sent = await stack.store.folders.get(stack.accounts.parent.id, "Sent")
    raw = await stack.store.messages.read(sent.id, 1)
    subject = email.message_from_bytes(raw, policy=email.policy.default)["Subject"]
    assert subject == "o" * MAX_SUBJECT_CHARS


async def test_huge_credentials_get_the_usual_answer(stack: WebStack) -> None:
    async with stack.client() as client:
        page = await client.get("/connexion")
        token = page.text.split('name="jeton" value="')[1].split('"')[0]
        answer = await client.post(
            "/connexion",
            data={
                "jeton": token,
                "identifiant": "1" * (MAX_IDENTIFIER * 10),
                "mot_de_passe": "p" * 100_000,
            },
        )
    assert answer.status_code == 400 and str(escape(BAD_CREDENTIALS)) in answer.text


async def test_a_long_search_is_cut(client: httpx.AsyncClient) -> None:
    page = await client.get("/ecrire", params={"q": "centrale " + "x" * 1000})
    assert page.status_code == 200
    assert 'value="centrale ' + "x" * (MAX_QUERY - len("centrale ")) + '"' in page.text


async def test_history_pages(stack: WebStack, client: httpx.AsyncClient) -> None:
    for number in range(HISTORY_PAGE + 5):
        await stack.store.audit.record(
            stack.accounts.parent.address, "webmail-read", mailbox=stack.accounts.parent.address,
            request=f"uid={number}",
        )  # fmt: skip
    first = await client.get("/historique")
    assert first.text.count("<li class=") == HISTORY_PAGE
    link = first.text.split('href="/historique?avant=')[1].split('"')[0]
    second = await client.get(f"/historique?avant={link}")
    assert second.status_code == 200 and second.text.count("<li class=") > 0
    assert (await client.get("/historique?avant=-1")).status_code == 404


def test_embedded_images_beyond_their_budget_are_not_inlined(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from email.message import EmailMessage

    jpeg = b"\xff\xd8\xff\xe0" + b"\x00" * 2000
    message = EmailMessage()
    message.set_content('<img src="cid:a@x" alt="a"><img src="cid:b@x" alt="b">', subtype="html")
    message.add_related(jpeg, maintype="image", subtype="jpeg", cid="<a@x>")
    message.add_related(jpeg, maintype="image", subtype="jpeg", cid="<b@x>")
    raw = message.as_bytes()
    monkeypatch.setattr(reading, "MAX_EMBEDDED_IMAGES_BYTES", 3000)
    found = reading.html_body(raw, parse_structure(raw))
    assert found is not None
    body, blocked = found
    assert body.count("data:image/jpeg;base64,") == 1 and blocked == 1


# -- notifier batches and leases -------------------------------------------------------------


def _config() -> NotifierConfig:
    return NotifierConfig(3600, True, "n@pli.test", "https://x", "pli.test", 5)


async def test_more_new_mail_than_a_scan_batch(
    store: Store, accounts: DemoAccounts, clock: FakeClock, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.setattr(notify_service, "SCAN_BATCH", 2)
    monkeypatch.setattr(notify_service, "SEND_BATCH", 2)
    outbox = tmp_path / "outbox"
    notifier = Notifier(store, _config(), DevOutbox(outbox), clock=clock)
    await notifier.run_once()
    clock.advance(3601)
    citizens = [
        await store.accounts.create_citizen(
            make_ins(f"1800175123{number:03d}"), CITIZEN_DOMAIN,
            notification_address=f"c{number}@example.org",
        )
        for number in range(5)
    ]  # fmt: skip
    for citizen in citizens:
        await store.messages.deliver(build_message(), [DeliveryTarget(citizen.id)])
    before = len(outbox_mails(outbox))
    report = await notifier.run_once()
    assert (report.new_messages, report.decided, report.sent) == (5, 5, 5)
    assert len(outbox_mails(outbox)) == before + 5


async def test_a_claim_of_a_dead_process_is_taken_over_after_the_lease(
    store: Store, accounts: DemoAccounts, clock: FakeClock, tmp_path: Path
) -> None:
    outbox = tmp_path / "outbox"
    dead = Notifier(store, _config(), DevOutbox(outbox), clock=clock)
    await dead.scan()
    await dead.decide()
    assert len(await dead._claim()) == 1  # claimed, then the process died
    alive = Notifier(store, _config(), DevOutbox(outbox), clock=clock)
    assert (await alive.run_once()).sent == 0
    clock.advance(SEND_LEASE + 1)
    assert (await alive.run_once()).sent == 1
