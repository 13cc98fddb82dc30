"""The dry run of a campaign, and what checking and sending share: opening a campaign from its
files with the configured bounds, the sending mailbox, the principal the pipeline sees.

:func:`check_campaign` validates every row as the real submission would take it, and sends
nothing: the CSV line (INS shape and key, required fields, duplicate keys: ``recipients.py``),
the templates rendered, the attachments read and within ``bulk.max_attachment_size``, the
IHE_XDM package built and read back, the whole message within ``limits.message_size``
(``compose.py``), then the policy decision for the recipient (profile open, closed or opposed,
INS known, P4, P7 …) asked of the submission pipeline itself
(:meth:`~pli.mailgateway.submission.SubmissionPipeline.check_recipient`, which writes nothing),
with the very message that would be submitted. The report says, per row, what would be refused
and why; a decision that could not be taken now (451, facts unavailable) is ``temporary``: the
runner would try that row again later.

Public entry points (stable; the HTTP API builds on them): :class:`BulkContext`,
:func:`open_campaign`, :func:`sender_of`, :func:`bulk_principal`, :func:`check_campaign`,
:class:`CheckReport` (``as_json``, :func:`check_csv`).

What this module must not do: submit, queue or record anything.
"""

from __future__ import annotations

import asyncio
import csv
import io
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from pli.config.schema import Settings
from pli.mailbox.auth.service import AuthMethod, Principal
from pli.mailbox.policyfacts import read_traits
from pli.mailbox.store import Account, AccountKind, Store
from pli.policy.ins import ins_problem

from ..submission import SubmissionPipeline
from .campaign import Campaign, CampaignError, CampaignLimits, RowProblem, load_campaign
from .compose import Composed, Composer, Sender, citizen_address

#: Why a whole campaign cannot be sent from its mailbox (stable codes).
SENDER_UNKNOWN = "sender-unknown"
SENDER_KIND = "sender-not-app-or-org"
SENDER_DISABLED = "sender-disabled"
#: Mailbox kinds a campaign may be sent from (issue 10: "the sending mailbox (APP or ORG)").
SENDING_KINDS = frozenset({AccountKind.APP, AccountKind.ORG})


class SenderRefused(CampaignError):
    """The campaign's mailbox cannot send campaigns; ``reason`` a stable code, ``text``
    French."""

    def __init__(self, reason: str, text: str) -> None:
        super().__init__(text)
        self.reason = reason


@dataclass(frozen=True)
class BulkContext:
    """What checking and sending a campaign need: the settings, the store, and the one
    submission pipeline (the gateway's)."""

    settings: Settings
    store: Store
    pipeline: SubmissionPipeline
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)

    @classmethod
    def from_gateway(cls, gateway: Any) -> BulkContext:
        """From a built :class:`~pli.mailgateway.gateway.Gateway` (``runtime.gateway``)."""
        return cls(gateway.settings, gateway.store, gateway.pipeline, gateway.clock)

    @property
    def citizen_domain(self) -> str:
        return self.settings.domains.citizen

    def composer(self, campaign: Campaign, sender: Sender) -> Composer:
        return Composer(
            campaign,
            sender,
            citizen_domain=self.citizen_domain,
            message_size=self.settings.limits.message_size,
            clock=self.clock,
        )


def open_campaign(
    settings: Settings, path: Path, *, confined: bool = False, today: date | None = None
) -> Campaign:
    """The campaign at ``path`` (its definition file, or a directory holding
    ``campaign.toml``/``campaign.json``), read with the ``[bulk]`` bounds. ``confined``: every
    path it names must stay inside its directory (campaigns uploaded over the HTTP API).
    Raises :class:`~pli.mailgateway.bulk.campaign.CampaignError` (French ``text``)."""
    return load_campaign(
        path,
        limits=CampaignLimits.from_settings(settings.bulk),
        today=today or datetime.now(UTC).date(),
        confined=confined,
    )


async def sender_of(store: Store, address: str) -> tuple[Account, Sender]:
    """The campaign's mailbox: an APP or ORG account of this server, not disabled
    (:class:`SenderRefused` otherwise)."""
    account = await store.accounts.find(address)
    if account is None:
        raise SenderRefused(SENDER_UNKNOWN, f"la boîte {address} n'existe pas sur ce serveur")
    if account.kind not in SENDING_KINDS:
        raise SenderRefused(
            SENDER_KIND,
            f"la boîte {address} est de type {account.kind.value} : une campagne part d'une "
            "boîte applicative (APP) ou organisationnelle (ORG)",
        )
    if account.disabled:
        raise SenderRefused(SENDER_DISABLED, f"la boîte {address} est désactivée")
    sender = Sender(account.address, account.display_name, account.structure_id)
    return account, sender


def bulk_principal(account: Account, origin: str) -> Principal:
    """The identity the pipeline sees for a campaign: the sending mailbox itself. Whoever
    registered the campaign was authenticated already (the operator on this machine for
    ``pli bulk``, a bearer token for the HTTP API); ``origin`` (``cli``, ``api:<client>``)
    is recorded in the audit detail."""
    return Principal(
        account=account, method=AuthMethod.CERTIFICATE, acting_as=account, detail=f"bulk:{origin}"
    )


