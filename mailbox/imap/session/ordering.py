"""SORT and THREAD (RFC 5256; RFC 5957 SORT=DISPLAY): the searched messages ordered or threaded
from the store's parse cache (subjects, addresses, dates) and, for THREAD=REFERENCES, the
References header read from each message's header.

- Base subject (RFC 5256 §2.1): encoded words decoded, whitespace folded, trailing ``(fwd)``,
  leading ``Re:``/``Fw:``/``Fwd:`` with their ``[blob]``s, and ``[fwd: …]`` wrappers removed;
  compared with i;ascii-casemap.
- Sent date (§2.2): the Date: header in UTC, else the internal date; ties go by sequence number.
- Address keys (§3): the first address's mailbox (local part); DISPLAYFROM/DISPLAYTO its decoded
  display name, else its address (RFC 5957).
- ORDEREDSUBJECT and REFERENCES (§4) as the RFC writes them, step by step.

Must not: send EXPUNGE (SORT and THREAD are searches: RFC 3501 §7.4.1).
"""

from __future__ import annotations

import email.utils
import json
import re
from dataclasses import dataclass, field
from typing import Any, Final

from pli.mailbox.mime.cache import message_ids
from pli.mailbox.mime.headers import parse_header
from pli.mailbox.mime.text import decode_header_text
from pli.mailbox.store.uidset import ranges_of

from .. import commands as c
from .. import response
from ..response import ThreadNode
from .fetching import HEADER_READ
from .searching import matching_uids
from .state import Reply, SessionState

_ASCII_UPPER: Final = str.maketrans("abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ")
_WHITESPACE: Final = re.compile(r"[ \t\r\n]+")
_TRAILER: Final = re.compile(r"(?:\(fwd\)|[ \t])+$", re.IGNORECASE)
_BLOB: Final = r"\[[^\[\]]*\][ \t]*"
_REFWD: Final = re.compile(rf"^(?:{_BLOB})*(?:re|fwd?)[ \t]*(?:{_BLOB})?:", re.IGNORECASE)
_LEADING_BLOB: Final = re.compile(rf"^{_BLOB}")
_FWD_WRAPPER: Final = re.compile(r"^\[fwd:(.*)\]$", re.IGNORECASE | re.DOTALL)


def collate(text: str) -> str:
    """i;ascii-casemap (RFC 4790 §9.2): ASCII letters compared without case."""
    return text.translate(_ASCII_UPPER)


def base_subject(subject: str | None) -> tuple[str, bool]:
    """RFC 5256 §2.1: (base subject, whether it was a reply or forward)."""
    text = _WHITESPACE.sub(" ", decode_header_text(subject) or "")
    reply = False
    while True:
        trimmed = _TRAILER.sub("", text)  # (2) subj-trailer: "(fwd)" and whitespace
        reply = reply or "(fwd)" in text[len(trimmed) :].lower()
        text = trimmed
        while True:  # (3) and (4)
            before = text
            text = text.lstrip(" \t")
            leader = _REFWD.match(text)
            if leader is not None:
                text = text[leader.end() :]
                reply = True
                continue
            blob = _LEADING_BLOB.match(text)
            if blob is not None and text[blob.end() :].strip():
                text = text[blob.end() :]
            if text == before:
                break
        wrapper = _FWD_WRAPPER.match(text)  # (5) "[fwd: …]"
        if wrapper is None:
            return text, reply
        text = wrapper.group(1)
        reply = True


@dataclass
class _Message:
    sequence: int
    uid: int
    size: int
    arrival: int
    envelope: list[Any]
    sent: int = 0
    references: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.sent = _sent_date(self.envelope[0], self.arrival)


def _sent_date(header: str | None, arrival: int) -> int:
    """RFC 5256 §2.2: the Date: header as UTC seconds, else the internal date."""
    if header:
        try:
            parsed = email.utils.parsedate_tz(header)
            if parsed is not None:
                return int(email.utils.mktime_tz(parsed))
        except (TypeError, ValueError, OverflowError):
            pass
    return arrival


def _first_address(addresses: Any, display: bool) -> str:
    if not addresses:
        return ""
    for name, _, mailbox, host in addresses:
        if mailbox is None:  # the end of a group
            continue
        if display:  # RFC 5957 §3
            decoded = decode_header_text(name) if name else None
            return decoded or (f"{mailbox}@{host}" if host is not None else mailbox)
        return mailbox  # a group's start counts as its name (as Dovecot sorts)
    return ""


