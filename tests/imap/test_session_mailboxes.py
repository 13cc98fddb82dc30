"""Session tier: SELECT/EXAMINE with \\Recent, STATUS, LIST/LSUB (LIST-EXTENDED, LIST-STATUS,
SPECIAL-USE), CREATE/DELETE/RENAME/SUBSCRIBE, names in modified UTF-7."""

from __future__ import annotations

from plitest.imap import InMemoryImap, imap_services
from plitest.store import build_message

from pli.mailbox.store import Account, DeliveryTarget, Store


async def deliver(store: Store, account: Account, count: int = 1, **kwargs: object) -> None:
    for _ in range(count):
        await store.messages.deliver(build_message(**kwargs), [DeliveryTarget(account.id)])  # type: ignore[arg-type]


async def test_select_answers_every_rfc3501_item(
    store: Store, account: Account, imap: InMemoryImap
) -> None:
    await deliver(store, account, 3)
    inbox = await store.folders.get(account.id, "INBOX")
    await store.messages.store_flags(inbox.id, [(1, 1)], "+", ["\\Seen"])
    reply = await imap.command("SELECT INBOX")
    assert reply.tagged.endswith(b"OK [READ-WRITE] SELECT completed\r\n")
    assert reply.lines == [
        b"* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n",
        b"* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft \\*)] Flags"
        b" permitted\r\n",
        b"* 3 EXISTS\r\n",
        b"* 3 RECENT\r\n",
        b"* OK [UNSEEN 2] First unseen\r\n",
        b"* OK [UIDVALIDITY %d] UIDs valid\r\n" % inbox.uidvalidity,
        b"* OK [UIDNEXT 4] Predicted next UID\r\n",
        b"* OK [HIGHESTMODSEQ %d] Highest\r\n" % (inbox.highestmodseq + 1),
    ]


async def test_recent_goes_to_the_first_read_write_session_only(
    store: Store, account: Account, imap: InMemoryImap
) -> None:
    await deliver(store, account, 2)
    examine = await imap.command("EXAMINE INBOX")
    assert b"* 2 RECENT\r\n" in examine.lines and b"[READ-ONLY]" in examine.tagged
    assert b"PERMANENTFLAGS ()" in examine.text().encode()
    status = await imap.command("STATUS INBOX (RECENT MESSAGES UNSEEN)")
    assert status.lines == [b"* STATUS INBOX (RECENT 2 MESSAGES 2 UNSEEN 2)\r\n"]
    assert b"* 2 RECENT\r\n" in (await imap.command("SELECT INBOX")).lines
    fetched = await imap.command("FETCH 1:* FLAGS")
    assert fetched.lines == [
        b"* 1 FETCH (FLAGS (\\Recent))\r\n",
        b"* 2 FETCH (FLAGS (\\Recent))\r\n",
    ]
    async with InMemoryImap.start(imap_services(store)) as other:
        await other.login(account.address)
        assert b"* 0 RECENT\r\n" in (await other.command("SELECT INBOX")).lines
        await deliver(store, account)
        noop = await other.command("NOOP")  # the other session sees the new one first
        assert noop.lines == [b"* 3 EXISTS\r\n", b"* 1 RECENT\r\n"]
    noop = await imap.command("NOOP")
    assert noop.lines == [b"* 3 EXISTS\r\n", b"* 2 RECENT\r\n"]
    assert (await imap.command("SEARCH RECENT")).lines == [b"* SEARCH 1 2\r\n"]


async def test_select_errors(imap: InMemoryImap) -> None:
    missing = await imap.command("SELECT Nowhere")
    assert missing.tagged.endswith(b"NO [NONEXISTENT] Mailbox does not exist\r\n")
    invalid = await imap.command("SELECT &Jjo")  # unterminated modified UTF-7 shift
    assert invalid.status == "NO" and b"modified UTF-7" in invalid.tagged
    assert (await imap.command("FETCH 1 FLAGS")).status == "BAD"  # nothing selected


async def test_list_lsub_and_special_use(imap: InMemoryImap) -> None:
    assert (await imap.command('LIST "" ""')).lines == [b'* LIST (\\Noselect) "/" ""\r\n']
    everything = await imap.command('LIST "" "*"')
    assert everything.lines == [
        b'* LIST (\\HasNoChildren) "/" INBOX\r\n',
        b'* LIST (\\HasNoChildren \\Archive) "/" Archive\r\n',
        b'* LIST (\\HasNoChildren \\Drafts) "/" Drafts\r\n',
        b'* LIST (\\HasNoChildren \\Sent) "/" Sent\r\n',
        b'* LIST (\\HasNoChildren \\Trash) "/" Trash\r\n',
    ]
    special = await imap.command('LIST (SPECIAL-USE) "" "*"')
    assert [line.split()[-1] for line in special.lines] == [
        b"Archive",
        b"Drafts",
        b"Sent",
        b"Trash",
    ]
    assert (await imap.command('LIST "" inbox')).lines == [
        b'* LIST (\\HasNoChildren) "/" INBOX\r\n'
    ]
    assert (await imap.command("CREATE Projets/2024")).ok
    percent = await imap.command('LIST "" "%"')
    assert b'* LIST (\\HasChildren) "/" Projets\r\n' in percent.lines
    assert all(b"2024" not in line for line in percent.lines)
    status = await imap.command('LIST "" "Projets/*" RETURN (STATUS (MESSAGES UIDNEXT))')
    assert status.lines == [
        b'* LIST (\\HasNoChildren) "/" Projets/2024\r\n',
        b"* STATUS Projets/2024 (MESSAGES 0 UIDNEXT 1)\r\n",
    ]


