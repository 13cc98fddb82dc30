"""The one submission pipeline: SMTP submission (587/465), the webmail and the bulk sender all
submit through :meth:`SubmissionPipeline.submit` (it implements ``pli.mailbox.submit.Submit``).

``submit(principal, sender, recipients, raw)``, in order:

1. the size limit; the authenticated identity must own, or be a member of, the envelope sender
   and every From: (and Sender:) mailbox (product.md § trust space; ``553/550 5.7.1``);
2. what an MSA adds (RFC 6409 §8.2-8.3): Message-ID and Date when missing, and the trace field;
3. the policy per recipient, at the DATA moment (the message's traits, the acting identity:
   policy P9), through the same local-recipient checks as inbound mail for our own mailboxes;
4. DKIM signature (in a worker thread) when the From: domain is one we sign for;
5. local recipients delivered in one transaction with the conversation effects and audit
   records, in which the remote recipients are queued and the reports (success DSNs of local
   deliveries; failure DSNs of recipients refused after acceptance, for SMTP) are queued too;
   remote recipients only: one queue transaction.

It returns once everything is committed: a result per recipient. What it must not do: speak SMTP
or HTTP (the front ends render the results).
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime

import structlog

from pli.mailbox.auth.service import Authenticator, Principal
from pli.mailbox.mime.addresses import parse_address_list
from pli.mailbox.mime.headers import parse_header
from pli.mailbox.policyfacts import Decided, PolicyFacts, read_traits
from pli.mailbox.store import Transaction
from pli.mailbox.submit import RecipientResult, SubmissionRefused, SubmissionResult
from pli.policy.facts import Actor, MessageTraits

from .delivery import DeliveryJob, LocalDelivery
from .dkim import DkimSigner
from .dsn import DELIVERED, FAILED, OriginalEnvelope, RecipientReport, wants_report
from .queue.entries import NewRecipient, OutboundQueue
from .recipients import LocalRecipients, Verdict, decision_reply
from .reports import PreparedReport, Reporter
from .smtp import replies as R
from .smtp.replies import Reply

log = structlog.get_logger(__name__)

#: Reasons of whole-message refusals (SubmissionRefused.reason), with the reply SMTP gives and
#: the French text people see.
SENDER_NOT_ALLOWED = "sender-not-allowed"
FROM_NOT_ALLOWED = "from-not-allowed"
MESSAGE_TOO_LARGE = "message-too-large"
FROM_MISSING = "from-missing"
NO_RECIPIENT = "no-recipient"
REFUSALS: dict[str, tuple[Reply, str]] = {
    SENDER_NOT_ALLOWED: (
        R.SENDER_NOT_OWNED,
        "Vous n'êtes pas autorisé à envoyer depuis cette adresse.",
    ),
    FROM_NOT_ALLOWED: (
        R.FROM_NOT_OWNED,
        "L'adresse de l'expéditeur (From:) n'est pas une boîte que vous pouvez utiliser.",
    ),
    MESSAGE_TOO_LARGE: (R.MESSAGE_TOO_BIG, "Le message dépasse la taille maximale acceptée."),
    FROM_MISSING: (
        Reply(550, "5.6.0", "The message must have exactly one From: field"),
        "Le message doit avoir exactement un expéditeur (From:).",
    ),
    NO_RECIPIENT: (R.NO_VALID_RECIPIENTS, "Le message n'a aucun destinataire."),
}


def refused(reason: str) -> SubmissionRefused:
    return SubmissionRefused(reason, REFUSALS[reason][1])


def refusal_reply(error: SubmissionRefused) -> Reply:
    """The SMTP reply of a whole-message refusal."""
    return REFUSALS.get(error.reason, (R.SERVER_ERROR, ""))[0]


@dataclass(frozen=True, slots=True)
class EnvelopeRecipient:
    """A recipient with its DSN parameters (RFC 3461; SMTP submission gives them)."""

    address: str
    notify: tuple[str, ...] | None = None
    orcpt: str | None = None


def _result(address: str, reply: Reply, reason: str, text: str) -> RecipientResult:
    return RecipientResult(
        recipient=address,
        accepted=reply.positive,
        reason=reason,
        text=text,
        smtp_code=reply.code,
        enhanced_code=reply.enhanced,
        temporary=reply.temporary,
    )


@dataclass(frozen=True, slots=True)
class RecipientCheck:
    """One recipient's answer, and what it was decided on: the local verdict, or the decision
    for a remote recipient."""

    result: RecipientResult
    verdict: Verdict | None = None
    decided: Decided | None = None

    @classmethod
    def local(cls, verdict: Verdict) -> RecipientCheck:
        result = _result(verdict.address, verdict.reply, verdict.reason, verdict.text)
        return cls(result, verdict=verdict)

    @classmethod
    def remote(cls, address: str, decided: Decided) -> RecipientCheck:
        decision = decided.decision
        result = _result(address, decision_reply(decision), decision.reason.value, decision.text)
        return cls(result, decided=decided)


@dataclass
class _Planned:
    recipient: EnvelopeRecipient
    result: RecipientResult
    verdict: Verdict | None  # an accepted local recipient

    @property
    def report(self) -> RecipientReport:
        result = self.result
        diagnostic = f"{result.smtp_code} {result.enhanced_code} {result.reason}"
        return RecipientReport(
            result.recipient, FAILED, result.enhanced_code, diagnostic, orcpt=self.recipient.orcpt
        )


class SubmissionPipeline:
    def __init__(
        self,
        *,
        authenticator: Authenticator,
        facts: PolicyFacts,
        local: LocalRecipients,
        delivery: LocalDelivery,
        queue: OutboundQueue,
        reporter: Reporter,
        signer: DkimSigner | None,
        signing_domains: frozenset[str],
        hostname: str,
        message_size: int,
    ) -> None:
        self.authenticator = authenticator
        self.facts = facts
        self.local = local
        self.delivery = delivery
        self.queue = queue
        self.reporter = reporter
        self.signer = signer
        self.signing_domains = signing_domains
        self.hostname = hostname
        self.message_size = message_size

    # -- envelope checks (SMTP asks them at MAIL and RCPT) ------------------------------------

    async def check_sender(self, principal: Principal, sender: str) -> None:
        """Raise SubmissionRefused unless ``principal`` may use ``sender`` ("" is allowed: read
        receipts go from the null path; their From: is checked at DATA)."""
        if sender and not await self.authenticator.may_send_as(principal, sender):
            log.info("submission-sender-refused", user=principal.account.address, sender=sender)
            raise refused(SENDER_NOT_ALLOWED)

    async def actor(self, principal: Principal) -> Actor:
        return await self.facts.actor(principal.account, principal.acting_as)

    async def check_recipient(
        self,
        principal: Principal,
        sender: str,
        address: str,
        *,
        message: MessageTraits | None = None,
        actor: Actor | None = None,
    ) -> RecipientCheck:
        """The answer for one recipient (envelope moment without ``message``), with what was
        looked up (for :meth:`recheck` at the DATA moment)."""
        actor = actor or await self.actor(principal)
        if self.local.is_local(address):
            verdict = await self.local.check(sender, address, actor=actor, message=message)
            return RecipientCheck.local(verdict)
        decided = await self.facts.decide(sender, address, actor=actor, message=message)
        return RecipientCheck.remote(address, decided)

    def recheck(self, check: RecipientCheck, message: MessageTraits) -> RecipientCheck:
        """The DATA moment of a recipient checked at the envelope moment (no lookup)."""
        if check.verdict is not None:
            return RecipientCheck.local(self.local.recheck(check.verdict, message))
        if check.decided is not None:
            return RecipientCheck.remote(
                check.result.recipient, self.facts.with_message(check.decided, message)
            )
        return check

    async def audit_refusal(
        self, principal: Principal, sender: str, result: RecipientResult
    ) -> None:
        """Policy P8: a refused recipient is recorded (who, for whom, the reason; no content)."""
        await self.facts.store.audit.record(
            principal.account.address,
            "submit-refused",
            mailbox=principal.acting_as.address,
            acting_for=principal.acting_as.address if principal.acting_for_another else None,
            request=f"from <{sender}> to <{result.recipient}>",
            result=f"{result.smtp_code} {result.enhanced_code} {result.reason}",
        )

    # -- the pipeline -------------------------------------------------------------------------

    async def __call__(
        self, principal: Principal, mail_from: str, recipients: Sequence[str], raw: bytes
    ) -> SubmissionResult:
        """The ``pli.mailbox.submit.Submitter`` protocol (webmail, bulk sender)."""
        return await self.submit(
            principal, mail_from, [EnvelopeRecipient(address) for address in recipients], raw
        )

    async def submit(
        self,
        principal: Principal,
        sender: str,
        recipients: Sequence[EnvelopeRecipient],
        raw: bytes,
        *,
        envid: str | None = None,
        ret: str | None = None,
        trace: bytes = b"",
        smtputf8: bool = False,
        report_refusals: bool = False,
        received_from: str = "",
        checked: Mapping[str, RecipientCheck] | None = None,
    ) -> SubmissionResult:
        """Submit ``raw`` (see the module docstring). ``trace``: the Received: field of the
        front end; ``report_refusals``: failure DSNs for recipients refused now (SMTP, whose
        client was told 250 at RCPT; the webmail shows the results instead); ``checked``: the
        envelope-moment checks by address (SMTP's RCPT), decided again with the message."""
        if len(raw) > self.message_size:
            raise refused(MESSAGE_TOO_LARGE)
        if not recipients:
            raise refused(NO_RECIPIENT)
        await self.check_sender(principal, sender)
        await self._check_from(principal, raw)
        raw, message_id = self._complete(raw)
        traits = await read_traits(raw)
        actor = await self.actor(principal)
        planned = []
        for recipient in recipients:
            earlier = (checked or {}).get(recipient.address)
            if earlier is not None:
                check = self.recheck(earlier, traits)
            else:
                check = await self.check_recipient(
                    principal, sender, recipient.address, message=traits, actor=actor
                )
            accepted = (
                check.verdict if check.verdict is not None and check.verdict.accepted else None
            )
            planned.append(_Planned(recipient, check.result, accepted))
        results = tuple(p.result for p in planned)
        if any(p.result.accepted for p in planned):
            signed = trace + await self._sign(raw)
            await self._commit(
                principal,
                sender,
                planned,
                signed,
                envid,
                ret,
                smtputf8,
                report_refusals,
                received_from,
            )
        for p in planned:
            if not p.result.accepted:
                await self.audit_refusal(principal, sender, p.result)
            log.info(
                "submitted",
                user=principal.account.address,
                recipient=p.result.recipient,
                accepted=p.result.accepted,
                reason=p.result.reason,
            )
        return SubmissionResult(message_id.strip("<>"), results)

    async def _check_from(self, principal: Principal, raw: bytes) -> None:
        header = parse_header(raw)
        froms = header.fields.get("from", [])
        if len(froms) != 1:  # RFC 5322 §3.6: exactly one From:
            raise refused(FROM_MISSING)
        for field in ("from", "sender"):
            for value in header.fields.get(field, []):
                for address in parse_address_list(value) or []:
                    mailbox, host = address[2], address[3]
                    if host is None or mailbox is None:
                        continue  # group markers
                    if not await self.authenticator.may_send_as(principal, f"{mailbox}@{host}"):
                        log.info(
                            "submission-from-refused", user=principal.account.address, field=field
                        )
                        raise refused(FROM_NOT_ALLOWED)

    def _complete(self, raw: bytes) -> tuple[bytes, str]:
        """RFC 6409 §8.2-8.3: Message-ID and Date added when missing."""
        header = parse_header(raw)
        added = b""
        message_id = header.first("message-id")
        if not message_id:
            message_id = f"<{secrets.token_hex(16)}@{self.hostname}>"
            added += f"Message-ID: {message_id}\r\n".encode()
        if not header.first("date"):
            added += f"Date: {format_datetime(datetime.now(UTC))}\r\n".encode()
        return added + raw, message_id.strip()

    async def _sign(self, raw: bytes) -> bytes:
        if self.signer is None:
            return raw
        addresses = parse_address_list(parse_header(raw).first("from")) or []
        domains = [a[3].lower() for a in addresses if a[3]]
        if not domains or domains[0] not in self.signing_domains:
            return raw
        return await self.signer.sign_async(raw, domains[0])

    async def _commit(
        self,
        principal: Principal,
        sender: str,
        planned: list[_Planned],
        raw: bytes,
        envid: str | None,
        ret: str | None,
        smtputf8: bool,
        report_refusals: bool,
        received_from: str,
    ) -> None:
        local = [p for p in planned if p.result.accepted and p.verdict is not None]
        remote = [p for p in planned if p.result.accepted and p.verdict is None]
        original = OriginalEnvelope(sender, envid, ret, received_from, datetime.now(UTC))
        reports = [
            RecipientReport(p.result.recipient, DELIVERED, "2.0.0", orcpt=p.recipient.orcpt)
            for p in local
            if wants_report(DELIVERED, p.recipient.notify)
        ]
        failures = [
            p.report
            for p in planned
            if report_refusals
            and not p.result.accepted
            and wants_report(FAILED, p.recipient.notify)
        ]
        prepared: list[PreparedReport | None] = [
            await self.reporter.prepare(original, items, raw)
            for items in (reports, failures)
            if items
        ]
        queued_file = await self.queue.write_file(raw) if remote else None
        audit_actor = principal.account.address
        acting_for = principal.acting_as.address if principal.acting_for_another else None

        async def queue_remote(tx: Transaction) -> None:
            if queued_file is not None:
                await self.queue.add(
                    queued_file,
                    raw,
                    sender,
                    [
                        NewRecipient(p.recipient.address, p.recipient.notify, p.recipient.orcpt)
                        for p in remote
                    ],
                    origin="submission",
                    envid=envid,
                    ret=ret,
                    smtputf8=smtputf8,
                    received_from=received_from,
                    tx=tx,
                )
                for p in remote:
                    await self.queue.store.audit.record(
                        audit_actor,
                        "submit",
                        mailbox=principal.acting_as.address,
                        acting_for=acting_for,
                        request=f"to <{p.recipient.address}>",
                        result=f"queued {p.result.reason}",
                        tx=tx,
                    )
            for report in prepared:
                await self.reporter.add(report, tx)

        try:
            if local:
                await self.delivery.deliver(
                    DeliveryJob(
                        raw,
                        [p.verdict.copy() for p in local if p.verdict is not None],
                        actor=audit_actor,
                        action="submit",
                        sender=sender,
                        request=f"from <{sender}>",
                        acting_for=acting_for,
                        also=queue_remote,
                    )
                )
            else:
                async with self.queue.store.transaction() as tx:
                    await queue_remote(tx)
        except BaseException:
            if queued_file is not None:
                await self.queue.files.delete(queued_file)
            raise
        if remote or any(prepared):
            self.queue.wake()
