"""Usage indicators per establishment and per ISO week (``pli stats``): what the establishments
of the 2022 Mon espace santé pilots tracked weekly (mssante.md §7, product.md "usage
indicators").

Per establishment and per week:

- ``sent``: messages professionals of the establishment sent to citizens, one per citizen
  (the conversations' ``to-citizen`` Message-IDs, recorded in the transaction that delivered
  them: campaign messages included);
- ``received``: messages citizens sent to them (``from-citizen``);
- ``convocations``: campaign rows of kind ``convocation`` the submission pipeline accepted
  (``bulk_rows`` ``submitted``), and ``campaign_messages``: campaign rows of every kind
  accepted (both are part of ``sent`` once delivered);
- ``documents_filed``: attachments filed into citizens' document stores (the filing outbox's
  ``filed`` requests; an IHE_XDM.zip counts once), counted for the establishment whose message
  carried them;
- ``sent_total`` and ``received_total``: cumulative counts since the first record up to the
  end of the week (the pilots reported cumulative figures).

**Establishment.** A professional mailbox belongs to the structure (FINESS/SIRET id) our account
for it carries, else its national directory entry's; a campaign to the structure recorded when
it was registered. A mailbox with no known structure is counted under its domain (written
``@ch-exemple.mssante.fr``); a filed document whose message is in no conversation under
``-``. The name shown is the directory's structure name, else the display name of an ORG
mailbox of that structure.

**Weeks** are ISO 8601 weeks (Monday to Sunday) in a local time zone (Europe/Paris unless told):
the period asked is widened to whole weeks. Counting is done by the database (``COUNT`` grouped
by mailbox and week); the week of each timestamp is a ``CASE`` over the weeks' bounds computed
here, so the same query runs on SQLite and PostgreSQL and respects daylight saving time.

What this module must not do: write to the store, or read message contents.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Select, case, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from pli.mailbox.filing.models import FilingRequestRow
from pli.mailbox.filing.reasons import FilingStatus
from pli.mailbox.store import Store
from pli.mailbox.store.conversations import FROM_CITIZEN, TO_CITIZEN
from pli.mailbox.store.models import (
    AccountRow,
    ConversationRow,
    DirectoryEntryRow,
    ThreadMessageRow,
)

from .ledger import SUBMITTED
from .models import CampaignRecipientRow, CampaignRow

#: The establishments of the pilots are in metropolitan France: weeks begin on Monday 00:00
#: there unless the operator names another zone (overseas departments).
DEFAULT_ZONE = "Europe/Paris"
#: Weeks in one report at most: ten years (each week is one branch of the CASE expression).
MAX_WEEKS = 530
#: Addresses or structure ids looked up in one query (SQLite's 32,766 parameters per
#: statement, SQLITE_MAX_VARIABLE_NUMBER, with room to spare).
LOOKUP_CHUNK = 500
#: The establishment of a filed document whose message is in no conversation.
UNKNOWN = "-"
#: The campaign kind counted as convocations (definition.py's ``Kind``).
CONVOCATION = "convocation"
#: The indicators, in the order reports show them.
INDICATORS = ("sent", "received", "convocations", "campaign_messages", "documents_filed")
CUMULATIVE = ("sent_total", "received_total")
#: The bucket of everything before the period (counted only in the cumulative figures).
BEFORE = -1


class StatsError(Exception):
    """The period asked cannot be reported (``text`` names why)."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


@dataclass(frozen=True)
class Period:
    """Whole ISO weeks: the Monday of each, and their bounds as UTC instants."""

    mondays: tuple[date, ...]
    zone: str

    @classmethod
    def covering(cls, first: date, last: date, zone: str = DEFAULT_ZONE) -> Period:
        """The weeks containing ``first`` … ``last`` (inclusive)."""
        if last < first:
            raise StatsError(f"période vide : {first.isoformat()} est après {last.isoformat()}")
        try:
            ZoneInfo(zone)
        except (ValueError, KeyError):  # ZoneInfoNotFoundError is a KeyError
            raise StatsError(f"fuseau horaire inconnu : {zone}") from None
        start = first - timedelta(days=first.weekday())
        count = (last - start).days // 7 + 1
        if count > MAX_WEEKS:
            raise StatsError(f"{count} semaines demandées, {MAX_WEEKS} au plus")
        return cls(tuple(start + timedelta(weeks=i) for i in range(count)), zone)

    @property
    def bounds(self) -> list[datetime]:
        """Monday 00:00 local of each week and of the week after, in UTC."""
        zone = ZoneInfo(self.zone)
        days = [*self.mondays, self.mondays[-1] + timedelta(weeks=1)]
        return [datetime.combine(day, time(), zone).astimezone(UTC) for day in days]

    @property
    def first(self) -> date:
        return self.mondays[0]

    @property
    def last(self) -> date:
        """The Sunday ending the period."""
        return self.mondays[-1] + timedelta(days=6)


