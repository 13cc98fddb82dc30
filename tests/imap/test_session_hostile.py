"""Session tier, hostile and random input: every command gets BAD, NO or OK (never a server
error), a connection cut mid-command frees its slot, and two sessions interleaving random
commands keep a view that agrees with the store."""

from __future__ import annotations

import random

from plitest.imap import InMemoryImap, Reply, imap_services, professional
from plitest.store import build_message

from pli.mailbox.imap.limits import Limits
from pli.mailbox.store import DeliveryTarget, Store
from pli.mailbox.store.flags import MAX_KEYWORDS

BROKEN_MIME = (
    b"Content-Type: multipart/mixed; boundary=x\r\nSubject: =?bogus?q?x?=\r\n\r\n"
    b"--x\r\nContent-Type: message/rfc822\r\n\r\n--x\r\nContent-Type: text/plain; charset=nope\r\n"
    b"Content-Transfer-Encoding: base64\r\n\r\n!!!not base64\r\n"
)


def answered(reply: Reply) -> str:
    assert b"SERVERBUG" not in reply.tagged, reply.text()
    assert reply.status in ("OK", "NO", "BAD"), reply.text()
    return reply.status


async def test_hostile_commands_get_bad_or_no_and_the_session_goes_on(store: Store) -> None:
    account = await professional(store)
    await store.messages.deliver(BROKEN_MIME, [DeliveryTarget(account.id)])
    limits = Limits(message_size=4096)
    async with InMemoryImap.start(imap_services(store, limits=limits)) as imap:
        await imap.login(account.address)
        await imap.command("SELECT INBOX")
        cases = {
            "FETCH 1:4294967295 FLAGS": "BAD",  # beyond the mailbox
            "FETCH 4294967296 FLAGS": "BAD",  # beyond a number
            "UID FETCH 1:4294967295 FLAGS": "OK",
            "FETCH 1 BODY[1.2.3.4.5.6.7.8.9.10]": "OK",  # no such part: NIL
            "FETCH 1 (BODY[] BODYSTRUCTURE ENVELOPE BODY[1.MIME] BODY[2.TEXT])": "OK",
            "SEARCH TEXT zzz BODY yyy HEADER X-Nope zzz": "OK",
            "SEARCH " + "NOT " * 40 + "ALL": "BAD",  # nested too deep
            "SEARCH " + " ".join(["ALL"] * 1001): "BAD",  # too many keys
            'SELECT "&AGE-"': "NO",  # "a" spelled in base64: not canonical modified UTF-7
            "SELECT INBOX": "OK",  # (a failed SELECT leaves no mailbox selected)
            'CREATE "&Jjo"': "NO",  # unterminated shift
            "CREATE " + "x" * 2000: "NO",  # longer than a folder name may be
            "CREATE " + "/".join(["d"] * 40): "NO",  # deeper than a hierarchy may be
            'LIST "" "' + "*a" * 500 + 'b"': "OK",  # linear-time matching
            "STORE 1 +FLAGS (" + " ".join(f"k{n}" for n in range(MAX_KEYWORDS + 1)) + ")": "NO",
            "COPY 1 " + "y" * 5000: "BAD",  # a mailbox name beyond the core's limit
            "UID EXPUNGE 1:*": "OK",
            "ENABLE CONDSTORE": "BAD",  # only before SELECT (RFC 5161 §3.1)
        }
        for command, expected in cases.items():
            reply = await imap.command(command)
            assert answered(reply) == expected, (command[:60], reply.text())
        too_big = await imap.command(b"APPEND INBOX {5000+}\r\n" + b"x" * 5000)
        assert b"NO [TOOBIG]" in too_big.tagged
        assert (await imap.command("NOOP")).ok


async def test_a_cut_connection_mid_literal_frees_its_session(store: Store) -> None:
    account = await professional(store)
    services = imap_services(store, sessions_per_account=1)
    async with InMemoryImap.start(services) as imap:
        await imap.login(account.address)
        imap.send(b"a APPEND INBOX {50+}\r\nonly twenty octets..")
    assert services.registry.count(account.id) == 0
    async with InMemoryImap.start(services) as imap:
        await imap.login(account.address)  # the slot was released
        status = await imap.command("STATUS INBOX (MESSAGES)")
        assert status.lines == [b"* STATUS INBOX (MESSAGES 0)\r\n"]  # nothing half-appended


TEMPLATES = (
    "FETCH {set} (FLAGS UID)",
    "FETCH {set} (ENVELOPE RFC822.SIZE INTERNALDATE)",
    "FETCH {set} BODY.PEEK[HEADER.FIELDS (SUBJECT)]",
    "FETCH {set} BODY[TEXT]<0.20>",
    "UID FETCH {set} (FLAGS MODSEQ)",
    "STORE {set} +FLAGS ({flag})",
    "STORE {set} -FLAGS.SILENT ({flag})",
    "UID STORE {set} FLAGS ({flag})",
    "SEARCH {flag_key}",
    "UID SEARCH {set} {flag_key}",
    "COPY {set} INBOX",
    "UID MOVE {set} Archive",
    "EXPUNGE",
    "UID EXPUNGE {set}",
    "NOOP",
    "CHECK",
    "APPEND INBOX (\\Seen) {{{size}+}}\r\n{message}",
)
FLAGS = ("\\Seen", "\\Deleted", "\\Flagged", "$Label1", "\\Answered")
FLAG_KEYS = ("SEEN", "DELETED", "UNFLAGGED", "KEYWORD $Label1", "RECENT", "NEW", "ALL")


def random_command(rng: random.Random) -> str:
    first = rng.randint(1, 6)
    sequence = rng.choice(
        [str(first), f"{first}:*", f"{first}:{rng.randint(1, 8)}", "1:*", f"{first},{first + 2}"]
    )
    message = build_message(subject=f"r{rng.randrange(1000)}").decode()
    return rng.choice(TEMPLATES).format(
        set=sequence,
        flag=rng.choice(FLAGS),
        flag_key=rng.choice(FLAG_KEYS),
        size=len(message.encode()),
        message=message,
    )


async def test_two_sessions_with_random_commands_stay_consistent(store: Store) -> None:
    account = await professional(store)
    for index in range(6):
        await store.messages.deliver(
            build_message(subject=f"m{index}"), [DeliveryTarget(account.id)]
        )
    rng = random.Random(20240205)
    services = imap_services(store)
    async with InMemoryImap.start(services) as one, InMemoryImap.start(services) as two:
        for session in (one, two):
            await session.login(account.address)
            await session.command("SELECT INBOX")
        statuses = []
        for _ in range(150):
            session = rng.choice((one, two))
            statuses.append(answered(await session.command(random_command(rng))))
        assert statuses.count("OK") > 100  # the random commands mostly make sense
        inbox = await store.folders.get(account.id, "INBOX")
        truth = await store.messages.uids(inbox.id)
        for session in (one, two):
            await session.command("NOOP")
            fetched = await session.command("FETCH 1:* UID") if truth else None
            seen = (
                [int(line.split(b"UID ")[1].split(b")")[0]) for line in fetched.lines]
                if fetched
                else []
            )
            assert seen == truth
