"""Folders (IMAP mailbox semantics) and accounts (kinds, authentication means, members,
guardians)."""

from __future__ import annotations

import pytest
from plitest.store import build_message, demo

from pli.mailbox.auth.totp import totp
from pli.mailbox.store import (
    AccountKind,
    AlreadyExists,
    DeliveryTarget,
    InvalidRequest,
    NotFound,
    ProfileStatus,
    Store,
)
from pli.mailbox.store.folders import MAX_FOLDER_DEPTH
from pli.mailbox.store.records import CertificateIdentity

DOMAIN = "hopital-demo.mssante.fr"


async def test_default_folders_have_special_use_roles(store: Store) -> None:
    account = await store.accounts.create(f"a@{DOMAIN}", AccountKind.PER)
    folders = {f.name: f for f in await store.folders.all(account.id)}
    assert {name: f.special_use for name, f in folders.items()} == {
        "Archive": "\\Archive",
        "Drafts": "\\Drafts",
        "INBOX": None,
        "Sent": "\\Sent",
        "Trash": "\\Trash",
    }
    assert len({f.uidvalidity for f in folders.values()}) == 5


async def test_create_rename_delete_follow_imap_semantics(store: Store) -> None:
    account = await store.accounts.create(f"a@{DOMAIN}", AccountKind.PER)
    created = await store.folders.create(account.id, "Projets/2024/Mars")
    names = {f.name: f for f in await store.folders.all(account.id)}
    assert {"Projets", "Projets/2024", "Projets/2024/Mars"} <= set(names)
    assert names["Projets"].has_children and not names["Projets/2024/Mars"].has_children
    with pytest.raises(AlreadyExists):
        await store.folders.create(account.id, "Projets/2024/Mars")
    renamed = await store.folders.rename(account.id, "Projets", "Travail")
    assert renamed.uidvalidity == names["Projets"].uidvalidity
    moved = await store.folders.get(account.id, "Travail/2024/Mars")
    assert moved.id == created.id
    await store.folders.delete(account.id, "Travail/2024/Mars")
    recreated = await store.folders.create(account.id, "Travail/2024/Mars")
    assert recreated.uidvalidity > created.uidvalidity  # RFC 9051 §2.3.1.1
    await store.folders.delete(account.id, "Travail")  # has children: becomes \Noselect
    assert (await store.folders.get(account.id, "Travail")).noselect
    with pytest.raises(InvalidRequest):
        await store.folders.delete(account.id, "inbox")
    for bad in (
        "",
        "/a",
        "a/",
        "a//b",
        "a*",
        "a%b",
        "a\x01",
        "/".join(["x"] * (MAX_FOLDER_DEPTH + 1)),
    ):
        with pytest.raises(InvalidRequest):
            await store.folders.create(account.id, bad)


async def test_rename_inbox_moves_its_messages_and_leaves_it_empty(store: Store) -> None:
    account = await store.accounts.create(f"a@{DOMAIN}", AccountKind.PER)
    await store.messages.deliver(build_message(), [DeliveryTarget(account.id)])
    target = await store.folders.rename(account.id, "INBOX", "Ancien")
    assert await store.messages.uids(target.id) == [1]
    inbox = await store.folders.get(account.id, "INBOX")
    assert (await store.folders.status(inbox.id)).exists == 0


async def test_status_counts(store: Store) -> None:
    account = await store.accounts.create(f"a@{DOMAIN}", AccountKind.PER)
    for _ in range(3):
        await store.messages.deliver(build_message(), [DeliveryTarget(account.id)])
    inbox = await store.folders.get(account.id, "INBOX")
    await store.messages.store_flags(inbox.id, [(1, 1)], "+", ["\\Seen"])
    await store.messages.store_flags(inbox.id, [(3, 3)], "+", ["\\Deleted"])
    status = await store.folders.status(inbox.id)
    assert (status.exists, status.unseen, status.first_unseen_uid, status.deleted) == (3, 2, 2, 1)
    await store.folders.subscribe(account.id, "Trash", False)
    assert not (await store.folders.get(account.id, "Trash")).subscribed


