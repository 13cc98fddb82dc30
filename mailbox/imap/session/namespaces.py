"""IMAP names ↔ (account, folder) across namespaces (RFC 2342), and who may open what.

- **Personal** namespace, prefix ``""``, delimiter ``/``: the folders of the mailbox the session
  acts as (the authenticated account, or the mailbox named by the SASL authorization identity).
- **Shared** namespace, prefix ``Partagé/`` (wire ``Partag&AOk-/``): the ORG mailboxes the
  authenticated professional is a member of, as ``Partagé/<address>/<folder>``
  (``Partagé/secretariat.cardiologie@hopital-demo.mssante.fr/INBOX``).
- **Other Users** namespace, prefix ``Proches/``: the citizens the authenticated citizen is the
  guardian of (policy P9), as ``Proches/<INS address>/<folder>``.

A session opened with an authorization identity (``acting_as`` another mailbox) sees that
mailbox as its personal namespace and nothing else. Rights are checked at every access with the
store's ``may_act_for`` (a membership ended mid-session takes effect at once); the namespace
roots and the ``<address>`` levels are ``\\Noselect``. Personal folders may not be created under
a name that starts with a namespace prefix.

Must not: execute commands (the session does) nor write audit records (it does too).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from pli.mailbox.store import Account, AccountKind, Store
from pli.mailbox.store.folders import DELIMITER, INBOX

from .. import mutf7
from ..errors import MailboxNameError

SHARED_PREFIX: Final = "Partagé"
OTHERS_PREFIX: Final = "Proches"


class NoSuchMailbox(Exception):
    """A name that names no mailbox this session may open (answered NO [NONEXISTENT])."""


@dataclass(frozen=True, slots=True)
class MailboxRef:
    """A mailbox of some account: ``folder`` is the store's name (Unicode, '/' delimited), empty
    for a namespace level that is not a mailbox (``Partagé``, ``Partagé/<address>``)."""

    owner: Account
    folder: str
    foreign: bool  # not the session's own mailbox: every action is audited with acting_for

    @property
    def selectable(self) -> bool:
        return bool(self.folder)


@dataclass(frozen=True, slots=True)
class Delegation:
    """A mailbox the actor may act in, and the namespace prefix it appears under."""

    prefix: str
    account: Account

    @property
    def root(self) -> str:
        """``Partagé/address``: the level under which its folders appear."""
        return f"{self.prefix}{DELIMITER}{self.account.address}"


class Namespaces:
    """Name resolution for one session: ``home`` is the personal namespace's mailbox, ``actor``
    the authenticated account (they differ when logged in with an authorization identity)."""

    def __init__(self, store: Store, actor: Account, home: Account) -> None:
        self.store = store
        self.actor = actor
        self.home = home
        self.delegating = actor.id == home.id  # the shared namespaces exist only then

    def response(self) -> bytes:
        from .. import response

        shared = [(mutf7.encode(SHARED_PREFIX + DELIMITER), DELIMITER)]
        others = [(mutf7.encode(OTHERS_PREFIX + DELIMITER), DELIMITER)]
        if not self.delegating:
            return response.namespace_response([("", DELIMITER)])
        kind = self.actor.kind
        return response.namespace_response(
            [("", DELIMITER)],
            others if kind is AccountKind.CITIZEN else None,
            shared if kind is not AccountKind.CITIZEN else None,
        )

    async def delegations(self) -> list[Delegation]:
        """The other mailboxes the actor may act in, now."""
        if not self.delegating:
            return []
        accounts = self.store.accounts
        if self.actor.kind is AccountKind.CITIZEN:
            wards = await accounts.wards(self.actor.id)
            return [Delegation(OTHERS_PREFIX, ward.account) for ward in wards]
        organisations = await accounts.organisations_of(self.actor.id)
        return [Delegation(SHARED_PREFIX, org) for org in organisations]

    @staticmethod
    def reserved(folder: str) -> bool:
        """Whether a personal folder name would hide a namespace."""
        top = folder.split(DELIMITER, 1)[0]
        return top.casefold() in (SHARED_PREFIX.casefold(), OTHERS_PREFIX.casefold())

    async def resolve(self, wire_name: str) -> MailboxRef:
        """The mailbox a wire name designates; :class:`MailboxNameError` for an invalid name,
        :class:`NoSuchMailbox` when it is in a namespace the actor may not use."""
        name = mutf7.decode(wire_name)
        if not name:
            raise MailboxNameError("empty mailbox name")
        top, _, rest = name.partition(DELIMITER)
        prefix = next(
            (p for p in (SHARED_PREFIX, OTHERS_PREFIX) if p.casefold() == top.casefold()), None
        )
        if prefix is None or not self.delegating:
            return MailboxRef(self.home, name, foreign=self.home.id != self.actor.id)
        if not rest:
            return MailboxRef(self.home, "", foreign=False)  # the namespace root itself
        address, _, folder = rest.partition(DELIMITER)
        owner = await self.store.accounts.find(address)
        expected = AccountKind.CITIZEN if prefix == OTHERS_PREFIX else AccountKind.ORG
        if (
            owner is None
            or owner.id == self.actor.id
            or owner.kind is not expected
            or not await self.store.accounts.may_act_for(self.actor.id, owner.id)
        ):
            raise NoSuchMailbox(name)
        if folder.upper() == INBOX:
            folder = INBOX
        return MailboxRef(owner, folder, foreign=True)

    def wire_name(self, owner: Account, folder: str) -> str:
        """The wire name of a folder of ``owner`` as this session sees it."""
        if owner.id == self.home.id:
            return mutf7.encode(folder)
        prefix = OTHERS_PREFIX if owner.kind is AccountKind.CITIZEN else SHARED_PREFIX
        return mutf7.encode(f"{prefix}{DELIMITER}{owner.address}{DELIMITER}{folder}")
