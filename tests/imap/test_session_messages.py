"""Session tier: FETCH (metadata, sections, partial, implicit \\Seen), SEARCH, STORE (.SILENT,
UNCHANGEDSINCE), COPY/MOVE with COPYUID, APPEND with APPENDUID, EXPUNGE and UID EXPUNGE."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from plitest.imap import InMemoryImap
from plitest.store import build_message

from pli.mailbox.store import Account, DeliveryTarget, Store

MULTIPART = (
    b"From: Dr A <a@x.mssante.fr>\r\n"
    b"To: b@y.mssante.fr\r\n"
    b"Subject: Resultats\r\n"
    b"Date: Mon, 5 Feb 2024 10:11:12 +0100\r\n"
    b"Message-ID: <m1@x>\r\n"
    b"MIME-Version: 1.0\r\n"
    b'Content-Type: multipart/mixed; boundary="b1"\r\n'
    b"\r\n"
    b"preamble\r\n"
    b"--b1\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"\r\n"
    b"Bonjour\r\n"
    b"--b1\r\n"
    b"Content-Type: message/rfc822\r\n"
    b"\r\n"
    b"Subject: inner\r\n"
    b"From: c@z\r\n"
    b"\r\n"
    b"inner body\r\n"
    b"--b1--\r\n"
)


async def deliver(store: Store, account: Account, raw: bytes, **kwargs: object) -> None:
    await store.messages.deliver(raw, [DeliveryTarget(account.id)], **kwargs)  # type: ignore[arg-type]


async def test_metadata_fetch(store: Store, account: Account, imap: InMemoryImap) -> None:
    when = datetime(2024, 2, 5, 9, 11, 12, tzinfo=UTC)
    await deliver(store, account, MULTIPART, internal_date=when)
    await imap.command("SELECT INBOX")
    reply = await imap.command("UID FETCH 1:* (FLAGS INTERNALDATE RFC822.SIZE ENVELOPE)")
    assert reply.lines == [
        b'* 1 FETCH (UID 1 FLAGS (\\Recent) INTERNALDATE "05-Feb-2024 09:11:12 +0000" '
        b"RFC822.SIZE %d ENVELOPE "
        % len(MULTIPART)
        + b'("Mon, 5 Feb 2024 10:11:12 +0100" "Resultats" (("Dr A" NIL "a" "x.mssante.fr")) '
        b'(("Dr A" NIL "a" "x.mssante.fr")) (("Dr A" NIL "a" "x.mssante.fr")) '
        b'((NIL NIL "b" "y.mssante.fr")) NIL NIL NIL "<m1@x>"))\r\n'
    ]
    again = await imap.command("UID FETCH 1:* (FLAGS INTERNALDATE RFC822.SIZE ENVELOPE)")
    assert again.lines == reply.lines  # from the render cache: the same octets
    structure = await imap.command("FETCH 1 (BODYSTRUCTURE BODY)")
    text = structure.lines[0]
    assert text.startswith(b'* 1 FETCH (BODYSTRUCTURE (("text" "plain" ("charset" "utf-8")')
    assert (
        b'("message" "rfc822" NIL NIL NIL "7BIT" ' in text and b' "mixed" ("boundary" "b1")' in text
    )
    assert b' BODY (("text" "plain" ("charset" "utf-8") NIL NIL "7BIT" 7 1)' in text


async def test_sections_partial_and_implicit_seen(
    store: Store, account: Account, imap: InMemoryImap
) -> None:
    await deliver(store, account, MULTIPART)
    await imap.command("SELECT INBOX")
    peek = await imap.command("FETCH 1 (BODY.PEEK[1] BODY.PEEK[2.HEADER] BODY.PEEK[2.1])")
    assert peek.lines == [
        b"* 1 FETCH (BODY[1] {7}\r\nBonjour BODY[2.HEADER] {29}\r\nSubject: inner\r\nFrom: c@z\r\n"
        b"\r\n BODY[2.1] {10}\r\ninner body)\r\n"
    ]
    assert (await imap.command("FETCH 1 FLAGS")).lines == [b"* 1 FETCH (FLAGS (\\Recent))\r\n"]
    mime = await imap.command("FETCH 1 (BODY.PEEK[1.MIME] BODY.PEEK[3] BODY.PEEK[TEXT]<0.8>)")
    assert mime.lines == [
        b"* 1 FETCH (BODY[1.MIME] {43}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
        b" BODY[3] NIL BODY[TEXT]<0> {8}\r\npreamble)\r\n"
    ]
    fields = await imap.command("FETCH 1 BODY[HEADER.FIELDS (subject MESSAGE-ID)]")
    assert fields.lines == [
        b"* 1 FETCH (BODY[HEADER.FIELDS (subject MESSAGE-ID)] {42}\r\n"
        b"Subject: Resultats\r\nMessage-ID: <m1@x>\r\n\r\n FLAGS (\\Recent \\Seen))\r\n"
    ]
    assert (await imap.command("FETCH 1 RFC822.SIZE")).ok
    whole = await imap.command("FETCH 1 RFC822")
    assert whole.lines == [b"* 1 FETCH (RFC822 {%d}\r\n%b)\r\n" % (len(MULTIPART), MULTIPART)]


async def test_sequence_numbers_beyond_the_mailbox_are_bad(
    store: Store, account: Account, imap: InMemoryImap
) -> None:
    await imap.command("SELECT INBOX")
    assert (await imap.command("FETCH 1 FLAGS")).status == "BAD"  # empty mailbox
    assert (await imap.command("UID FETCH 1:* FLAGS")).ok  # UIDs: nothing, no error
    await deliver(store, account, MULTIPART)
    await imap.command("NOOP")
    assert (await imap.command("FETCH 2 FLAGS")).status == "BAD"
    assert (await imap.command("FETCH 1:* FLAGS")).ok


async def test_search_keys(store: Store, account: Account, imap: InMemoryImap) -> None:
    for subject, sender in (("Convocation", "dr.a@x.fr"), ("Résultats", "labo@y.fr")):
        raw = build_message(subject=subject, sender=sender, body=f"corps {subject}\n")
        await deliver(store, account, raw)
    await deliver(store, account, MULTIPART)
    await imap.command("SELECT INBOX")
    await imap.command("STORE 2 +FLAGS (\\Flagged $Urgent)")

    async def found(criteria: str) -> bytes:
        reply = await imap.command(f"SEARCH {criteria}")
        assert reply.ok, reply.text()
        return reply.lines[0]

    assert await found("ALL") == b"* SEARCH 1 2 3\r\n"
    assert await found("SUBJECT convocation") == b"* SEARCH 1\r\n"
    word = "résultats".encode()
    utf8 = await imap.command(b"SEARCH CHARSET UTF-8 SUBJECT {%d+}\r\n%b" % (len(word), word))
    assert utf8.lines == [b"* SEARCH 2\r\n"]
    assert await found("FROM labo@y") == b"* SEARCH 2\r\n"
    assert await found("FLAGGED KEYWORD $urgent") == b"* SEARCH 2\r\n"
    assert await found("NOT FLAGGED") == b"* SEARCH 1 3\r\n"
    assert await found("OR 1 3") == b"* SEARCH 1 3\r\n"
    assert await found("BODY inner") == b"* SEARCH 3\r\n"
    assert await found("TEXT Bonjour") == b"* SEARCH 3\r\n"
    assert await found("HEADER Message-ID <m1@x>") == b"* SEARCH 3\r\n"
    assert await found("SENTON 5-Feb-2024") == b"* SEARCH 3\r\n"
    assert await found(f"LARGER {len(MULTIPART) - 1}") == b"* SEARCH 3\r\n"
    assert await found("UID 2:*") == b"* SEARCH 2 3\r\n"
    assert (await imap.command("UID SEARCH FROM labo")).lines == [b"* SEARCH 2\r\n"]
    charset = await imap.command("SEARCH CHARSET KOI8-R ALL")
    assert charset.tagged.endswith(
        b"NO [BADCHARSET (US-ASCII UTF-8)] unsupported charset (RFC 3501 \xc2\xa76.4.4)\r\n"
    )
    modseq = await imap.command("SEARCH MODSEQ 1")
    # RFC 7162 §3.1: the first CONDSTORE-enabling command announces HIGHESTMODSEQ
    assert re.fullmatch(rb"\* OK \[HIGHESTMODSEQ \d+\] Highest\r\n", modseq.lines[0])
    assert re.fullmatch(rb"\* SEARCH 1 2 3 \(MODSEQ \d+\)\r\n", modseq.lines[1])
    esearch = await imap.command("UID SEARCH RETURN (MIN COUNT) MODSEQ 1 NOT 2")
    assert re.fullmatch(
        rb'\* ESEARCH \(TAG "t\d+"\) UID MIN 1 COUNT 2 MODSEQ \d+\r\n', esearch.lines[0]
    )
    assert (await imap.command("SEARCH RETURN () 2:3")).lines[0].endswith(b" ALL 2:3\r\n")
    assert (await imap.command("SEARCH RETURN (COUNT) 99")).status == "OK"
    assert (await imap.command("SEARCH RETURN (SAVE) ALL")).status == "BAD"


async def test_store_silent_and_unchangedsince(
    store: Store, account: Account, imap: InMemoryImap
) -> None:
    for _ in range(3):
        await deliver(store, account, MULTIPART)
    await imap.command("SELECT INBOX")
    assert (await imap.command("STORE 1:2 +FLAGS.SILENT (\\Seen)")).lines == []
    replaced = await imap.command("STORE 1 FLAGS ($Label1)")
    assert replaced.lines == [b"* 1 FETCH (FLAGS (\\Recent $Label1))\r\n"]
    removed = await imap.command("UID STORE 2 -FLAGS (\\Seen)")
    assert removed.lines == [b"* 2 FETCH (UID 2 FLAGS (\\Recent))\r\n"]
    fetched = await imap.command("FETCH 3 (MODSEQ)")  # enables CONDSTORE
    assert fetched.lines[0].startswith(b"* OK [HIGHESTMODSEQ ")
    modseq = int(re.search(rb"MODSEQ \((\d+)\)", fetched.lines[1]).group(1))  # type: ignore[union-attr]
    await imap.command("STORE 1 +FLAGS (\\Answered)")  # 1 changes after that MODSEQ
    conditional = await imap.command(f"STORE 1,3 (UNCHANGEDSINCE {modseq}) +FLAGS (\\Flagged)")
    assert conditional.tagged.endswith(
        b"OK [MODIFIED 1] Conditional STORE failed for some messages\r\n"
    )
    assert len(conditional.lines) == 1 and conditional.lines[0].startswith(
        b"* 3 FETCH (UID 3 FLAGS (\\Recent \\Flagged) MODSEQ ("
    )
    refused = await imap.command("STORE 1 +FLAGS (\\Recent)")
    assert refused.status == "BAD"


async def test_copy_move_append_expunge(store: Store, account: Account, imap: InMemoryImap) -> None:
    for _ in range(4):
        await deliver(store, account, MULTIPART)
    await imap.command("CREATE Archive/2024")
    select = await imap.command("SELECT INBOX")
    assert b"* 4 EXISTS\r\n" in select.lines
    archive = await store.folders.get(account.id, "Archive/2024")
    copied = await imap.command("COPY 1:2 Archive/2024")
    assert copied.tagged.endswith(
        b"OK [COPYUID %d 1:2 1:2] COPY completed\r\n" % archive.uidvalidity
    )
    missing = await imap.command("COPY 1 Nowhere")
    assert missing.tagged.endswith(b"NO [TRYCREATE] Mailbox does not exist\r\n")
    moved = await imap.command("UID MOVE 3 Archive/2024")
    assert moved.lines == [
        b"* OK [COPYUID %d 3 3] Moved\r\n" % archive.uidvalidity,
        b"* 3 EXPUNGE\r\n",
    ]
    appended = await imap.command(
        b'APPEND INBOX (\\Seen) "05-Feb-2024 10:00:00 +0100" {%d+}\r\n%b'
        % (len(MULTIPART), MULTIPART)
    )
    inbox = await store.folders.get(account.id, "INBOX")
    assert appended.tagged.endswith(b"OK [APPENDUID %d 5] APPEND completed\r\n" % inbox.uidvalidity)
    # the selected mailbox grew; \Recent: the three left of the first four, and the new one
    assert appended.lines == [b"* 4 EXISTS\r\n", b"* 4 RECENT\r\n"]
    date = await imap.command("FETCH 4 (FLAGS INTERNALDATE)")
    assert date.lines == [
        b'* 4 FETCH (FLAGS (\\Recent \\Seen) INTERNALDATE "05-Feb-2024 09:00:00 +0000")\r\n'
    ]
    multi = await imap.command(b"APPEND INBOX (\\Flagged) {3+}\r\nabc {4+}\r\nabcd")
    assert multi.tagged.endswith(b"OK [APPENDUID %d 6:7] APPEND completed\r\n" % inbox.uidvalidity)
    atomic = await imap.command(b"APPEND INBOX {3+}\r\nabc {0+}\r\n")  # RFC 3502: all or none
    assert atomic.status == "NO"
    assert (await imap.command("UID SEARCH UID 8:*")).lines == [b"* SEARCH 7\r\n"]
    empty = await imap.command(b"APPEND INBOX {0+}\r\n")
    assert empty.status == "NO"
    nowhere = await imap.command(b"APPEND Nowhere {3+}\r\nabc")
    assert b"NO [TRYCREATE]" in nowhere.tagged
    await imap.command("STORE 1,2,4 +FLAGS.SILENT (\\Deleted)")
    uid_expunge = await imap.command("UID EXPUNGE 2")
    assert uid_expunge.lines == [b"* 2 EXPUNGE\r\n"]
    expunged = await imap.command("EXPUNGE")
    assert expunged.lines == [b"* 3 EXPUNGE\r\n", b"* 1 EXPUNGE\r\n"]
    assert (await imap.command("UID SEARCH ALL")).lines == [b"* SEARCH 4 6 7\r\n"]
    examine = await imap.command("EXAMINE Archive/2024")
    assert b"* 3 EXISTS\r\n" in examine.lines
    assert b"NO [READ-ONLY]" in (await imap.command("STORE 1 +FLAGS (\\Seen)")).tagged
    assert b"NO [READ-ONLY]" in (await imap.command("EXPUNGE")).tagged
    assert (await imap.command("FETCH 1 BODY[]")).ok
    flags = await imap.command("FETCH 1 FLAGS")  # EXAMINE: BODY[] does not set \Seen
    assert b"\\Seen" not in flags.lines[0]


async def test_close_expunges_silently_and_unselect_does_not(
    store: Store, account: Account, imap: InMemoryImap
) -> None:
    for _ in range(2):
        await deliver(store, account, MULTIPART)
    await imap.command("SELECT INBOX")
    await imap.command("STORE 1 +FLAGS.SILENT (\\Deleted)")
    assert (await imap.command("UNSELECT")).lines == []
    await imap.command("SELECT INBOX")
    close = await imap.command("CLOSE")
    assert close.ok and close.lines == []
    status = await imap.command("STATUS INBOX (MESSAGES)")
    assert status.lines == [b"* STATUS INBOX (MESSAGES 1)\r\n"]