def _key(message: _Message, key: c.SortKey) -> Any:
    envelope = message.envelope
    if key == "ARRIVAL":
        return message.arrival
    if key == "DATE":
        return message.sent
    if key == "SIZE":
        return message.size
    if key == "SUBJECT":
        return collate(base_subject(envelope[1])[0])
    field_index = {"FROM": 2, "TO": 5, "CC": 6, "DISPLAYFROM": 2, "DISPLAYTO": 5}[key]
    return collate(_first_address(envelope[field_index], key.startswith("DISPLAY")))


def sort_messages(
    messages: list[_Message], criteria: tuple[tuple[bool, c.SortKey], ...]
) -> list[_Message]:
    """Stable sorts from the last criterion to the first; ties keep sequence order (§3)."""
    ordered = sorted(messages, key=lambda message: message.sequence)
    for reverse, key in reversed(criteria):
        ordered.sort(key=lambda message, key=key: _key(message, key), reverse=reverse)  # type: ignore[misc]
    return ordered


async def _messages(state: SessionState, uids: list[int], *, references: bool) -> list[_Message]:
    view = state.selected
    store = state.store
    rows = await store.messages.fetch_rows(view.folder_id, ranges_of(uids), envelope=True)
    found = []
    for row in rows:
        sequence = view.sequence_of(row.uid)
        if sequence is None or row.envelope is None:
            continue
        message = _Message(sequence, row.uid, row.size, row.internal_date, json.loads(row.envelope))
        if references:
            head = await store.blobs.read_range(row.blob_id, 0, HEADER_READ)
            header = parse_header(head)
            message.references = message_ids(header.first("references"))
            if not message.references:  # RFC 5256 §4: In-Reply-To's first message id instead
                message.references = message_ids(message.envelope[8])[:1]
        found.append(message)
    return found


async def sort(state: SessionState, command: c.Sort) -> Reply:
    uids = await matching_uids(state, command.key)
    ordered = sort_messages(await _messages(state, uids, references=False), command.criteria)
    numbers = [message.uid if command.uid else message.sequence for message in ordered]
    await state.write(response.sort_response(numbers))
    return Reply("OK", "SORT completed")


async def thread(state: SessionState, command: c.Thread) -> Reply:
    uids = await matching_uids(state, command.key)
    algorithm = command.algorithm
    messages = await _messages(state, uids, references=algorithm == "REFERENCES")
    roots = ordered_subject(messages) if algorithm == "ORDEREDSUBJECT" else by_references(messages)
    number = (lambda m: m.uid) if command.uid else (lambda m: m.sequence)
    await state.write(response.thread_response(_numbered(root, number) for root in roots))
    return Reply("OK", "THREAD completed")


# --- threads -------------------------------------------------------------------------------


@dataclass(eq=False)
class _Node:
    """A thread container: a message, or a dummy (a referenced message not in the set)."""

    message: _Message | None = None
    parent: _Node | None = None
    children: list[_Node] = field(default_factory=list)

    def first_date(self) -> tuple[int, int]:
        """Sort key: the sent date and sequence number (a dummy's: its first child's)."""
        if self.message is not None:
            return self.message.sent, self.message.sequence
        return self.children[0].first_date() if self.children else (0, 0)

    def subject(self) -> tuple[str, bool]:
        node = self if self.message is not None else (self.children[0] if self.children else self)
        if node.message is None:
            return "", False
        text, reply = base_subject(node.message.envelope[1])
        return collate(text), reply

    def descends_from(self, other: _Node) -> bool:
        node: _Node | None = self
        while node is not None:
            if node is other:
                return True
            node = node.parent
        return False


def _link(parent: _Node, child: _Node) -> None:
    if child.parent is not None:
        child.parent.children.remove(child)
    child.parent = parent
    parent.children.append(child)


