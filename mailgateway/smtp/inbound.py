"""The inbound MTA's decisions: mail from other MSSanté operators to our mailboxes.

- TLS first: MAIL before STARTTLS is ``530 5.7.0`` (RFC 3207 §4). After the handshake the client
  certificate is verified (chain, validity, purpose, revocation: ``TrustStore``), and at MAIL its
  DN must be listed in the whitelist for the MAIL FROM domain (``whitelist.enforce``; for the null
  reverse-path of a report, listed for any domain). Refusals, each audited with its reason:

  | case | reply |
  |---|---|
  | no STARTTLS | 530 5.7.0 |
  | no client certificate | 530 5.7.0 |
  | certificate refused (expired, revoked, unknown CA, wrong usage…) | 550 5.7.1 + reason |
  | revocation status unknown (``revocation_failure = "hard"``) | 451 4.7.0 (a CRL may come) |
  | no whitelist imported yet | 451 4.7.0 (the trust space is unknown, not refused) |
  | DN not listed for the MAIL FROM domain | 550 5.7.1 |

- RCPT: only our domains (``550 5.7.1`` relay denied), then the local recipient checks and the
  policy at the envelope moment (:class:`~pli.mailgateway.recipients.LocalRecipients`).
- DATA: DKIM verified and recorded in Authentication-Results (forged ones with our name removed)
  and the audit; a Received: field; the message as filed parsed once, for the store's cache and
  the policy, asked again with the message's traits ([FIN], X-MSS-MES, documents); delivery
  into the store (group commit); success DSNs when asked (NOTIFY=SUCCESS: the "accusé de
  réception"), failure DSNs for recipients refused only now.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import structlog

from pli.certs.refusals import NO_CERTIFICATE, REVOCATION_UNKNOWN, CertificateRefused
from pli.certs.verify import TrustStore
from pli.certs.whitelist import Whitelist, require_listed
from pli.mailbox.auth.sasl import Credentials
from pli.mailbox.policyfacts import read_traits
from pli.mailbox.store import Store, Transaction
from pli.policy.facts import domain_of

from ..delivery import DeliveryJob, LocalDelivery
from ..dkim import DkimVerifier, authentication_results, strip_forged_results
from ..dsn import DELIVERED, FAILED, OriginalEnvelope, RecipientReport, wants_report
from ..recipients import LocalRecipients, Verdict
from ..reports import PreparedReport, Reporter
from . import replies as R
from .hooks import Connection, MailTransaction, Recipient
from .params import MailParams
from .replies import Reply, SmtpError
from .trace import received_header

log = structlog.get_logger(__name__)


def _peer_name(connection: Connection) -> str:
    peer = connection.client_certificate
    return peer.identity.dn if peer is not None else f"smtp:{connection.peer_host}"


class InboundHandler:
    def __init__(
        self,
        *,
        store: Store,
        trust: TrustStore,
        whitelist: Callable[[], Whitelist | None],
        enforce_whitelist: bool,
        local: LocalRecipients,
        delivery: LocalDelivery,
        reporter: Reporter,
        verifier: DkimVerifier | None,
        hostname: str,
    ) -> None:
        self.store = store
        self.trust = trust
        self.whitelist = whitelist
        self.enforce_whitelist = enforce_whitelist
        self.local = local
        self.delivery = delivery
        self.reporter = reporter
        self.verifier = verifier
        self.hostname = hostname

    # -- TLS and trust ------------------------------------------------------------------------

    def auth_mechanisms(self, connection: Connection) -> list[str]:
        return []

    def auth_required(self) -> bool:
        return False

    async def authenticate(self, connection: Connection, credentials: Credentials) -> object:
        raise SmtpError(R.AUTH_NOT_AVAILABLE)

    async def tls_established(self, connection: Connection) -> None:
        try:
            connection.client_certificate = await self.trust.verify_tls_peer(
                connection.tls, "client"
            )
        except CertificateRefused as refused:
            connection.certificate_refusal = refused
            log.info(
                "smtp-client-certificate-refused",
                connection=connection.id,
                reason=refused.reason,
                detail=refused.text,
            )

    async def _refuse(
        self, connection: Connection, reply: Reply, request: str, reason: str
    ) -> SmtpError:
        await self.store.audit.record(
            _peer_name(connection),
            "smtp-refuse",
            request=f"{request} from [{connection.peer_host}]",
            result=f"{reply.code} {reply.enhanced} {reason}",
        )
        log.info("smtp-refused", connection=connection.id, reply=reply.line, reason=reason)
        return SmtpError(reply)

    async def mail(self, connection: Connection, sender: str, params: MailParams) -> Reply:
        request = f"MAIL FROM:<{sender}>"
        if not connection.tls_active:
            raise await self._refuse(connection, R.TLS_REQUIRED, request, "no-tls")
        refusal = connection.certificate_refusal
        if refusal is not None:
            if refusal.reason == NO_CERTIFICATE:
                reply = R.CLIENT_CERTIFICATE_REQUIRED
            elif refusal.reason == REVOCATION_UNKNOWN:
                reply = Reply(451, "4.7.0", f"{refusal.public_text}, please try again later")
            else:
                reply = Reply(550, "5.7.1", refusal.public_text)
            raise await self._refuse(connection, reply, request, refusal.reason)
        peer = connection.client_certificate
        if peer is None:
            raise await self._refuse(
                connection, R.CLIENT_CERTIFICATE_REQUIRED, request, NO_CERTIFICATE
            )
        if self.enforce_whitelist:
            whitelist = self.whitelist()
            if whitelist is None:
                raise await self._refuse(connection, R.TRUST_UNAVAILABLE, request, "no-whitelist")
            try:
                if sender:
                    require_listed(whitelist, peer.identity, domain_of(sender))
                elif not whitelist.domains_for(peer.identity.dn_key):
                    raise CertificateRefused(
                        "dn-not-whitelisted", f"{peer.identity.dn} serves no domain"
                    )
            except CertificateRefused as refused:
                reply = Reply(550, "5.7.1", refused.public_text)
                raise await self._refuse(connection, reply, request, refused.reason) from None
        return R.SENDER_OK

    # -- recipients and data ------------------------------------------------------------------

    async def rcpt(
        self, connection: Connection, transaction: MailTransaction, recipient: Recipient
    ) -> Reply:
        if not self.local.is_local(recipient.address):
            return R.RELAY_DENIED
        verdict = await self.local.check(transaction.sender, recipient.address)
        recipient.decision = verdict
        if not verdict.reply.positive:
            await self._audit_refusal(connection, transaction, verdict)
        return verdict.reply

    async def _audit_refusal(
        self, connection: Connection, transaction: MailTransaction, verdict: Verdict
    ) -> None:
        reason = verdict.decided.decision.reason.value if verdict.decided else "routing"
        await self.store.audit.record(
            _peer_name(connection),
            "smtp-refuse",
            mailbox=verdict.address,
            request=f"from <{transaction.sender}> to <{verdict.address}> id {transaction.id}",
            result=f"{verdict.reply.code} {verdict.reply.enhanced} {reason}",
        )

    async def data(
        self, connection: Connection, transaction: MailTransaction, message: bytes
    ) -> Reply:
        # The message as it will be filed, parsed once: for the policy's traits and for the
        # store's cache (so DKIM is verified before the DATA decisions, not only when one
        # recipient is still accepted: a refusal at DATA is rare).
        results = [await self.verifier.verify(message)] if self.verifier is not None else []
        final = received_header(connection, self.hostname, queue_id=transaction.id)
        if results:
            final += authentication_results(self.hostname, results[0])
        final += strip_forged_results(message, self.hostname)
        dkim_summary = (
            " ".join(f"dkim={r.result}" + (f"/{r.domain}" if r.domain else "") for r in results[0])
            if results
            else ""
        )
        job = DeliveryJob(
            final,
            (),
            actor=_peer_name(connection),
            action="smtp-receive",
            sender=transaction.sender,
            request=" ".join(
                (
                    f"from <{transaction.sender}> [{connection.peer_host}]",
                    f"id {transaction.id}",
                    dkim_summary,
                )
            ).strip(),
        )
        job.parsed = await self.store.messages.parse(job.stored)
        traits = await read_traits(job.stored, job.parsed)
        verdicts = []
        for recipient in transaction.recipients:
            verdict = self.local.recheck(recipient.decision, traits)  # the RCPT facts
            verdicts.append((recipient, verdict))
            if not verdict.reply.positive:
                await self._audit_refusal(connection, transaction, verdict)
        accepted = [(r, v) for r, v in verdicts if v.accepted]
        if not accepted:
            replies = [v.reply for _, v in verdicts]
            return next((r for r in replies if r.temporary), replies[0])
        original = OriginalEnvelope(
            transaction.sender,
            transaction.params.envid,
            transaction.params.ret,
            f"{connection.helo} ([{connection.peer_host}])",
            datetime.now(UTC),
        )
        success = [
            RecipientReport(v.address, DELIVERED, "2.0.0", orcpt=r.params.orcpt)
            for r, v in accepted
            if wants_report(DELIVERED, r.params.notify)
        ]
        failures = [
            RecipientReport(v.address, FAILED, v.reply.enhanced, v.reply.line, orcpt=r.params.orcpt)
            for r, v in verdicts
            if not v.reply.positive and wants_report(FAILED, r.params.notify)
        ]
        prepared: list[PreparedReport | None] = [
            await self.reporter.prepare(original, items, final)
            for items in (success, failures)
            if items
        ]

        async def reports(tx: Transaction) -> None:
            for report in prepared:
                await self.reporter.add(report, tx)

        job.copies = [v.copy() for _, v in accepted]
        job.also = reports if any(prepared) else None
        await self.delivery.deliver(job)
        if any(prepared):
            self.reporter.queue.wake()
        return Reply(250, "2.0.0", f"OK, delivered as {transaction.id}")
