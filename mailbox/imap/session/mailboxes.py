"""Mailbox commands of the authenticated state: LIST (RFC 3501 §6.3.8, RFC 5258 LIST-EXTENDED,
RFC 6154 SPECIAL-USE, RFC 5819 LIST-STATUS, RFC 3348 CHILDREN), LSUB, STATUS, CREATE, DELETE,
RENAME, SUBSCRIBE/UNSUBSCRIBE, NAMESPACE (RFC 2342).

Names come in and go out in modified UTF-7; :mod:`.namespaces` maps them to an account's folders.
Errors carry RFC 5530 codes: ``[NONEXISTENT]``, ``[ALREADYEXISTS]``, ``[CANNOT]``, ``[USEATTR]``.

Must not: keep state of its own (the store holds folders; the session holds the selection).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from pli.mailbox.store import Account, AlreadyExists, Folder, InvalidRequest, NotFound
from pli.mailbox.store.folders import DELIMITER
from pli.mailbox.store.records import SpecialUse

from .. import commands as c
from .. import mutf7, response
from ..patterns import ListPattern
from .namespaces import MailboxRef, NoSuchMailbox
from .state import Reply, SessionState, no

NONEXISTENT = "NONEXISTENT"


@dataclass(frozen=True, slots=True)
class Listed:
    """One name LIST may return: a folder of some account, a namespace level, or a subscribed
    name whose folder is gone (``lost``: only LSUB and LIST (SUBSCRIBED) show it)."""

    wire: str
    owner: Account
    folder: Folder | None  # None: a namespace level (\Noselect, has children) or lost
    lost: bool = False

    @property
    def selectable(self) -> bool:
        return self.folder is not None and not self.folder.noselect

    @property
    def subscribed(self) -> bool:
        return self.lost or (self.folder is not None and self.folder.subscribed)

    def attributes(self, *, subscribed: bool) -> list[str]:
        folder = self.folder
        if self.lost:  # RFC 5258 §3.4
            return ["\\Subscribed", "\\NonExistent"] if subscribed else ["\\NonExistent"]
        if folder is None:
            return ["\\Noselect", "\\HasChildren"]
        found = ["\\Noselect"] if folder.noselect else []
        found.append("\\HasChildren" if folder.has_children else "\\HasNoChildren")
        if folder.special_use:
            found.append(folder.special_use)
        if subscribed and folder.subscribed:
            found.append("\\Subscribed")
        return found


async def resolve(state: SessionState, wire_name: str) -> MailboxRef:
    """A wire name to a mailbox reference; NO [NONEXISTENT] when the actor may not see it.
    (An invalid modified UTF-7 name raises MailboxNameError: the dispatcher answers NO.)"""
    try:
        return await state.names.resolve(wire_name)
    except NoSuchMailbox:
        raise no("Mailbox does not exist", NONEXISTENT) from None


async def folder_of(state: SessionState, ref: MailboxRef, *, missing_code: str) -> Folder:
    if not ref.selectable:
        raise no("Mailbox is not selectable", missing_code)
    try:
        folder = await state.store.folders.get(ref.owner.id, ref.folder)
    except (NotFound, InvalidRequest):
        raise no("Mailbox does not exist", missing_code) from None
    if folder.noselect:
        raise no("Mailbox is not selectable", missing_code)
    return folder


async def visible(state: SessionState) -> list[Listed]:
    """Every name the session may list: its folders, then each delegated mailbox's levels and
    folders."""
    names = state.names
    store = state.store
    found = [
        Listed(names.wire_name(names.home, folder.name), names.home, folder)
        for folder in await store.folders.all(names.home.id)
    ]
    found += [
        Listed(names.wire_name(names.home, name), names.home, None, lost=True)
        for name in await store.folders.lost_subscriptions(names.home.id)
    ]
    delegations = await names.delegations()
    roots = sorted({delegation.prefix for delegation in delegations})
    found += [Listed(mutf7.encode(root), names.home, None) for root in roots]
    for delegation in delegations:
        owner = delegation.account
        found.append(Listed(mutf7.encode(delegation.root), owner, None))
        found += [
            Listed(names.wire_name(owner, folder.name), owner, folder)
            for folder in await store.folders.all(owner.id)
        ]
    found.sort(key=lambda item: (item.wire != "INBOX", item.wire))
    return found


def _matcher(reference: str, patterns: Iterable[str]) -> list[ListPattern]:
    return [ListPattern(reference, pattern, DELIMITER) for pattern in patterns]


def _matches(matchers: list[ListPattern], wire: str) -> bool:
    return any(matcher.matches(wire) for matcher in matchers)


async def list_mailboxes(state: SessionState, command: c.List) -> Reply:
    if command.lsub:
        return await _lsub(state, command)
    if command.patterns == ("",):  # RFC 3501 §6.3.8: the delimiter and the reference's root
        root = command.reference.split(DELIMITER, 1)[0] + DELIMITER if command.reference else ""
        state.out.write(response.list_response(["\\Noselect"], DELIMITER, root))
        return Reply("OK", "LIST completed")
    select = set(command.select_options)
    returns = set(command.return_options)
    only_subscribed = "SUBSCRIBED" in select
    only_special = "SPECIAL-USE" in select
    recursive = "RECURSIVEMATCH" in select
    show_subscribed = only_subscribed or "SUBSCRIBED" in returns
    matchers = _matcher(command.reference, command.patterns)
    items = await visible(state)

    def selected(item: Listed) -> bool:
        if (only_subscribed and not item.subscribed) or (item.lost and not only_subscribed):
            return False
        return not (only_special and not (item.folder and item.folder.special_use))

    childinfo: set[str] = set()
    if recursive:  # RFC 5258 §3.5: parents of selected names the patterns do not return
        for item in items:
            if selected(item) and not _matches(matchers, item.wire):
                parts = item.wire.split(DELIMITER)
                for depth in range(1, len(parts)):
                    childinfo.add(DELIMITER.join(parts[:depth]))
    for item in items:
        if not _matches(matchers, item.wire):
            continue
        chosen = selected(item)
        child = recursive and item.wire in childinfo and not chosen
        if not chosen and not child:
            continue
        attributes = item.attributes(subscribed=show_subscribed)
        extended = b""
        if child:
            criteria = '"SUBSCRIBED"' if only_subscribed else '"SPECIAL-USE"'
            extended = b"(CHILDINFO (" + criteria.encode() + b"))"
            if not chosen and item.folder is not None and "\\Subscribed" in attributes:
                attributes.remove("\\Subscribed")
        state.out.write(response.list_response(attributes, DELIMITER, item.wire, extended=extended))
        if command.status_items and item.selectable and chosen:
            assert item.folder is not None
            await write_status(state, item.wire, item.folder, command.status_items)
    return Reply("OK", "LIST completed")


async def _lsub(state: SessionState, command: c.List) -> Reply:
    """RFC 3501 §6.3.9: subscribed names; a parent of a subscribed name that the ``%`` wildcard
    stops at is returned ``\\Noselect`` when not subscribed itself."""
    matchers = _matcher(command.reference, command.patterns)
    items = await visible(state)
    subscribed = {item.wire for item in items if item.subscribed}
    shown: dict[str, list[str]] = {}
    for item in items:
        if item.wire in subscribed and _matches(matchers, item.wire):
            shown[item.wire] = ["\\Noselect"] if item.folder and item.folder.noselect else []
    for wire in subscribed:
        parts = wire.split(DELIMITER)
        for depth in range(1, len(parts)):
            parent = DELIMITER.join(parts[:depth])
            if parent not in subscribed and _matches(matchers, parent):
                shown.setdefault(parent, ["\\Noselect"])
    for wire in sorted(shown, key=lambda name: (name != "INBOX", name)):
        state.out.write(response.list_response(shown[wire], DELIMITER, wire, lsub=True))
    return Reply("OK", "LSUB completed")


async def write_status(
    state: SessionState, wire: str, folder: Folder, items: Iterable[c.StatusItem]
) -> None:
    status = await state.store.folders.status(folder.id)
    values = {
        "MESSAGES": status.exists,
        "RECENT": status.recent,
        "UIDNEXT": status.folder.uidnext,
        "UIDVALIDITY": status.folder.uidvalidity,
        "UNSEEN": status.unseen,
        "HIGHESTMODSEQ": status.folder.highestmodseq,
        "APPENDLIMIT": state.services.limits.message_size,
    }
    state.out.write(response.status_response(wire, [(item, values[item]) for item in items]))


async def status(state: SessionState, command: c.Status) -> Reply:
    ref = await resolve(state, command.mailbox)
    folder = await folder_of(state, ref, missing_code=NONEXISTENT)
    if "HIGHESTMODSEQ" in command.items:
        state.enable_condstore()  # RFC 7162 §3.1: a CONDSTORE-enabling command
    await write_status(state, command.mailbox, folder, command.items)
    await state.audit(ref, "imap-status", f"STATUS {ref.folder}")
    return Reply("OK", "STATUS completed")


def _personal_name(state: SessionState, ref: MailboxRef) -> str:
    if not ref.selectable:
        raise no("That name is a namespace", "CANNOT")
    if (
        ref.owner.id == state.names.home.id
        and state.names.delegating
        and state.names.reserved(ref.folder)
    ):
        raise no("That name is reserved for a namespace", "CANNOT")
    return ref.folder


@contextlib.contextmanager
def _folder_errors() -> Iterator[None]:
    """The store's refusals of a folder change as NO with its RFC 5530 code."""
    try:
        yield
    except NotFound:
        raise no("Mailbox does not exist", NONEXISTENT) from None
    except AlreadyExists:
        raise no("Mailbox already exists", "ALREADYEXISTS") from None
    except InvalidRequest as error:
        raise no(str(error), "CANNOT") from None