def week_label(monday: date) -> str:
    """ISO 8601 week date: ``2025-W03``."""
    year, week, _ = monday.isocalendar()
    return f"{year}-W{week:02d}"


@dataclass(frozen=True)
class WeekFigures:
    establishment: str
    name: str
    week: str
    monday: date
    sent: int = 0
    received: int = 0
    convocations: int = 0
    campaign_messages: int = 0
    documents_filed: int = 0
    sent_total: int = 0
    received_total: int = 0

    def as_dict(self) -> dict[str, Any]:
        values = asdict(self)
        values["monday"] = self.monday.isoformat()
        return values


@dataclass(frozen=True)
class UsageReport:
    period: Period
    rows: list[WeekFigures]

    def as_dict(self) -> dict[str, Any]:
        return {
            "from": self.period.first.isoformat(),
            "to": self.period.last.isoformat(),
            "zone": self.period.zone,
            "weeks": [week_label(monday) for monday in self.period.mondays],
            "rows": [row.as_dict() for row in self.rows],
        }


def week_bucket(column: Any, bounds: Sequence[datetime]) -> ColumnElement[int]:
    """The week index of ``column`` (0 for the first week), :data:`BEFORE` for earlier
    instants; callers keep ``column < bounds[-1]``."""
    whens: list[tuple[Any, int]] = [(column < bounds[0], BEFORE)]
    whens += [(column < bound, index) for index, bound in enumerate(bounds[1:])]
    return case(*whens, else_=len(bounds) - 1)


def _grouped(inner: Select[*tuple[Any, ...]], keys: Iterable[str]) -> Select[*tuple[Any, ...]]:
    """``SELECT keys…, bucket, COUNT(*)`` over the per-record ``inner`` query: grouping on the
    subquery's columns, not on the CASE expression itself (PostgreSQL would see two different
    expressions, their bound parameters numbered apart)."""
    sub = inner.subquery()
    columns = [sub.c[key] for key in keys]
    return select(*columns, sub.c.bucket, func.count().label("n")).group_by(*columns, sub.c.bucket)


@dataclass
class _Counts:
    """Counts keyed by establishment, then week index (BEFORE included)."""

    by: dict[str, dict[str, defaultdict[int, int]]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(lambda: defaultdict(int)))
    )

    def add(self, establishment: str, indicator: str, bucket: int, count: int) -> None:
        self.by[establishment][indicator][bucket] += count


class UsageStats:
    def __init__(self, store: Store) -> None:
        self.store = store

    async def report(self, period: Period, establishment: str | None = None) -> UsageReport:
        """The figures of every establishment active during the period (or of one)."""
        bounds = period.bounds
        counts = _Counts()
        async with self.store.db.read() as conn:
            exchanged = (await conn.execute(self._exchanged(bounds))).all()
            campaigns = (await conn.execute(self._campaign_rows(bounds))).all()
            filed = (await conn.execute(self._filed(bounds))).all()
            addresses = {row.professional for row in exchanged}
            addresses |= {row.mailbox for row in campaigns if not row.structure_id}
            addresses |= {row.professional for row in filed if row.professional}
            owners = await _structures(conn, addresses)
            for row in exchanged:
                indicator = "sent" if row.direction == TO_CITIZEN else "received"
                counts.add(owners[row.professional], indicator, row.bucket, row.n)
            for row in campaigns:
                owner = row.structure_id or owners[row.mailbox]
                counts.add(owner, "campaign_messages", row.bucket, row.n)
                if row.kind == CONVOCATION:
                    counts.add(owner, "convocations", row.bucket, row.n)
            for row in filed:
                owner = owners[row.professional] if row.professional else UNKNOWN
                counts.add(owner, "documents_filed", row.bucket, row.n)
            names = await _names(conn, [key for key in counts.by if not key.startswith("@")])
        rows = []
        for key in sorted(counts.by):
            if establishment is not None and key != establishment:
                continue
            rows += _weeks(key, names.get(key, ""), counts.by[key], period)
        return UsageReport(period, rows)

    @staticmethod
    def _exchanged(bounds: Sequence[datetime]) -> Select[*tuple[Any, ...]]:
        at = ThreadMessageRow.at
        inner = (
            select(
                ConversationRow.professional.label("professional"),
                ThreadMessageRow.direction.label("direction"),
                week_bucket(at, bounds).label("bucket"),
            )
            .join(ConversationRow, ConversationRow.id == ThreadMessageRow.conversation_id)
            .where(at < bounds[-1], ThreadMessageRow.direction.in_([TO_CITIZEN, FROM_CITIZEN]))
        )
        return _grouped(inner, ["professional", "direction"])

    @staticmethod
    def _campaign_rows(bounds: Sequence[datetime]) -> Select[*tuple[Any, ...]]:
        at = CampaignRecipientRow.submitted_at
        inner = (
            select(
                CampaignRow.mailbox.label("mailbox"),
                CampaignRow.structure_id.label("structure_id"),
                CampaignRow.kind.label("kind"),
                week_bucket(at, bounds).label("bucket"),
            )
            .join(CampaignRow, CampaignRow.id == CampaignRecipientRow.campaign_id)
            .where(CampaignRecipientRow.state == SUBMITTED, at < bounds[-1])
        )
        return _grouped(inner, ["mailbox", "structure_id", "kind"])

    @staticmethod
    def _filed(bounds: Sequence[datetime]) -> Select[*tuple[Any, ...]]:
        """Filed requests with the professional whose message carried the attachment: the
        conversation (with this citizen) the Message-ID was sent in."""
        at = FilingRequestRow.filed_at
        professional = (
            select(func.min(ConversationRow.professional))
            .join(ThreadMessageRow, ThreadMessageRow.conversation_id == ConversationRow.id)
            .where(
                ThreadMessageRow.message_id == FilingRequestRow.message_id,
                ThreadMessageRow.direction == TO_CITIZEN,
                ConversationRow.ins == FilingRequestRow.ins,
            )
            .scalar_subquery()
        )
        inner = select(
            professional.label("professional"), week_bucket(at, bounds).label("bucket")
        ).where(FilingRequestRow.state == FilingStatus.FILED.value, at < bounds[-1])
        return _grouped(inner, ["professional"])


