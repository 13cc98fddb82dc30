"""IMAP protocol core micro-benchmark: the cost of the codec alone, no store, no sockets.

    .venv/bin/python bench/imap_codec.py [--messages 10000] [--repeat 5]

Prints the best of --repeat runs for:
- the metadata FETCH of a whole mailbox: ``FETCH 1:* (UID FLAGS INTERNALDATE RFC822.SIZE
  ENVELOPE)`` serialised for --messages messages (the figure Dovecot answers in ~250 ms
  end to end; this is our codec's share of it);
- ``FETCH 1:* (UID FLAGS)`` (a client's flag resynchronisation);
- ``FETCH 1:* BODYSTRUCTURE`` of a three-part message;
- commands in through the connection (framing, parsing, state check, tagged answer), a
  realistic mix with literals;
- modified UTF-7 names, and UID set selection over the mailbox.
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from pli.mailbox.imap import mutf7
from pli.mailbox.imap.bodystructure import BodyPart, Envelope, fetch_body_structure, fetch_envelope
from pli.mailbox.imap.connection import ImapConnection
from pli.mailbox.imap.events import NEED_DATA, ContinuationRequest
from pli.mailbox.imap.response import (
    fetch_flags,
    fetch_internaldate,
    fetch_response,
    fetch_size,
    fetch_uid,
)
from pli.mailbox.imap.sequence import SequenceSet
from pli.mailbox.imap.states import State

FLAG_SETS = [(), ("\\Seen",), ("\\Seen", "\\Answered"), ("\\Seen", "$Forwarded"), ("\\Flagged",)]


def messages(
    count: int, rng: random.Random
) -> list[tuple[int, tuple[str, ...], datetime, int, Envelope]]:
    start = datetime(2024, 1, 1, tzinfo=UTC)
    found = []
    for index in range(count):
        sender = (
            f"Dr Martin {index % 97}",
            None,
            f"dr.martin{index % 97}",
            "ch-exemple.mssante.fr",
        )
        envelope = Envelope(
            date="Mon, 5 Feb 2024 10:11:12 +0100",
            subject=rng.choice(
                [
                    "Convocation consultation",
                    "Compte rendu opératoire",
                    "=?utf-8?q?R=C3=A9sultats?=",
                ]
            ),
            from_=(sender,),
            to=((None, None, f"{1850000000000 + index}", "patient.mssante.fr"),),
            in_reply_to=None,
            message_id=f"<{index}.{rng.randrange(10**9)}@ch-exemple.mssante.fr>",
        )
        found.append(
            (
                index + 1,
                rng.choice(FLAG_SETS),
                start + timedelta(minutes=index),
                rng.randrange(2_000, 400_000),
                envelope,
            )
        )
    return found


def metadata_fetch(rows: list[tuple[int, tuple[str, ...], datetime, int, Envelope]]) -> int:
    out = []
    append = out.append
    for sequence, (uid, flags, date, size, envelope) in enumerate(rows, start=1):
        append(
            fetch_response(
                sequence,
                (
                    fetch_uid(uid),
                    fetch_flags(flags),
                    fetch_internaldate(date),
                    fetch_size(size),
                    fetch_envelope(envelope),
                ),
            )
        )
    return len(b"".join(out))


def metadata_fetch_cached(rows: list[tuple[int, tuple[str, ...], datetime, int, bytes]]) -> int:
    """The same with ENVELOPE and INTERNALDATE formatted once and kept (they never change):
    what a message cache holding the formatted bytes gives."""
    return len(
        b"".join(
            fetch_response(
                sequence, (fetch_uid(uid), fetch_flags(flags), date, fetch_size(size), envelope)
            )
            for sequence, (uid, flags, date, size, envelope) in enumerate(rows, start=1)
        )
    )


def flags_fetch(rows: list[tuple[int, tuple[str, ...], datetime, int, Envelope]]) -> int:
    return len(
        b"".join(
            fetch_response(sequence, (fetch_uid(row[0]), fetch_flags(row[1])))
            for sequence, row in enumerate(rows, start=1)
        )
    )


STRUCTURE = BodyPart(
    "multipart",
    "mixed",
    (("boundary", "b1"),),
    parts=(
        BodyPart(
            "text",
            "plain",
            (("charset", "utf-8"),),
            encoding="QUOTED-PRINTABLE",
            size=812,
            lines=20,
        ),
        BodyPart(
            "text",
            "html",
            (("charset", "utf-8"),),
            encoding="QUOTED-PRINTABLE",
            size=2412,
            lines=41,
        ),
        BodyPart(
            "application",
            "pdf",
            (("name", "compte-rendu.pdf"),),
            encoding="BASE64",
            size=183_422,
            disposition=("attachment", (("filename", "compte-rendu.pdf"),)),
        ),
    ),
)


def bodystructure_fetch(count: int) -> int:
    return len(
        b"".join(
            fetch_response(n, (fetch_uid(n), fetch_body_structure(STRUCTURE, True)))
            for n in range(1, count + 1)
        )
    )


COMMANDS = (
    b"a1 NOOP\r\n",
    b"a2 UID FETCH 1:* (FLAGS) (CHANGEDSINCE 12345)\r\n",
    b"a3 UID SEARCH CHARSET UTF-8 OR FROM martin SUBJECT {9+}\r\nr\xc3\xa9sultat NOT DELETED\r\n",
    b"a4 UID STORE 4:9,12 +FLAGS.SILENT (\\Seen)\r\n",
    b"a5 FETCH 1:50 (UID FLAGS BODY.PEEK[HEADER.FIELDS (From To Subject Date)])\r\n",
    b'a6 LIST "" "*" RETURN (SPECIAL-USE)\r\n',
    b"a7 STATUS INBOX (MESSAGES UNSEEN UIDNEXT HIGHESTMODSEQ)\r\n",
    b"a8 UID MOVE 40:45 Trash\r\n",
)


def commands_in(count: int) -> int:
    data = b"".join(COMMANDS[i % len(COMMANDS)] for i in range(count))
    conn = ImapConnection(state=State.SELECTED)
    handled = 0
    for start in range(0, len(data), 16384):
        conn.receive_data(data[start : start + 16384])
        while (event := conn.next_event()) is not NEED_DATA:
            if isinstance(event, ContinuationRequest):
                continue
            conn.send_tagged(event.tag, "OK", "done")  # type: ignore[union-attr]
            handled += 1
    assert handled == count, handled
    return handled


def mutf7_names(count: int) -> int:
    names = [f"Dossiers/Éléments envoyés {i}/台北" for i in range(count)]
    for name in names:
        mutf7.decode(mutf7.encode(name))
    return count


def uid_selection(count: int) -> int:
    uids = list(range(1, count * 2, 2))
    total = 0
    for sequence_set in ("1:*", "100:200,400:*", ",".join(str(u) for u in uids[::50])):
        total += len(SequenceSet.parse(sequence_set).select_indices(uids))
    return total


def best(repeat: int, work: Callable[[], int]) -> tuple[float, int]:
    times = []
    result = 0
    for _ in range(repeat):
        started = time.perf_counter()
        result = work()
        times.append(time.perf_counter() - started)
    return min(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    rows = messages(args.messages, random.Random(7))
    n = args.messages
    cached = [
        (uid, flags, fetch_internaldate(date), size, fetch_envelope(envelope))
        for uid, flags, date, size, envelope in rows
    ]
    print(f"IMAP codec, {n} messages, best of {args.repeat}")
    for label, work, unit in (
        (
            "FETCH 1:* (UID FLAGS INTERNALDATE RFC822.SIZE ENVELOPE)",
            lambda: metadata_fetch(rows),
            "octets",
        ),
        (
            "  the same, ENVELOPE/INTERNALDATE bytes cached",
            lambda: metadata_fetch_cached(cached),
            "octets",
        ),
        ("FETCH 1:* (UID FLAGS)", lambda: flags_fetch(rows), "octets"),
        ("FETCH 1:* BODYSTRUCTURE (3 parts)", lambda: bodystructure_fetch(n), "octets"),
        ("commands in (framing+parse+state+tagged)", lambda: commands_in(n), "commands"),
        ("mUTF-7 encode+decode", lambda: mutf7_names(n), "names"),
        ("UID set selection (3 sets)", lambda: uid_selection(n), "UIDs"),
    ):
        seconds, result = best(args.repeat, work)
        per_message = seconds / n * 1e6
        print(
            f"  {label:<58} {seconds * 1000:8.1f} ms  {per_message:6.2f} µs/msg  ({result} {unit})"
        )


if __name__ == "__main__":
    main()
