"""The submission listeners' decisions (587 STARTTLS, 465 implicit TLS): AUTH only over TLS, by
the means each mailbox type accepts (pli.mailbox.auth.service: password + one-time code,
client certificate with EXTERNAL, OAUTHBEARER bearer token), then the submission pipeline.

- MAIL before AUTH: ``530 5.7.0``; AUTH before TLS: ``538 5.7.11``; a failed AUTH: ``535 5.7.8``
  whatever the cause (no account probing); ``454 4.7.0`` when the store cannot answer.
- MAIL FROM must be owned by the authenticated identity (``553 5.7.1``), RCPT asks the policy at
  the envelope moment, DATA runs the pipeline (From: owned, policy with the message, DKIM,
  delivery and queue) and answers 250 once committed.
"""

from __future__ import annotations

from pli.certs.refusals import CertificateRefused
from pli.certs.verify import TrustStore
from pli.mailbox.auth.sasl import MECHANISMS, Credentials, ExternalCredentials
from pli.mailbox.auth.service import AuthenticationFailed, Authenticator, Principal
from pli.mailbox.policyfacts import LOOKUP_FAILURES
from pli.mailbox.submit import RecipientResult, SubmissionRefused
from pli.policy.reasons import ascii_text

from ..submission import EnvelopeRecipient, SubmissionPipeline, refusal_reply
from . import replies as R
from .hooks import Connection, MailTransaction, Recipient
from .params import MailParams
from .replies import Reply, SmtpError
from .trace import received_header


def _reply(error: SubmissionRefused) -> SmtpError:
    return SmtpError(refusal_reply(error))


class SubmissionHandler:
    def __init__(
        self,
        *,
        authenticator: Authenticator,
        trust: TrustStore,
        pipeline: SubmissionPipeline,
        hostname: str,
        service: str = "submission",
    ) -> None:
        self.authenticator = authenticator
        self.trust = trust
        self.pipeline = pipeline
        self.hostname = hostname
        self.service = service

    def auth_mechanisms(self, connection: Connection) -> list[str]:
        mechanisms: list[str] = list(MECHANISMS)
        if connection.client_certificate is None:
            mechanisms.remove("EXTERNAL")
        return mechanisms

    def auth_required(self) -> bool:
        return True

    async def tls_established(self, connection: Connection) -> None:
        if connection.tls is None or not connection.tls.getpeercert(binary_form=True):
            return  # no client certificate: EXTERNAL is simply not offered
        try:
            connection.client_certificate = await self.trust.verify_tls_peer(
                connection.tls, "client"
            )
        except CertificateRefused as refused:
            connection.certificate_refusal = refused

    async def authenticate(self, connection: Connection, credentials: Credentials) -> Principal:
        peer = connection.client_certificate
        if isinstance(credentials, ExternalCredentials) and peer is None:
            raise SmtpError(R.AUTH_FAILED)
        try:
            return await self.authenticator.authenticate(
                credentials,
                peer=peer.identity if peer is not None else None,
                service=self.service,
                remote=connection.peer_host,
            )
        except AuthenticationFailed:
            raise SmtpError(R.AUTH_FAILED) from None
        except LOOKUP_FAILURES:
            raise SmtpError(R.AUTH_TEMPORARY) from None

    async def mail(self, connection: Connection, sender: str, params: MailParams) -> Reply:
        try:
            await self.pipeline.check_sender(connection.principal, sender)
        except SubmissionRefused as error:
            raise _reply(error) from None
        return R.SENDER_OK

    async def rcpt(
        self, connection: Connection, transaction: MailTransaction, recipient: Recipient
    ) -> Reply:
        check = await self.pipeline.check_recipient(
            connection.principal, transaction.sender, recipient.address
        )
        recipient.decision = check
        result = check.result
        if not result.accepted:
            await self.pipeline.audit_refusal(connection.principal, transaction.sender, result)
        return _wire(result)

    async def data(
        self, connection: Connection, transaction: MailTransaction, message: bytes
    ) -> Reply:
        recipients = [
            EnvelopeRecipient(r.address, r.params.notify, r.params.orcpt)
            for r in transaction.recipients
        ]
        try:
            result = await self.pipeline.submit(
                connection.principal,
                transaction.sender,
                recipients,
                message,
                envid=transaction.params.envid,
                ret=transaction.params.ret,
                trace=received_header(connection, self.hostname, queue_id=transaction.id),
                smtputf8=transaction.params.smtputf8,
                report_refusals=True,
                received_from=f"{connection.helo} ([{connection.peer_host}])",
                checked={r.address: r.decision for r in transaction.recipients},
            )
        except SubmissionRefused as error:
            raise _reply(error) from None
        if not result.accepted:
            first = next((r for r in result.refused if r.temporary), result.refused[0])
            return _wire(first)
        return Reply(250, "2.0.0", f"OK, submitted as {transaction.id}")


def _wire(result: RecipientResult) -> Reply:
    """A recipient's result as a reply line (the policy's French text made ASCII, RFC 5321
    §4.2)."""
    return Reply(result.smtp_code, result.enhanced_code, ascii_text(result.text))
