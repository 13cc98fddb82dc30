"""The webmail's message list: decoded subjects, sender names from the directory, unread state,
attachments, grouping by professional."""

from __future__ import annotations

from plitest.store import build_message, demo

from pli.mailbox.store import DeliveryTarget, Store
from pli.mailbox.store.listing import group_by_sender, summaries


async def test_summaries_grouped_by_sender_with_directory_names(store: Store) -> None:
    accounts = await demo(store)  # two messages in the parent's INBOX already
    inbox = await store.folders.get(accounts.parent.id, "INBOX")
    await store.messages.deliver(
        build_message(
            sender="=?utf-8?q?Cardio?= <dr.bernard@clinique-demo.mssante.fr>",
            subject="=?utf-8?q?R=C3=A9sultats?=",
            attachments=[("écho.pdf", "application/pdf", b"%PDF-1.4")],
        ),
        [DeliveryTarget(accounts.parent.id)],
    )
    await store.messages.store_flags(inbox.id, [(1, 1)], "+", ["\\Seen"])
    listed = await summaries(store, inbox.id)
    assert [m.uid for m in listed] == [3, 2, 1]  # newest first
    newest = listed[0]
    assert newest.subject == "Résultats"
    assert newest.sender_name == "Dr Marc Bernard"  # the directory wins over the header name
    assert [(a.filename, a.content_type) for a in newest.attachments] == [
        ("écho.pdf", "application/pdf")
    ]
    assert not newest.seen and listed[2].seen
    report = listed[1]
    assert report.sender_address == accounts.reports.address
    assert [a.filename for a in report.attachments] == ["compte-rendu.pdf"]
    groups = group_by_sender(listed)
    assert [(g.sender_address, g.unread) for g in groups] == [
        ("dr.bernard@clinique-demo.mssante.fr", 1),
        (accounts.reports.address, 1),
        (accounts.doctor.address, 0),
    ]
    assert groups[2].sender_name == "Dr Claire Martin"