def _chunks(items: Sequence[str]) -> Iterable[Sequence[str]]:
    for start in range(0, len(items), LOOKUP_CHUNK):
        yield items[start : start + LOOKUP_CHUNK]


def domain_key(address: str) -> str:
    return "@" + address.rpartition("@")[2]


async def _structures(conn: AsyncConnection, addresses: set[str]) -> dict[str, str]:
    """The establishment of each professional address: our account's structure, else the
    directory's, else the address's domain."""
    found: dict[str, str] = {}
    ordered = sorted(addresses)
    for chunk in _chunks(ordered):
        directory = await conn.execute(
            select(DirectoryEntryRow.address, DirectoryEntryRow.structure_id).where(
                DirectoryEntryRow.address.in_(chunk), DirectoryEntryRow.structure_id.is_not(None)
            )
        )
        found.update({row.address: row.structure_id for row in directory if row.structure_id})
        ours = await conn.execute(
            select(AccountRow.address, AccountRow.structure_id).where(
                AccountRow.address.in_(chunk), AccountRow.structure_id.is_not(None)
            )
        )
        found.update({row.address: row.structure_id for row in ours if row.structure_id})
    return {address: found.get(address) or domain_key(address) for address in ordered}


async def _names(conn: AsyncConnection, structures: list[str]) -> dict[str, str]:
    """The name of each structure: the directory's, else an ORG mailbox's display name."""
    names: dict[str, str] = {}
    for chunk in _chunks(sorted(structures)):
        orgs = await conn.execute(
            select(AccountRow.structure_id, func.min(AccountRow.display_name))
            .where(AccountRow.structure_id.in_(chunk), AccountRow.kind == "ORG")
            .group_by(AccountRow.structure_id)
        )
        names.update({key: name for key, name in orgs if key and name})
        directory = await conn.execute(
            select(DirectoryEntryRow.structure_id, func.min(DirectoryEntryRow.structure_name))
            .where(DirectoryEntryRow.structure_id.in_(chunk))
            .group_by(DirectoryEntryRow.structure_id)
        )
        names.update({key: name for key, name in directory if key and name})
    return names


def _weeks(
    key: str, name: str, counts: dict[str, defaultdict[int, int]], period: Period
) -> list[WeekFigures]:
    """Every week of the period for one establishment; none if it was idle throughout."""
    weekly = range(len(period.mondays))
    if not any(counts[indicator][index] for indicator in counts for index in weekly):
        return []
    sent_total = counts.get("sent", defaultdict(int))[BEFORE]
    received_total = counts.get("received", defaultdict(int))[BEFORE]
    rows = []
    for index, monday in enumerate(period.mondays):
        figures = {
            indicator: counts[indicator][index] if indicator in counts else 0
            for indicator in INDICATORS
        }
        sent_total += figures["sent"]
        received_total += figures["received"]
        rows.append(
            WeekFigures(
                establishment=key,
                name=name,
                week=week_label(monday),
                monday=monday,
                sent_total=sent_total,
                received_total=received_total,
                **figures,
            )
        )
    return rows