def ordered_subject(messages: list[_Message]) -> list[_Node]:
    """RFC 5256 §4 ORDEREDSUBJECT: by base subject then sent date; each subject one thread whose
    first message is the parent of the others; threads by their first message's date."""

    def subject(message: _Message) -> str:
        return collate(base_subject(message.envelope[1])[0])

    ordered = sorted(messages, key=lambda m: (subject(m), m.sent, m.sequence))
    threads: list[_Node] = []
    current: str | None = None
    for message in ordered:
        node = _Node(message)
        if threads and subject(message) == current:
            _link(threads[-1], node)
        else:
            threads.append(node)
            current = subject(message)
    threads.sort(key=_Node.first_date)
    return threads


def by_references(messages: list[_Message]) -> list[_Node]:
    """RFC 5256 §4 REFERENCES, steps 1 to 6."""
    by_id: dict[str, _Node] = {}
    nodes: list[_Node] = []
    for message in sorted(messages, key=lambda m: m.sequence):
        node = _Node(message)
        identifier = (message_ids(message.envelope[9]) or [""])[0]
        if identifier and identifier not in by_id:  # a missing or repeated id: unique, unnamed
            by_id[identifier] = node
        nodes.append(node)
    for node in nodes:
        assert node.message is not None
        previous: _Node | None = None
        for reference in node.message.references:  # (1)(A)
            container = by_id.get(reference)
            if container is None:
                container = by_id[reference] = _Node()
            if (
                previous is not None
                and container.parent is None
                and container is not previous
                and not previous.descends_from(container)
            ):
                _link(previous, container)
            previous = container
        # (1)(B): the link to a parent is broken, then the last reference becomes the parent
        # unless that would make a loop
        if node.parent is not None:
            node.parent.children.remove(node)
            node.parent = None
        if previous is not None and previous is not node and not previous.descends_from(node):
            _link(previous, node)
    containers = {id(node): node for node in [*nodes, *by_id.values()]}
    roots = [node for node in containers.values() if node.parent is None]  # (2)
    roots = _prune(roots, at_root=True)  # (3)
    for root in roots:  # (4): dummies by their first child once their children are sorted
        if root.message is None:
            root.children.sort(key=_Node.first_date)
    roots.sort(key=_Node.first_date)
    roots = _gather_subjects(roots)  # (5)
    _sort_children(roots)  # (6)
    roots.sort(key=_Node.first_date)
    return roots


def _prune(children: list[_Node], *, at_root: bool) -> list[_Node]:
    """(3): dummies without children go; a dummy's children take its place, except at the root
    when there are several of them."""
    kept: list[_Node] = []
    for node in children:
        node.children = _prune(node.children, at_root=False)
        for child in node.children:
            child.parent = node
        if node.message is not None:
            kept.append(node)
        elif not node.children:
            continue
        elif at_root and len(node.children) > 1:
            kept.append(node)
        else:
            for child in node.children:
                child.parent = node.parent
            kept.extend(node.children)
    return kept


def _gather_subjects(roots: list[_Node]) -> list[_Node]:
    """(5): threads whose first messages share a base subject are merged."""
    table: dict[str, _Node] = {}
    for root in roots:  # (B)
        subject, reply = root.subject()
        if not subject:
            continue
        old = table.get(subject)
        if old is None or (
            old.message is not None and (root.message is None or (old.subject()[1] and not reply))
        ):
            table[subject] = root
    merged: list[_Node] = []
    for root in roots:  # (C)
        if root.parent is not None:  # already merged into another thread
            continue
        subject, reply = root.subject()
        target = table.get(subject) if subject else None
        if target is None or target is root:
            merged.append(root)
        elif target.message is None and root.message is None:
            for child in list(root.children):
                _link(target, child)
        elif target.message is None or (reply and not target.subject()[1]):
            _link(target, root)
        else:
            dummy = _Node()
            if target in merged:
                merged[merged.index(target)] = dummy
            else:
                merged.append(dummy)
            _link(dummy, target)
            _link(dummy, root)
            table[subject] = dummy
    return [root for root in merged if root.parent is None]


def _sort_children(nodes: list[_Node]) -> None:
    for node in nodes:
        _sort_children(node.children)
        node.children.sort(key=_Node.first_date)


def _numbered(node: _Node, number: Any) -> ThreadNode:
    children = tuple(_numbered(child, number) for child in node.children)
    if node.message is None:  # a dummy at the root: its children are siblings, "((1)(2))"
        return (0, children)
    return (number(node.message), children)
