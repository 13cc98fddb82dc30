"""The directory of professional mailboxes (ours and other operators') and the dispensations
that the pharmacy rule needs (policy P3).

``lookup(address)`` answers the policy's facts: for one of our accounts it describes the account
(``local=True``), else the imported national entry. Imports replace entries address by address
(upsert) and report bad rows; dispensations are (INS, pharmacy, date) triples where the pharmacy
is named by its mailbox address or its structure id.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, bindparam, delete, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from .directory_import import ImportProblem, ParsedExtract, decode, parse_extract
from .errors import InvalidRequest
from .models import AccountRow, DirectoryEntryRow, DispensationRow
from .prepared import Prepared
from .records import AccountKind, DirectoryEntry

if TYPE_CHECKING:
    from .service import Store, Transaction

#: Entries written per statement during an import.
IMPORT_BATCH = 500


@dataclass(frozen=True, slots=True)
class ImportReport:
    shape: str
    added: int
    updated: int
    problems: list[ImportProblem]


def entry_from_row(row: Any) -> DirectoryEntry:
    return DirectoryEntry(
        address=row.address,
        bal_type=row.bal_type,
        display_name=row.display_name,
        profession=row.profession,
        rpps=row.rpps,
        structure_id=row.structure_id,
        structure_name=row.structure_name,
        pharmacy=row.pharmacy,
        no_reply=row.no_reply,
        local=False,
    )


# Built once (the policy's facts look a sender up at every RCPT: accounts.py says why).
_ACCOUNT = Prepared(select(AccountRow).where(AccountRow.address == bindparam("address")))
_ENTRY = Prepared(
    select(DirectoryEntryRow).where(DirectoryEntryRow.address == bindparam("address"))
)


class Directory:
    def __init__(self, store: Store) -> None:
        self.store = store

    async def lookup(self, address: str) -> DirectoryEntry | None:
        """The directory facts of a professional address (ours first), or None."""
        address = address.strip().lower()
        async with self.store.db.snapshot(quick=True):
            account = await self.store.db.first(_ACCOUNT, address=address)
            entry = await self.store.db.first(_ENTRY, address=address)
        if account is not None and account.kind != AccountKind.CITIZEN.value:
            return DirectoryEntry(
                address=account.address,
                bal_type=account.kind,
                display_name=account.display_name,
                profession=account.profession,
                rpps=account.rpps,
                structure_id=account.structure_id,
                structure_name=entry.structure_name if entry is not None else None,
                pharmacy=bool(entry.pharmacy) if entry is not None else False,
                no_reply=account.no_reply,
                local=True,
            )
        return entry_from_row(entry) if entry is not None else None

    async def display_names(self, addresses: list[str]) -> dict[str, str]:
        """Address → display name for the addresses known (accounts first)."""
        lowered = sorted({address.lower() for address in addresses})
        if not lowered:
            return {}
        async with self.store.db.read() as conn:
            entries = (
                await conn.execute(
                    select(DirectoryEntryRow.address, DirectoryEntryRow.display_name).where(
                        DirectoryEntryRow.address.in_(lowered)
                    )
                )
            ).all()
            accounts = (
                await conn.execute(
                    select(AccountRow.address, AccountRow.display_name).where(
                        AccountRow.address.in_(lowered)
                    )
                )
            ).all()
        names = {row.address: row.display_name for row in entries if row.display_name}
        names.update({row.address: row.display_name for row in accounts if row.display_name})
        return names

    async def upsert(
        self, entries: list[DirectoryEntry], *, source: str = "", tx: Transaction | None = None
    ) -> tuple[int, int]:
        """Add or replace entries by address; returns (added, updated)."""
        added = updated = 0
        now = datetime.now(UTC)
        async with self.store.writing(tx) as tx:
            for start in range(0, len(entries), IMPORT_BATCH):
                batch = entries[start : start + IMPORT_BATCH]
                existing = set(
                    (
                        await tx.conn.scalars(
                            select(DirectoryEntryRow.address).where(
                                DirectoryEntryRow.address.in_([e.address for e in batch])
                            )
                        )
                    ).all()
                )
                values = [
                    {
                        "address": entry.address,
                        "bal_type": entry.bal_type,
                        "display_name": entry.display_name,
                        "profession": entry.profession,
                        "rpps": entry.rpps,
                        "structure_id": entry.structure_id,
                        "structure_name": entry.structure_name,
                        "pharmacy": entry.pharmacy,
                        "no_reply": entry.no_reply,
                        "source": source[:255],
                        "updated_at": now,
                    }
                    for entry in batch
                ]
                new = [value for value in values if value["address"] not in existing]
                old = [value for value in values if value["address"] in existing]
                if new:
                    await tx.conn.execute(insert(DirectoryEntryRow), new)
                for value in old:
                    await tx.conn.execute(
                        update(DirectoryEntryRow)
                        .where(DirectoryEntryRow.address == value["address"])
                        .values(**value)
                    )
                added += len(new)
                updated += len(old)
        return added, updated

    async def import_bytes(self, data: bytes, *, source: str = "") -> ImportReport:
        """Import an extract (see :mod:`.directory_import`): good rows kept, bad ones reported."""
        parsed: ParsedExtract = parse_extract(decode(data), source)
        added, updated = await self.upsert(parsed.entries, source=source)
        return ImportReport(parsed.shape, added, updated, parsed.problems)

    async def remove(self, address: str) -> bool:
        async with self.store.transaction() as tx:
            result = await tx.conn.execute(
                delete(DirectoryEntryRow).where(DirectoryEntryRow.address == address.lower())
            )
        return bool(result.rowcount)

    async def search(self, text: str, limit: int = 50) -> list[DirectoryEntry]:
        """Entries whose address, name or structure contains ``text`` (case-insensitive)."""
        needle = f"%{_escape_like(text.lower())}%"
        async with self.store.db.read() as conn:
            rows = (
                await conn.execute(
                    select(DirectoryEntryRow)
                    .where(
                        or_(
                            DirectoryEntryRow.address.like(needle, escape="\\"),
                            DirectoryEntryRow.display_name.ilike(needle, escape="\\"),
                            DirectoryEntryRow.structure_name.ilike(needle, escape="\\"),
                        )
                    )
                    .order_by(DirectoryEntryRow.address)
                    .limit(limit)
                )
            ).all()
        return [entry_from_row(row) for row in rows]

    # -- dispensations (policy P3) -----------------------------------------------------------

    async def add_dispensation(self, ins: str, pharmacy: str, dispensed_on: datetime) -> bool:
        """Record one dispensation; False when it was known already."""
        if dispensed_on.tzinfo is None:
            raise InvalidRequest("dispensation date must carry a time zone")
        try:
            async with self.store.transaction() as tx:
                await tx.conn.execute(
                    insert(DispensationRow).values(
                        ins=ins.strip().upper(),
                        pharmacy=pharmacy.strip().lower(),
                        dispensed_on=dispensed_on,
                    )
                )
        except IntegrityError:
            return False
        return True

    async def has_dispensation(self, ins: str, pharmacy_address: str, since: datetime) -> bool:
        """Whether the citizen had a dispensation at this pharmacy (named by its address or by
        the structure id of its directory entry) on or after ``since``."""
        last = await self.last_dispensation(ins, pharmacy_address)
        return last is not None and last >= since

    async def last_dispensation(self, ins: str, pharmacy_address: str) -> datetime | None:
        """When the citizen last had a dispensation at this pharmacy (named by its address or
        by the structure id of its directory entry), or None (policy P3)."""
        address = pharmacy_address.strip().lower()
        entry = await self.lookup(address)
        names = [address]
        if entry is not None and entry.structure_id:
            names.append(entry.structure_id.lower())
        async with self.store.db.read() as conn:
            last: datetime | None = await conn.scalar(
                select(func.max(DispensationRow.dispensed_on)).where(
                    and_(
                        DispensationRow.ins == ins.strip().upper(),
                        DispensationRow.pharmacy.in_(names),
                    )
                )
            )
        if last is not None and last.tzinfo is None:  # max() bypasses the column type on SQLite
            last = last.replace(tzinfo=UTC)
        return last


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
