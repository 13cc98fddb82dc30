"""The SMTP gateway of one `pli serve` process: what the SMTP listeners, the queue runner and
the submission pipeline share, built once (``open_runtime``) from the settings and the store.

::

    gateway = Gateway.build(settings, store)     # raises GatewayUnavailable (names the file)
    gateway.start()                              # the group-commit writer
    handler = gateway.inbound_handler()          # or gateway.submission_handler()
    runner = gateway.queue_runner()              # a service
    await gateway.close()

Tests and benchmarks pass their own DNS (``resolver``, ``dkim_dns``) and clock.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import structlog

from pli.certs.tls import TlsMaterialError, client_context, server_context
from pli.certs.verify import TrustError, TrustStore
from pli.certs.whitelist import Whitelist
from pli.certs.whitelist_store import WhitelistStore
from pli.config.schema import Listener, Settings
from pli.mailbox.auth.oauth import token_verifier_from_settings
from pli.mailbox.auth.service import Authenticator
from pli.mailbox.policyfacts import FactsConfig, PolicyFacts
from pli.mailbox.store import Store

from .delivery import LocalDelivery
from .dkim import DkimError, DkimSigner, DkimVerifier, DnsFunction
from .queue.entries import OutboundQueue
from .queue.runner import QueueRunner
from .recipients import LocalRecipients
from .reports import Reporter
from .routing import Resolver, Router
from .smtp.inbound import InboundHandler
from .smtp.limits import SmtpLimits
from .smtp.server import SmtpListener
from .smtp.submission_handler import SubmissionHandler
from .submission import SubmissionPipeline

log = structlog.get_logger(__name__)


class GatewayUnavailable(Exception):
    """What the gateway needs is missing or unusable; the message says which file and why."""


@dataclass
class Gateway:
    settings: Settings
    store: Store
    trust: TrustStore
    whitelists: WhitelistStore
    facts: PolicyFacts
    local: LocalRecipients
    delivery: LocalDelivery
    queue: OutboundQueue
    reporter: Reporter
    router: Router
    signer: DkimSigner | None
    verifier: DkimVerifier | None
    authenticator: Authenticator
    pipeline: SubmissionPipeline
    clock: Callable[[], datetime]

    @classmethod
    def build(
        cls,
        settings: Settings,
        store: Store,
        *,
        resolver: Resolver | None = None,
        dkim_dns: DnsFunction | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        fsync: bool = True,
    ) -> Gateway:
        try:
            trust = TrustStore.load(settings.tls)
        except TrustError as error:
            raise GatewayUnavailable(str(error)) from None
        whitelists = WhitelistStore.from_settings(settings.whitelist)
        facts = PolicyFacts(store, FactsConfig.from_settings(settings), whitelists.current)
        domains = settings.domains
        postmaster = domains.professional[0] if domains.professional else ""
        local = LocalRecipients(store, facts, postmaster_domain=postmaster)
        delivery = LocalDelivery(
            store,
            facts,
            window=settings.smtp.group_commit_window,
            batch_size=settings.smtp.group_commit_size,
        )
        queue = OutboundQueue(
            store,
            settings.server.data_dir / settings.queue.directory,
            max_lifetime=settings.queue.max_lifetime,
            fsync=fsync,
        )
        reporter = Reporter(queue, settings.server.hostname)
        signer = None
        verifier = None
        if settings.dkim.enabled:
            try:
                signer = DkimSigner.from_settings(settings.dkim)
            except DkimError as error:
                raise GatewayUnavailable(str(error)) from None
            verifier = DkimVerifier(dkim_dns, timeout=settings.dkim.dns_timeout)
        try:
            tokens = token_verifier_from_settings(settings.auth)
        except ValueError as error:
            raise GatewayUnavailable(str(error)) from None
        authenticator = Authenticator(
            store, settings.auth, citizen_domain=domains.citizen, token_verifier=tokens
        )
        signing = frozenset(domains.professional) | (
            {domains.citizen} if domains.citizen_enabled else set()
        )
        pipeline = SubmissionPipeline(
            authenticator=authenticator,
            facts=facts,
            local=local,
            delivery=delivery,
            queue=queue,
            reporter=reporter,
            signer=signer,
            signing_domains=frozenset(signing),
            hostname=settings.server.hostname,
            message_size=settings.limits.message_size,
        )
        return cls(
            settings,
            store,
            trust,
            whitelists,
            facts,
            local,
            delivery,
            queue,
            reporter,
            Router(settings.queue.routes, resolver),
            signer,
            verifier,
            authenticator,
            pipeline,
            clock,
        )

    def whitelist(self) -> Whitelist | None:
        return self.whitelists.current()

    def start(self) -> None:
        self.delivery.start()

    async def close(self) -> None:
        await self.delivery.close()

    # -- what the services use ----------------------------------------------------------------

    def inbound_handler(self) -> InboundHandler:
        return InboundHandler(
            store=self.store,
            trust=self.trust,
            whitelist=self.whitelist,
            enforce_whitelist=self.settings.whitelist.enforce,
            local=self.local,
            delivery=self.delivery,
            reporter=self.reporter,
            verifier=self.verifier,
            hostname=self.settings.server.hostname,
        )

    def submission_handler(self) -> SubmissionHandler:
        return SubmissionHandler(
            authenticator=self.authenticator,
            trust=self.trust,
            pipeline=self.pipeline,
            hostname=self.settings.server.hostname,
        )

    def listener(
        self, name: str, listener: Listener, handoff: socket.socket | None = None
    ) -> SmtpListener:
        """The service of an SMTP listener (protocol ``smtp`` or ``submission``)."""
        handler = (
            self.inbound_handler() if listener.protocol == "smtp" else self.submission_handler()
        )
        # The inbound MTA asks for a client certificate (refused at MAIL with a reply, rather
        # than a TLS alert); submission accepts one for SASL EXTERNAL.
        try:
            context = (
                server_context(self.settings.tls, client_cert="optional")
                if listener.tls != "none"
                else None
            )
        except TlsMaterialError as error:
            raise GatewayUnavailable(str(error)) from None
        return SmtpListener(
            name,
            listener,
            handler,
            hostname=self.settings.server.hostname,
            limits=SmtpLimits.from_settings(self.settings),
            tls_context=context,
            handoff=handoff,
        )

    def queue_runner(self) -> QueueRunner:
        try:
            tls = client_context(self.settings.tls, with_client_cert=True)
        except TlsMaterialError as error:
            raise GatewayUnavailable(str(error)) from None
        return QueueRunner(
            self.queue,
            self.settings.queue,
            hostname=self.settings.server.hostname,
            router=self.router,
            trust=self.trust,
            whitelist=self.whitelist,
            tls_context=tls,
            local=self.local,
            delivery=self.delivery,
            reporter=self.reporter,
            clock=self.clock,
        )
