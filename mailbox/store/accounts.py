"""Accounts: professional BALs (PER, ORG, APP) and citizens, their authentication means, ORG
members and citizens' guardians.

Addresses are stored lowercased (domains are case-insensitive, RFC 5321 §2.4; we also treat local
parts so, as every MSSanté operator does). A citizen's address is ``<INS>@<citizen domain>`` and
its INS is checked (key, Corsica) with :mod:`pli.policy.ins`. Creating an account creates its
default folders in the same transaction.

Secrets: passwords are argon2id hashes (argon2-cffi defaults, rehashed when the parameters
change); TOTP secrets are stored as given (base32) because verification needs them: protect the
database accordingly. Argon2 runs in a worker thread.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import Select, bindparam, delete, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from pli.mailbox.auth.totp import new_secret, verify_totp
from pli.policy.ins import ins_problem

from .errors import AlreadyExists, InvalidRequest, NotFound
from .models import AccountRow, CredentialRow, GuardianshipRow, MembershipRow
from .prepared import Prepared
from .records import (
    Account,
    AccountKind,
    CertificateIdentity,
    CredentialKind,
    Credentials,
    Guardian,
    ProfileStatus,
)

if TYPE_CHECKING:
    from .service import Store, Transaction

_HASHER = PasswordHasher()
# RFC 5321 §4.5.3.1.1-2 lengths; a pragmatic dot-atom check (no quoted local parts here).
_ADDRESS = re.compile(r"^[a-z0-9!#$%&'*+/=?^_`{|}~.-]{1,64}@[a-z0-9.-]{1,255}$")
GUARDIAN_RELATIONSHIPS = ("parent", "caregiver")
#: Shortest password accepted for an account (ANSSI recommends length over complexity).
MIN_PASSWORD_LENGTH = 12


def normalise_address(address: str) -> str:
    lowered = address.strip().lower()
    if not _ADDRESS.match(lowered) or ".." in lowered or lowered.endswith("."):
        raise InvalidRequest(f"invalid address {address!r}")
    return lowered


def account_from_row(row: Any) -> Account:
    return Account(
        id=row.id,
        address=row.address,
        kind=AccountKind(row.kind),
        display_name=row.display_name,
        rpps=row.rpps,
        structure_id=row.structure_id,
        profession=row.profession,
        no_reply=row.no_reply,
        ins=row.ins,
        profile_status=ProfileStatus(row.profile_status) if row.profile_status else None,
        notification_address=row.notification_address,
        disabled=row.disabled,
        created_at=row.created_at,
        last_login_at=row.last_login_at,
    )


async def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidRequest(f"password shorter than {MIN_PASSWORD_LENGTH} characters")
    return await asyncio.to_thread(_HASHER.hash, password)


# The hot lookups, built once with a bound "value": building a select() costs more than SQLite
# answering it (the policy's facts read accounts and guardians at every RCPT; bench/smtp.py).
def _account_where(column: Any) -> Select[Any]:
    return select(AccountRow).where(column == bindparam("value"))


def _guardianships_where(join: Any, key: Any) -> Select[AccountRow, str]:
    return (
        select(AccountRow, GuardianshipRow.relationship)
        .join(GuardianshipRow, AccountRow.id == join)
        .where(key == bindparam("value"))
        .order_by(AccountRow.address)
    )


_BY_ID = Prepared(_account_where(AccountRow.id))
_BY_ADDRESS = Prepared(_account_where(AccountRow.address))
_BY_INS = Prepared(_account_where(AccountRow.ins))
_GUARDIANS = Prepared(_guardianships_where(GuardianshipRow.guardian_id, GuardianshipRow.ward_id))
_WARDS = Prepared(_guardianships_where(GuardianshipRow.ward_id, GuardianshipRow.guardian_id))


class Accounts:
    def __init__(self, store: Store) -> None:
        self.store = store

    # -- creation and lookup -----------------------------------------------------------------

    async def create(
        self,
        address: str,
        kind: AccountKind,
        *,
        display_name: str = "",
        rpps: str | None = None,
        structure_id: str | None = None,
        profession: str | None = None,
        no_reply: bool = False,
        password: str | None = None,
        password_hash: str | None = None,
        tx: Transaction | None = None,
    ) -> Account:
        """A professional BAL (PER, ORG or APP) with its default folders. ``password_hash`` is
        an argon2 hash made beforehand (:func:`hash_password`: migrations, demo data)."""
        if kind is AccountKind.CITIZEN:
            raise InvalidRequest("use create_citizen for citizens")
        if no_reply and kind is not AccountKind.APP:
            raise InvalidRequest("only APP mailboxes can be no-reply (policy P6)")
        values = {
            "address": normalise_address(address),
            "kind": kind.value,
            "display_name": display_name,
            "rpps": rpps,
            "structure_id": structure_id,
            "profession": profession,
            "no_reply": no_reply,
        }
        return await self._create(values, password, password_hash, tx)

    async def create_citizen(
        self,
        ins: str,
        domain: str,
        *,
        display_name: str = "",
        status: ProfileStatus = ProfileStatus.OPEN,
        notification_address: str | None = None,
        password: str | None = None,
        password_hash: str | None = None,
        tx: Transaction | None = None,
    ) -> Account:
        """A citizen mailbox ``<INS>@domain`` (the INS must be valid: NIR + key)."""
        ins = ins.strip().upper()
        problem = ins_problem(ins)
        if problem is not None:
            raise InvalidRequest(f"invalid INS ({problem.value})")
        values = {
            "address": normalise_address(f"{ins}@{domain}"),
            "kind": AccountKind.CITIZEN.value,
            "display_name": display_name,
            "ins": ins,
            "profile_status": status.value,
            "notification_address": normalise_address(notification_address)
            if notification_address
            else None,
        }
        return await self._create(values, password, password_hash, tx)

    async def _create(
        self,
        values: dict[str, Any],
        password: str | None,
        password_hash: str | None,
        tx: Transaction | None,
    ) -> Account:
        if password is not None:
            password_hash = await hash_password(password)
        now = datetime.now(UTC)
        try:
            async with self.store.writing(tx) as tx:
                account_id = await tx.conn.scalar(
                    insert(AccountRow)
                    .values(**values, created_at=now, disabled=False, last_uidvalidity=0)
                    .returning(AccountRow.id)
                )
                assert account_id is not None
                await self.store.folders.create_defaults(account_id, tx)
                if password_hash is not None:
                    await self._add_credential(
                        tx, account_id, CredentialKind.PASSWORD, password_hash=password_hash
                    )
                row = (
                    await tx.conn.execute(select(AccountRow).where(AccountRow.id == account_id))
                ).one()
        except IntegrityError:
            raise AlreadyExists(f"account {values['address']} exists already") from None
        return account_from_row(row)

    async def get(self, account_id: int) -> Account:
        return await self._one(_BY_ID, account_id)

    async def by_address(self, address: str) -> Account:
        return await self._one(_BY_ADDRESS, address.strip().lower())

    async def by_ins(self, ins: str) -> Account:
        return await self._one(_BY_INS, ins.strip().upper())

    async def find(self, address: str) -> Account | None:
        """The account of an address, or None (no exception: for RCPT TO checks)."""
        try:
            return await self.by_address(address)
        except NotFound:
            return None

    async def _one(self, query: Prepared, value: object) -> Account:
        row = await self.store.db.first(query, value=value)
        if row is None:
            raise NotFound("no such account")
        return account_from_row(row)

    async def all(self, kind: AccountKind | None = None) -> list[Account]:
        query = select(AccountRow).order_by(AccountRow.address)
        if kind is not None:
            query = query.where(AccountRow.kind == kind.value)
        async with self.store.db.read() as conn:
            rows = (await conn.execute(query)).all()
        return [account_from_row(row) for row in rows]

    async def remove(self, address: str, *, tx: Transaction | None = None) -> None:
        """Delete an account, its folders and messages (files go at the next sweep)."""
        async with self.store.writing(tx) as tx:
            result = await tx.conn.execute(
                delete(AccountRow).where(AccountRow.address == address.strip().lower())
            )
            if result.rowcount == 0:
                raise NotFound("no such account")

    async def set_disabled(self, account_id: int, disabled: bool) -> None:
        await self._update(account_id, disabled=disabled)

    async def record_login(self, account_id: int) -> None:
        """Remember the last successful authentication (inactive-mailbox retention)."""
        await self._update(account_id, last_login_at=datetime.now(UTC))

    async def set_profile_status(
        self, ins: str, status: ProfileStatus, *, tx: Transaction | None = None
    ) -> Account:
        account = await self.by_ins(ins)
        await self._update(account.id, tx=tx, profile_status=status.value)
        return await self.get(account.id)

    async def set_notification_address(self, account_id: int, address: str | None) -> None:
        value = normalise_address(address) if address else None
        await self._update(account_id, notification_address=value)

    async def _update(
        self, account_id: int, *, tx: Transaction | None = None, **values: Any
    ) -> None:
        async with self.store.writing(tx) as tx:
            result = await tx.conn.execute(
                update(AccountRow).where(AccountRow.id == account_id).values(**values)
            )
            if result.rowcount == 0:
                raise NotFound("no such account")

    # -- authentication means ----------------------------------------------------------------

    async def _add_credential(
        self, tx: Transaction, account_id: int, kind: CredentialKind, **values: Any
    ) -> None:
        await tx.conn.execute(
            insert(CredentialRow).values(
                account_id=account_id,
                kind=kind.value,
                created_at=datetime.now(UTC),
                totp_last_counter=-1,
                **values,
            )
        )

    async def set_password(self, account_id: int, password: str) -> None:
        password_hash = await hash_password(password)
        async with self.store.transaction() as tx:
            await self._require(tx, account_id)
            await tx.conn.execute(
                delete(CredentialRow).where(
                    CredentialRow.account_id == account_id,
                    CredentialRow.kind == CredentialKind.PASSWORD.value,
                )
            )
            await self._add_credential(
                tx, account_id, CredentialKind.PASSWORD, password_hash=password_hash
            )

    async def verify_password(self, account_id: int, password: str) -> bool:
        """True when ``password`` matches (constant-time in argon2); rehashes an outdated hash."""
        async with self.store.db.read() as conn:
            stored = await conn.scalar(
                select(CredentialRow.password_hash).where(
                    CredentialRow.account_id == account_id,
                    CredentialRow.kind == CredentialKind.PASSWORD.value,
                )
            )
        if stored is None:
            return False
        try:
            await asyncio.to_thread(_HASHER.verify, stored, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False
        if _HASHER.check_needs_rehash(stored):
            await self.set_password(account_id, password)
        return True

    async def enable_totp(self, account_id: int, secret: str | None = None) -> str:
        """Give the account a TOTP secret (RFC 6238) and return it (base32, for the app)."""
        secret = secret or new_secret()
        async with self.store.transaction() as tx:
            await self._require(tx, account_id)
            await tx.conn.execute(
                delete(CredentialRow).where(
                    CredentialRow.account_id == account_id,
                    CredentialRow.kind == CredentialKind.TOTP.value,
                )
            )
            await self._add_credential(tx, account_id, CredentialKind.TOTP, totp_secret=secret)
        return secret

    async def verify_totp(
        self, account_id: int, code: str, *, digits: int = 6, at: float | None = None
    ) -> bool:
        """Check a one-time code and consume it: the same step is never accepted twice
        (RFC 6238 §5.2); the last accepted step is kept in the database."""
        async with self.store.transaction() as tx:
            row = (
                await tx.conn.execute(
                    select(
                        CredentialRow.id, CredentialRow.totp_secret, CredentialRow.totp_last_counter
                    )
                    .where(
                        CredentialRow.account_id == account_id,
                        CredentialRow.kind == CredentialKind.TOTP.value,
                    )
                    .with_for_update()
                )
            ).first()
            if row is None or not row.totp_secret:
                return False
            counter = verify_totp(
                row.totp_secret, code, at=at, digits=digits, last_counter=row.totp_last_counter
            )
            if counter is None:
                return False
            await tx.conn.execute(
                update(CredentialRow)
                .where(CredentialRow.id == row.id)
                .values(totp_last_counter=counter)
            )
        return True

    async def add_certificate(self, account_id: int, identity: CertificateIdentity) -> None:
        """Accept a client certificate (SASL EXTERNAL): any of DN, RPPS, structure id,
        SHA-256 fingerprint."""
        if not any((identity.dn, identity.rpps, identity.structure_id, identity.fingerprint)):
            raise InvalidRequest("a certificate identity needs at least one attribute")
        async with self.store.transaction() as tx:
            await self._require(tx, account_id)
            await self._add_credential(
                tx,
                account_id,
                CredentialKind.CERTIFICATE,
                cert_dn=identity.dn,
                cert_rpps=identity.rpps,
                cert_structure_id=identity.structure_id,
                cert_fingerprint=identity.fingerprint.lower() if identity.fingerprint else None,
            )

    async def add_oauth_subject(self, account_id: int, subject: str) -> None:
        """Accept OAUTHBEARER tokens whose subject claim (``sub`` or the RPPS claim) is this."""
        if not subject:
            raise InvalidRequest("empty OAuth subject")
        async with self.store.transaction() as tx:
            await self._require(tx, account_id)
            await self._add_credential(tx, account_id, CredentialKind.OAUTH, oauth_subject=subject)

    async def credentials(self, account_id: int) -> Credentials:
        async with self.store.db.read() as conn:
            rows = (
                await conn.execute(
                    select(CredentialRow).where(CredentialRow.account_id == account_id)
                )
            ).all()
        return Credentials(
            has_password=any(row.kind == CredentialKind.PASSWORD.value for row in rows),
            has_totp=any(row.kind == CredentialKind.TOTP.value for row in rows),
            certificates=tuple(
                CertificateIdentity(
                    row.cert_dn, row.cert_rpps, row.cert_structure_id, row.cert_fingerprint
                )
                for row in rows
                if row.kind == CredentialKind.CERTIFICATE.value
            ),
            oauth_subjects=tuple(
                row.oauth_subject
                for row in rows
                if row.kind == CredentialKind.OAUTH.value and row.oauth_subject
            ),
        )

    async def by_certificate(self, identity: CertificateIdentity) -> list[Account]:
        """Accounts accepting this certificate: a registered fingerprint matches alone;
        otherwise every registered attribute (DN, RPPS, structure id) must match."""
        conditions = []
        if identity.fingerprint:
            conditions.append(CredentialRow.cert_fingerprint == identity.fingerprint.lower())
        if identity.dn:
            conditions.append(CredentialRow.cert_dn == identity.dn)
        if identity.rpps:
            conditions.append(CredentialRow.cert_rpps == identity.rpps)
        if not conditions:
            return []
        async with self.store.db.read() as conn:
            rows = (
                await conn.execute(
                    select(
                        AccountRow,
                        CredentialRow.cert_fingerprint,
                        CredentialRow.cert_dn,
                        CredentialRow.cert_rpps,
                        CredentialRow.cert_structure_id,
                    )
                    .join(CredentialRow, AccountRow.id == CredentialRow.account_id)
                    .where(CredentialRow.kind == CredentialKind.CERTIFICATE.value, or_(*conditions))
                )
            ).all()
        found: dict[int, Account] = {}
        for row in rows:
            if row.cert_fingerprint and identity.fingerprint:
                matches = row.cert_fingerprint == identity.fingerprint.lower()
            else:
                matches = row.cert_fingerprint is None and all(
                    registered is None or registered == given
                    for registered, given in (
                        (row.cert_dn, identity.dn),
                        (row.cert_rpps, identity.rpps),
                        (row.cert_structure_id, identity.structure_id),
                    )
                )
            if matches:
                found[row.id] = account_from_row(row)
        return sorted(found.values(), key=lambda account: account.address)

    async def by_oauth_subject(self, subject: str) -> list[Account]:
        async with self.store.db.read() as conn:
            rows = (
                await conn.execute(
                    select(AccountRow)
                    .join(CredentialRow, AccountRow.id == CredentialRow.account_id)
                    .where(
                        CredentialRow.kind == CredentialKind.OAUTH.value,
                        CredentialRow.oauth_subject == subject,
                    )
                    .order_by(AccountRow.address)
                )
            ).all()
        return [account_from_row(row) for row in rows]

    async def _require(self, tx: Transaction, account_id: int) -> None:
        if await tx.conn.scalar(select(AccountRow.id).where(AccountRow.id == account_id)) is None:
            raise NotFound("no such account")

    # -- ORG members and guardians -----------------------------------------------------------

    async def add_member(self, org_id: int, member_id: int) -> None:
        org, member = await self.get(org_id), await self.get(member_id)
        if org.kind is not AccountKind.ORG:
            raise InvalidRequest("members belong to ORG mailboxes")
        if member.kind not in (AccountKind.PER,):
            raise InvalidRequest("a member is a person's (PER) account")
        try:
            async with self.store.transaction() as tx:
                await tx.conn.execute(
                    insert(MembershipRow).values(org_id=org_id, member_id=member_id)
                )
        except IntegrityError:
            raise AlreadyExists("already a member") from None

    async def remove_member(self, org_id: int, member_id: int) -> None:
        async with self.store.transaction() as tx:
            await tx.conn.execute(
                delete(MembershipRow).where(
                    MembershipRow.org_id == org_id, MembershipRow.member_id == member_id
                )
            )

    async def members(self, org_id: int) -> list[Account]:
        return await self._related(MembershipRow.member_id, MembershipRow.org_id == org_id)

    async def organisations_of(self, member_id: int) -> list[Account]:
        """The ORG mailboxes a person may act in."""
        return await self._related(MembershipRow.org_id, MembershipRow.member_id == member_id)

    async def _related(self, column: Any, condition: Any) -> list[Account]:
        async with self.store.db.read() as conn:
            rows = (
                await conn.execute(
                    select(AccountRow)
                    .join(column.table, AccountRow.id == column)
                    .where(condition)
                    .order_by(AccountRow.address)
                )
            ).all()
        return [account_from_row(row) for row in rows]

    async def add_guardian(self, ward_id: int, guardian_id: int, relationship: str) -> None:
        """Let a citizen (the guardian) act in another citizen's profile (policy P9)."""
        if relationship not in GUARDIAN_RELATIONSHIPS:
            raise InvalidRequest(f"relationship must be one of {', '.join(GUARDIAN_RELATIONSHIPS)}")
        if ward_id == guardian_id:
            raise InvalidRequest("a citizen is not their own guardian")
        ward, guardian = await self.get(ward_id), await self.get(guardian_id)
        if not (ward.is_citizen and guardian.is_citizen):
            raise InvalidRequest("guardians and wards are citizens")
        try:
            async with self.store.transaction() as tx:
                await tx.conn.execute(
                    insert(GuardianshipRow).values(
                        ward_id=ward_id,
                        guardian_id=guardian_id,
                        relationship=relationship,
                        created_at=datetime.now(UTC),
                    )
                )
        except IntegrityError:
            raise AlreadyExists("already a guardian of this profile") from None

    async def remove_guardian(self, ward_id: int, guardian_id: int) -> None:
        async with self.store.transaction() as tx:
            await tx.conn.execute(
                delete(GuardianshipRow).where(
                    GuardianshipRow.ward_id == ward_id, GuardianshipRow.guardian_id == guardian_id
                )
            )

    async def guardians(self, ward_id: int) -> list[Guardian]:
        return await self._guardianships(_GUARDIANS, ward_id)

    async def wards(self, guardian_id: int) -> list[Guardian]:
        """The profiles a guardian may act in (``account`` is the ward)."""
        return await self._guardianships(_WARDS, guardian_id)

    async def _guardianships(self, query: Prepared, value: int) -> list[Guardian]:
        rows = await self.store.db.all(query, value=value)
        return [Guardian(account_from_row(row), row.relationship) for row in rows]

    async def may_act_for(self, actor_id: int, mailbox_id: int) -> bool:
        """True when the actor owns the mailbox, is a member of this ORG mailbox, or is a
        guardian of this citizen (the authenticated identity must own or be a member of the
        sending mailbox; policy P9 for guardians)."""
        if actor_id == mailbox_id:
            return True
        async with self.store.db.read() as conn:
            member = await conn.scalar(
                select(MembershipRow.org_id).where(
                    MembershipRow.org_id == mailbox_id, MembershipRow.member_id == actor_id
                )
            )
            if member is not None:
                return True
            guardian = await conn.scalar(
                select(GuardianshipRow.ward_id).where(
                    GuardianshipRow.ward_id == mailbox_id, GuardianshipRow.guardian_id == actor_id
                )
            )
        return guardian is not None

    async def addresses(self, ids: Sequence[int]) -> dict[int, str]:
        async with self.store.db.read() as conn:
            rows = (
                await conn.execute(
                    select(AccountRow.id, AccountRow.address).where(AccountRow.id.in_(list(ids)))
                )
            ).all()
        return {row.id: row.address for row in rows}