@dataclass(frozen=True)
class RowCheck:
    """One line of the recipients file as the real submission would take it."""

    line: int
    key: str
    recipient: str  # "" when the INS is unusable
    message_id: str  # "" when the line has no usable key
    accepted: bool
    reason: str  # the policy's reason when accepted (professional-to-citizen), else why not
    text: str  # French
    temporary: bool = False  # a decision that could not be taken now: tried again later
    subject: str = ""  # the rendered subject (to eyeball before sending)
    size: int = 0  # the message's size in bytes

    @property
    def status(self) -> str:
        if self.accepted:
            return "accepted"
        return "deferred" if self.temporary else "refused"


@dataclass(frozen=True)
class CheckReport:
    campaign_id: str
    content_hash: str
    mailbox: str
    encoding: str
    delimiter: str
    rows: tuple[RowCheck, ...]

    @property
    def total(self) -> int:
        return len(self.rows)

    @property
    def accepted(self) -> int:
        return sum(1 for row in self.rows if row.accepted)

    @property
    def refused(self) -> tuple[RowCheck, ...]:
        return tuple(row for row in self.rows if not row.accepted)

    def by_reason(self) -> dict[str, int]:
        """Rows that would not be sent, counted by reason."""
        return dict(Counter(row.reason for row in self.refused).most_common())

    def as_json(self) -> dict[str, Any]:
        return {
            "campaign": self.campaign_id,
            "content_hash": self.content_hash,
            "mailbox": self.mailbox,
            "encoding": self.encoding,
            "delimiter": self.delimiter,
            "total": self.total,
            "accepted": self.accepted,
            "refused": len(self.refused),
            "by_reason": self.by_reason(),
            "rows": [
                {
                    "line": row.line,
                    "key": row.key,
                    "recipient": row.recipient,
                    "message_id": row.message_id,
                    "status": row.status,
                    "reason": row.reason,
                    "text": row.text,
                    "subject": row.subject,
                    "size": row.size,
                }
                for row in self.rows
            ],
        }


CHECK_COLUMNS = ("line", "key", "recipient", "status", "reason", "text", "subject", "message_id")


def safe_cell(value: object) -> str:
    """A CSV cell a spreadsheet will not run: text starting with ``= + - @`` (or a tab or
    carriage return) gets a leading ``'`` (OWASP, CSV injection). Keys and subjects come from
    the establishment's file: they are shown back, never evaluated."""
    text = "" if value is None else str(value)
    return f"'{text}" if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def write_csv(columns: tuple[str, ...], rows: list[tuple[object, ...]]) -> str:
    """CSV (RFC 4180, CRLF, ``;`` as French spreadsheets expect) with a header line."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=";", lineterminator="\r\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([safe_cell(cell) for cell in row])
    return buffer.getvalue()


def check_csv(report: CheckReport) -> str:
    """The dry run as CSV, one line per row of the recipients file."""
    return write_csv(
        CHECK_COLUMNS,
        [
            (r.line, r.key, r.recipient, r.status, r.reason, r.text, r.subject, r.message_id)
            for r in report.rows
        ],
    )


def _line_errors(campaign: Campaign, composer: Composer) -> list[RowCheck]:
    checks = []
    for error in campaign.recipients.errors:
        recipient = (
            citizen_address(error.ins, composer.citizen_domain)
            if error.ins and ins_problem(error.ins) is None
            else ""
        )
        message_id = composer.message_id(error.key) if error.key else ""
        checks.append(
            RowCheck(error.line, error.key, recipient, message_id, False, error.reason, error.text)
        )
    return checks


async def check_campaign(
    context: BulkContext,
    campaign: Campaign,
    *,
    origin: str = "cli",
    on_row: Callable[[RowCheck], None] | None = None,
) -> CheckReport:
    """Every row of ``campaign`` checked (see the module docstring), in file order; nothing is
    sent. Raises :class:`SenderRefused` when the mailbox cannot send campaigns at all.
    ``on_row`` is told each row as it is checked (a progress bar)."""
    account, sender = await sender_of(context.store, campaign.definition.mailbox)
    principal = bulk_principal(account, origin)
    pipeline = context.pipeline
    await pipeline.check_sender(principal, sender.address)
    actor = await pipeline.actor(principal)
    composer = context.composer(campaign, sender)
    checks = _line_errors(campaign, composer)
    for error_check in checks:
        if on_row is not None:
            on_row(error_check)
    for row in campaign.recipients.rows:
        message_id = composer.message_id(row.key)
        recipient = citizen_address(row.ins, composer.citizen_domain)
        try:
            composed: Composed = await asyncio.to_thread(composer.compose, row)
        except RowProblem as problem:
            check = RowCheck(
                row.line, row.key, recipient, message_id, False, problem.reason, problem.text
            )
        else:
            traits = await read_traits(composed.raw)
            answer = await pipeline.check_recipient(
                principal, sender.address, recipient, message=traits, actor=actor
            )
            result = answer.result
            check = RowCheck(
                row.line,
                row.key,
                recipient,
                message_id,
                result.accepted,
                result.reason,
                result.text,
                temporary=result.temporary,
                subject=campaign.templates.render(row.template_context()).subject,
                size=len(composed.raw),
            )
        checks.append(check)
        if on_row is not None:
            on_row(check)
    checks.sort(key=lambda check: check.line)
    return CheckReport(
        campaign_id=campaign.id,
        content_hash=campaign.content_hash,
        mailbox=sender.address,
        encoding=campaign.recipients.encoding,
        delimiter=campaign.recipients.delimiter,
        rows=tuple(checks),
    )