async def test_account_kinds_and_citizen_ins_validation(store: Store) -> None:
    with pytest.raises(InvalidRequest):
        await store.accounts.create(f"x@{DOMAIN}", AccountKind.PER, no_reply=True)
    with pytest.raises(InvalidRequest):
        await store.accounts.create("not an address", AccountKind.PER)
    with pytest.raises(InvalidRequest, match="ins-key"):
        await store.accounts.create_citizen("146026322000197", "patient.mssante.fr")
    corsican = await store.accounts.create_citizen("270062a00401292", "patient.mssante.fr")
    assert (
        corsican.address == "270062a00401292@patient.mssante.fr"
        and corsican.ins == "270062A00401292"
    )
    with pytest.raises(AlreadyExists):
        await store.accounts.create_citizen("270062A00401292", "patient.mssante.fr")
    closed = await store.accounts.set_profile_status("270062A00401292", ProfileStatus.CLOSED)
    assert closed.profile_status is ProfileStatus.CLOSED
    assert (await store.accounts.by_address("270062A00401292@PATIENT.mssante.fr")).id == corsican.id


async def test_password_totp_certificate_and_oauth_lookups(store: Store) -> None:
    account = await store.accounts.create(
        f"app@{DOMAIN}", AccountKind.APP, password="long enough pw"
    )
    assert await store.accounts.verify_password(account.id, "long enough pw")
    assert not await store.accounts.verify_password(account.id, "long enough pX")
    with pytest.raises(InvalidRequest):
        await store.accounts.set_password(account.id, "short")
    secret = await store.accounts.enable_totp(account.id)
    code = totp(secret, at=1_700_000_000)
    assert await store.accounts.verify_totp(account.id, code, at=1_700_000_000)
    assert not await store.accounts.verify_totp(account.id, code, at=1_700_000_000)  # replay
    fingerprint = "AB" * 32
    await store.accounts.add_certificate(
        account.id, CertificateIdentity(dn="CN=app,O=CH", fingerprint=fingerprint)
    )
    other = await store.accounts.create(f"per@{DOMAIN}", AccountKind.PER)
    await store.accounts.add_certificate(other.id, CertificateIdentity(rpps="10101010101"))
    by_fp = await store.accounts.by_certificate(
        CertificateIdentity(fingerprint=fingerprint.lower())
    )
    assert [a.id for a in by_fp] == [account.id]
    by_rpps = await store.accounts.by_certificate(
        CertificateIdentity(dn="CN=x", rpps="10101010101")
    )
    assert [a.id for a in by_rpps] == [other.id]
    assert await store.accounts.by_certificate(CertificateIdentity(rpps="999")) == []
    await store.accounts.add_oauth_subject(other.id, "810101010101")
    assert [a.id for a in await store.accounts.by_oauth_subject("810101010101")] == [other.id]
    credentials = await store.accounts.credentials(account.id)
    assert credentials.has_password and credentials.has_totp and len(credentials.certificates) == 1


async def test_demo_members_guardians_and_who_may_act(store: Store) -> None:
    accounts = await demo(store)
    assert [m.id for m in await store.accounts.members(accounts.secretariat.id)] == [
        accounts.secretary.id
    ]
    assert await store.accounts.may_act_for(accounts.secretary.id, accounts.secretariat.id)
    assert not await store.accounts.may_act_for(accounts.doctor.id, accounts.secretariat.id)
    assert await store.accounts.may_act_for(accounts.parent.id, accounts.child.id)
    assert not await store.accounts.may_act_for(accounts.child.id, accounts.parent.id)
    wards = await store.accounts.wards(accounts.parent.id)
    assert [(w.account.id, w.relationship) for w in wards] == [(accounts.child.id, "parent")]
    with pytest.raises(InvalidRequest):
        await store.accounts.add_guardian(accounts.child.id, accounts.doctor.id, "parent")
    again = await demo(store)  # idempotent
    assert again.parent.id == accounts.parent.id
    await store.accounts.remove(accounts.child.address)
    with pytest.raises(NotFound):
        await store.accounts.get(accounts.child.id)