async def create(state: SessionState, command: c.Create) -> Reply:
    wire = command.mailbox
    if wire.endswith(DELIMITER):  # RFC 3501 §6.3.3: a trailing delimiter announces a hierarchy
        wire = wire[: -len(DELIMITER)]
    ref = await resolve(state, wire)
    name = _personal_name(state, ref)
    special: SpecialUse | None = None
    if command.special_use:
        known = {use.value.lower(): use for use in SpecialUse}
        if len(command.special_use) > 1 or command.special_use[0].lower() not in known:
            raise no("Unsupported special-use attribute", "USEATTR")
        special = known[command.special_use[0].lower()]
    with _folder_errors():
        await state.store.folders.create(ref.owner.id, name, special_use=special, subscribed=False)
    await state.audit(ref, "imap-create", f"CREATE {name}")
    return Reply("OK", "CREATE completed")


async def delete(state: SessionState, command: c.Delete) -> Reply:
    ref = await resolve(state, command.mailbox)
    name = _personal_name(state, ref)
    with _folder_errors():
        await state.store.folders.delete(ref.owner.id, name)
    await state.audit(ref, "imap-delete", f"DELETE {name}")
    return Reply("OK", "DELETE completed")


async def rename(state: SessionState, command: c.Rename) -> Reply:
    source = await resolve(state, command.mailbox)
    target = await resolve(state, command.new_name)
    old, new = _personal_name(state, source), _personal_name(state, target)
    if source.owner.id != target.owner.id:
        raise no("Cannot move a mailbox to another namespace", "CANNOT")
    with _folder_errors():
        await state.store.folders.rename(source.owner.id, old, new)
    await state.audit(source, "imap-rename", f"RENAME {old} {new}")
    return Reply("OK", "RENAME completed")


async def subscribe(state: SessionState, command: c.Subscribe) -> Reply:
    ref = await resolve(state, command.mailbox)
    if not ref.selectable:
        raise no("That name is a namespace", "CANNOT")
    try:
        await state.store.folders.subscribe(ref.owner.id, ref.folder, command.subscribe)
    except (NotFound, InvalidRequest):
        if command.subscribe:
            raise no("Mailbox does not exist", NONEXISTENT) from None
    verb = "SUBSCRIBE" if command.subscribe else "UNSUBSCRIBE"
    return Reply("OK", f"{verb} completed")


async def namespace(state: SessionState, command: c.Namespace) -> Reply:
    state.out.write(state.names.response())
    return Reply("OK", "NAMESPACE completed")
