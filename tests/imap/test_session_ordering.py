"""SORT and THREAD (RFC 5256, RFC 5957): base subjects, the thread response's shape, and the
commands over a session (imaptest's sort-* and thread* scripts cover the algorithms' corners)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from plitest.imap import InMemoryImap

from pli.mailbox.imap.response import thread_response
from pli.mailbox.imap.session.ordering import base_subject
from pli.mailbox.store import Account, DeliveryTarget, Store


@pytest.mark.parametrize(
    ("subject", "base", "reply"),
    [
        ("Hello", "Hello", False),
        ("Re: Hello", "Hello", True),
        ("RE: [list] fwd: Re:  Hello  (fwd) ", "Hello", True),
        ("[foo] Fwd: [bar] Re: fw: b (fWd)  (fwd)", "b", True),
        ("re: [fwd: [fwd: re: [fwd: babylon]]]", "babylon", True),
        ("[xyz]", "[xyz]", False),  # a blob alone stays: removing it would empty the subject
        ("=?utf-8?q?R=C3=A9sultats?=", "Résultats", False),
        ("Ad: Re: Ad: Re: Ad: x", "Ad: Re: Ad: Re: Ad: x", False),  # "Ad:" is not a leader
        (None, "", False),
    ],
)
def test_base_subject(subject: str | None, base: str, reply: bool) -> None:
    assert base_subject(subject) == (base, reply)


def test_thread_response_shapes() -> None:
    assert thread_response([]) == b"* THREAD\r\n"
    assert thread_response([(3, ((2, ()),)), (1, ())]) == b"* THREAD (3 2)(1)\r\n"
    tree = (3, ((6, ((4, ((23, ()),)), (44, ((7, ((96, ()),)),)))),))
    assert thread_response([(2, ()), tree]) == b"* THREAD (2)(3 6 (4 23)(44 7 96))\r\n"
    dummy = (0, ((3, ()), (5, ())))  # a referenced message not in the set, at the root
    assert thread_response([dummy]) == b"* THREAD ((3)(5))\r\n"


def message(subject: str, sender: str, date: str, message_id: str, references: str = "") -> bytes:
    extra = f"References: {references}\r\n" if references else ""
    return (
        f"From: {sender}\r\nSubject: {subject}\r\nDate: {date}\r\nMessage-ID: {message_id}\r\n"
        f"{extra}\r\nbody\r\n"
    ).encode()


async def test_sort_and_thread_commands(store: Store, account: Account, imap: InMemoryImap) -> None:
    for minute, raw in enumerate(
        (
            message("Projet", "Zoé <z@x.fr>", "Mon, 5 Feb 2024 10:00:00 +0000", "<1@x>"),
            message("Re: Projet", "Alain <a@x.fr>", "5 Feb 2024 09:00 +0000", "<2@x>", "<1@x>"),
            message("Autre", "b@x.fr", "Mon, 5 Feb 2024 11:00:00 +0000", "<3@x>"),
            message("Re: Projet", "c@x.fr", "5 Feb 2024 12:00 +0000", "<4@x>", "<1@x> <2@x>"),
        )
    ):
        arrival = datetime(2024, 2, 6, 8, minute, tzinfo=UTC)  # arrival order: 1, 2, 3, 4
        await store.messages.deliver(raw, [DeliveryTarget(account.id)], internal_date=arrival)
    await imap.command("SELECT INBOX")
    assert (await imap.command("SORT (DATE) UTF-8 ALL")).lines == [b"* SORT 2 1 3 4\r\n"]
    assert (await imap.command("SORT (SUBJECT REVERSE DATE) UTF-8 ALL")).lines == [
        b"* SORT 3 4 1 2\r\n"
    ]
    assert (await imap.command("SORT (FROM) US-ASCII ALL")).lines == [b"* SORT 2 3 4 1\r\n"]
    assert (await imap.command("SORT (DISPLAYFROM) UTF-8 ALL")).lines == [b"* SORT 2 3 4 1\r\n"]
    assert (await imap.command("UID SORT (REVERSE ARRIVAL) UTF-8 NOT 3")).lines == [
        b"* SORT 4 2 1\r\n"
    ]
    references = await imap.command("THREAD REFERENCES UTF-8 ALL")
    assert references.lines == [b"* THREAD (1 2 4)(3)\r\n"]
    ordered = await imap.command("THREAD ORDEREDSUBJECT UTF-8 ALL")
    assert ordered.lines == [b"* THREAD (2 (1)(4))(3)\r\n"]
    bad = await imap.command("SORT (NOPE) UTF-8 ALL")
    assert bad.status == "BAD"
    charset = await imap.command("THREAD REFERENCES KOI8-R ALL")
    assert b"NO [BADCHARSET" in charset.tagged
