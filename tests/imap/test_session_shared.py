"""Session tier: the mailboxes a person may act in appear as namespaces (RFC 2342): ORG
mailboxes for their members under ``Partagé/``, wards for their guardians under ``Proches/``;
rights are checked at every access and every action there is audited with ``acting_for``."""

from __future__ import annotations

from plitest.imap import PASSWORD, InMemoryImap, imap_services, professional
from plitest.store import build_message

from pli.mailbox.store import AccountKind, DeliveryTarget, Store
from pli.policy.ins import make_ins

SHARED = "Partag&AOk-"  # "Partagé" in modified UTF-7


async def test_an_org_mailbox_appears_in_the_shared_namespace_of_its_members(
    store: Store,
) -> None:
    person = await professional(store, "j.durand")
    org = await professional(store, "secretariat", AccountKind.ORG)
    await store.accounts.add_member(org.id, person.id)
    await store.messages.deliver(
        build_message(subject="pour le secrétariat"), [DeliveryTarget(org.id)]
    )
    inbox = f"{SHARED}/{org.address}/INBOX"
    async with InMemoryImap.start(imap_services(store)) as imap:
        await imap.login(person.address)
        namespace = await imap.command("NAMESPACE")
        assert namespace.lines == [b'* NAMESPACE (("" "/")) NIL (("Partag&AOk-/" "/"))\r\n']
        listed = await imap.command(f'LIST "" "{SHARED}/*"')
        assert listed.lines == [
            b'* LIST (\\Noselect \\HasChildren) "/" Partag&AOk-/%b\r\n' % org.address.encode()
        ] + [
            b'* LIST (\\HasNoChildren%b) "/" Partag&AOk-/%b/%b\r\n'
            % (role, org.address.encode(), name)
            for name, role in (
                (b"Archive", b" \\Archive"),
                (b"Drafts", b" \\Drafts"),
                (b"INBOX", b""),
                (b"Sent", b" \\Sent"),
                (b"Trash", b" \\Trash"),
            )
        ]
        personal = await imap.command('LIST "" "%"')
        assert b'"/" Partag&AOk-\r\n' in b"".join(personal.lines)
        select = await imap.command(f'SELECT "{inbox}"')
        assert select.ok and b"* 1 EXISTS\r\n" in select.lines
        assert (await imap.command("STORE 1 +FLAGS (\\Seen)")).ok
        assert (await imap.command("COPY 1 INBOX")).ok  # into the person's own INBOX
        assert (await imap.command(f'STATUS "{inbox}" (MESSAGES UNSEEN)')).lines == [
            b"* STATUS %b (MESSAGES 1 UNSEEN 0)\r\n" % inbox.encode()
        ]
        root = await imap.command(f'SELECT "{SHARED}/{org.address}"')
        assert root.status == "NO"  # the address level is not a mailbox
    history = await store.audit.history(org.address)
    actions = [(record.action, record.actor, record.acting_for) for record in history]
    for action in ("imap-select", "imap-store", "imap-copy"):
        assert (action, person.address, org.address) in actions
    own = await store.audit.history(person.address)
    assert not [record for record in own if record.action == "imap-select"]  # its own: no audit


async def test_a_stranger_sees_nothing_and_a_removed_member_loses_access(store: Store) -> None:
    person = await professional(store, "j.durand")
    stranger = await professional(store, "stranger")
    org = await professional(store, "secretariat", AccountKind.ORG)
    await store.accounts.add_member(org.id, person.id)
    inbox = f'"{SHARED}/{org.address}/INBOX"'
    services = imap_services(store)
    async with InMemoryImap.start(services) as imap:
        await imap.login(stranger.address)
        assert (await imap.command(f'LIST "" "{SHARED}/*"')).lines == []
        refused = await imap.command(f"SELECT {inbox}")
        assert refused.tagged.endswith(b"NO [NONEXISTENT] Mailbox does not exist\r\n")
        assert (await imap.command(f"STATUS {inbox} (MESSAGES)")).status == "NO"
        assert (await imap.command(f"APPEND {inbox} {{3+}}\r\nabc")).status == "NO"
    async with InMemoryImap.start(services) as imap:
        await imap.login(person.address)
        assert (await imap.command(f"SELECT {inbox}")).ok
        await store.accounts.remove_member(org.id, person.id)
        assert (await imap.command(f"EXAMINE {inbox}")).status == "NO"  # checked at every access


async def test_a_guardian_reads_the_ward_mailbox_under_proches(store: Store) -> None:
    parent = await store.accounts.create_citizen(
        make_ins("1800175123456"), "patient.mssante.fr", password=PASSWORD
    )
    child = await store.accounts.create_citizen(make_ins("2150375123457"), "patient.mssante.fr")
    await store.accounts.add_guardian(child.id, parent.id, "parent")
    await store.messages.deliver(build_message(subject="vaccin"), [DeliveryTarget(child.id)])
    async with InMemoryImap.start(imap_services(store)) as imap:
        await imap.login(parent.ins or "")  # a citizen may log in with the INS alone
        namespace = await imap.command("NAMESPACE")
        assert namespace.lines == [b'* NAMESPACE (("" "/")) (("Proches/" "/")) NIL\r\n']
        inbox = f'"Proches/{child.address}/INBOX"'
        assert b"* 1 EXISTS\r\n" in (await imap.command(f"SELECT {inbox}")).lines
        body = await imap.command("FETCH 1 BODY[HEADER.FIELDS (SUBJECT)]")
        assert b"Subject: vaccin" in body.lines[0]
        shared = await imap.command(f'SELECT "{SHARED}/{child.address}/INBOX"')
        assert shared.status == "NO"  # a ward is not an ORG mailbox
    history = await store.audit.history(child.address)
    assert ("imap-select", parent.address, child.address) in [
        (record.action, record.actor, record.acting_for) for record in history
    ]