async def test_create_rename_delete_subscribe(store: Store, imap: InMemoryImap) -> None:
    assert (await imap.command("CREATE Dossiers/")).ok  # a trailing delimiter: a hierarchy
    assert (await imap.command('CREATE "R&AOk-sultats"')).ok  # "Résultats"
    exists = await imap.command('CREATE "R&AOk-sultats"')
    assert exists.tagged.endswith(b"NO [ALREADYEXISTS] Mailbox already exists\r\n")
    reserved = await imap.command('CREATE "Partag&AOk-"')  # a namespace's root
    assert b"NO [CANNOT]" in reserved.tagged
    nobody = await imap.command('CREATE "Partag&AOk-/nobody@x.fr/y"')
    assert b"NO [NONEXISTENT]" in nobody.tagged
    special = await imap.command("CREATE Factures (USE (\\Junk))")
    assert special.ok
    assert b"\\Junk" in (await imap.command('LIST "" Factures')).lines[0]
    assert b"NO [USEATTR]" in (await imap.command("CREATE X (USE (\\Bogus))")).tagged
    assert (await imap.command('RENAME "R&AOk-sultats" Dossiers/Labo')).ok
    listed = await imap.command('LIST "" "Dossiers/*"')
    assert listed.lines == [b'* LIST (\\HasNoChildren) "/" Dossiers/Labo\r\n']
    assert b"NO [NONEXISTENT]" in (await imap.command("RENAME Nope Other")).tagged
    # CREATE does not subscribe (RFC 3501 §6.3.3); a deleted subscribed name stays subscribed
    assert (await imap.command('LSUB "" "Dossiers/*"')).lines == []
    assert (await imap.command("SUBSCRIBE Dossiers/Labo")).ok
    assert (await imap.command("DELETE Dossiers/Labo")).ok
    assert (await imap.command('LSUB "" "Dossiers/*"')).lines == [
        b'* LSUB () "/" Dossiers/Labo\r\n'
    ]
    subscribed = await imap.command('LIST (SUBSCRIBED) "" "Dossiers/*"')
    assert subscribed.lines == [b'* LIST (\\Subscribed \\NonExistent) "/" Dossiers/Labo\r\n']
    assert (await imap.command('LIST "" "Dossiers/*"')).lines == []
    assert (await imap.command("UNSUBSCRIBE Dossiers/Labo")).ok
    assert (await imap.command('LSUB "" "*"')).lines == [
        b'* LSUB () "/" INBOX\r\n',
        b'* LSUB () "/" Archive\r\n',
        b'* LSUB () "/" Drafts\r\n',
        b'* LSUB () "/" Sent\r\n',
        b'* LSUB () "/" Trash\r\n',
    ]
    assert b"NO" in (await imap.command("DELETE INBOX")).tagged
    assert b"NO [NONEXISTENT]" in (await imap.command("DELETE Nope")).tagged


async def test_status_of_every_item_and_of_a_missing_mailbox(
    store: Store, account: Account, imap: InMemoryImap
) -> None:
    await deliver(store, account, 2)
    inbox = await store.folders.get(account.id, "INBOX")
    reply = await imap.command(
        "STATUS INBOX (MESSAGES RECENT UIDNEXT UIDVALIDITY UNSEEN HIGHESTMODSEQ APPENDLIMIT)"
    )
    assert reply.lines == [
        b"* STATUS INBOX (MESSAGES 2 RECENT 2 UIDNEXT 3 UIDVALIDITY %d UNSEEN 2 "
        b"HIGHESTMODSEQ %d APPENDLIMIT 26214400)\r\n" % (inbox.uidvalidity, inbox.highestmodseq)
    ]
    assert b"NO [NONEXISTENT]" in (await imap.command("STATUS Nope (MESSAGES)")).tagged


async def test_id_enable_namespace(imap: InMemoryImap) -> None:
    identity = await imap.command('ID ("name" "test")')
    assert identity.lines[0].startswith(b'* ID ("name" "pli" "version" ')
    assert (await imap.command("ENABLE CONDSTORE X-UNKNOWN")).lines == [b"* ENABLED CONDSTORE\r\n"]
    assert (await imap.command("ENABLE CONDSTORE")).lines == [b"* ENABLED\r\n"]
    assert (await imap.command("NAMESPACE")).lines == [
        b'* NAMESPACE (("" "/")) NIL (("Partag&AOk-/" "/"))\r\n'
    ]
