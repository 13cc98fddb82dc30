"""The IMAP listener of ``pli serve``: what a listener ``protocol = "imap"`` runs.

:func:`session_services` builds, once per process, what every IMAP session shares (the store,
the authenticator, the trust store for client certificates, the limits, the render cache, the
per-account session count); :class:`ImapService` is one listener (``tls = "starttls"``, the
143 kind, or ``"implicit"``, the 993 kind) with the start/addresses/stop life cycle of
``mailgateway/services.py``. IMAP without TLS is refused: passwords and health data never cross
the network in clear (mssante.md §2, product rule "IMAP (143 STARTTLS, 993) require TLS").

Must not: import ``pli.mailgateway`` (the dependency goes the other way: ``serve.py`` passes
the socket binder and, when the SMTP gateway runs, its authenticator and trust store, so that
lockouts count across SMTP and IMAP).
"""

from __future__ import annotations

import socket
from collections.abc import Callable

from pli.certs.tls import TlsMaterialError, server_context
from pli.certs.verify import TrustError, TrustStore
from pli.config.schema import Listener, Settings
from pli.mailbox.auth.oauth import token_verifier_from_settings
from pli.mailbox.auth.service import Authenticator
from pli.mailbox.store import Store

from .limits import Limits
from .server import ImapServer
from .session import SessionRegistry, SessionServices

Binder = Callable[[str, int], socket.socket]


class ImapUnavailable(Exception):
    """The listener cannot run as configured; the message says why and what to change."""


def session_services(
    settings: Settings,
    store: Store,
    *,
    authenticator: Authenticator | None = None,
    trust: TrustStore | None = None,
) -> SessionServices:
    """What the IMAP sessions of this process share."""
    if trust is None:
        try:
            trust = TrustStore.load(settings.tls)
        except TrustError as error:
            raise ImapUnavailable(str(error)) from None
    verifier = None
    if authenticator is None:
        try:
            verifier = token_verifier_from_settings(settings.auth)
        except ValueError as error:
            raise ImapUnavailable(str(error)) from None
        authenticator = Authenticator(
            store, settings.auth, citizen_domain=settings.domains.citizen, token_verifier=verifier
        )
    limits = Limits.from_settings(settings)
    return SessionServices(
        store=store,
        authenticator=authenticator,
        limits=limits,
        trust=trust,
        bearer_enabled=bool(settings.auth.oauth_issuer),
        hostname=settings.server.hostname,
        registry=SessionRegistry(limits.sessions_per_account),
    )


class ImapService:
    def __init__(
        self,
        name: str,
        listener: Listener,
        settings: Settings,
        services: SessionServices,
        *,
        bind: Binder,
    ) -> None:
        if listener.tls == "none":
            raise ImapUnavailable(
                'IMAP needs TLS: set tls = "starttls" (port 143) or "implicit" (port 993)'
            )
        try:
            context = server_context(settings.tls, client_cert="optional")
        except TlsMaterialError as error:
            raise ImapUnavailable(str(error)) from None
        self.name = name
        self.listener = listener
        self._bind = bind
        self.server = ImapServer(
            services, tls_context=context, implicit_tls=listener.tls == "implicit"
        )

    async def start(self) -> None:
        sock = self._bind(self.listener.address, self.listener.port)
        try:
            await self.server.start(sock)
        except BaseException:
            sock.close()
            raise

    def addresses(self) -> list[tuple[str, int]]:
        return self.server.addresses()

    async def stop(self, grace: float) -> None:
        await self.server.stop(grace)
