"""`pli serve`: every enabled listener of the configuration in one process, one event loop.

Start-up binds every listener or none: if one fails (port taken, material missing), those already
started are stopped and the error is reported in one line. SIGTERM or SIGINT stops accepting at
once, then lets in-flight transactions finish within ``server.shutdown_grace``; a second signal
cuts the grace short.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import AsyncIterator, Callable

import structlog

from pli.certs.refresh import WhitelistRefresher
from pli.certs.tls import TlsMaterialError, server_context
from pli.config.schema import Listener, Settings
from pli.docstore.api import create_docstore_app
from pli.docstore.config import DocstoreConfig
from pli.docstore.store import DocumentStore
from pli.mailbox.filing import FilingUnavailable, FilingWorker
from pli.mailbox.imap.service import ImapService, ImapUnavailable
from pli.mailbox.imap.service import session_services as imap_session_services
from pli.mailbox.notify.service import Notifier
from pli.mailbox.store import Store
from pli.mailbox.store.sweep import StoreSweeper
from pli.mailbox.web.app import create_webmail_app
from pli.mailbox.web.context import webmail_deps

from .admin import create_admin_app
from .asgi import AsgiService, bind_tcp
from .bulk.service import bulk_services
from .gateway import Gateway, GatewayUnavailable
from .services import Runtime, Service, ServiceFactory, ServiceUnavailable
from .smtp.service import SmtpService

log = structlog.get_logger(__name__)


def _admin_service(name: str, listener: Listener, runtime: Runtime) -> Service:
    return AsgiService(name, listener, create_admin_app(runtime))


class StartupError(Exception):
    """A listener could not start; the message names it and says why."""


class DocstoreService:
    """The reference document store: its database opened before its listener binds, closed
    after the listener has drained."""

    def __init__(self, name: str, listener: Listener, runtime: Runtime) -> None:
        config = DocstoreConfig.from_settings(runtime.settings)
        if not config.token:
            raise ServiceUnavailable(
                "docstore.token is empty: set the bearer secret (pli init writes one) or "
                "disable the listener"
            )
        if listener.tls != "none":
            raise ServiceUnavailable(
                "the document store serves plain HTTP only: bind it to a loopback or private "
                'address, or put a TLS proxy in front (tls = "none")'
            )
        self.name = name
        self.store = DocumentStore(config)
        self._http = AsgiService(name, listener, create_docstore_app(self.store))
        runtime.health_checks[name] = self.store.health

    async def start(self) -> None:
        try:
            await self.store.open()
        except Exception as error:
            raise StartupError(
                f"listener {self.name!r}: the document store cannot open its database "
                f"({type(error).__name__}: {error})"
            ) from None
        try:
            await self._http.start()
        except BaseException:
            await self.store.close()
            raise

    def addresses(self) -> list[tuple[str, int]]:
        return self._http.addresses()

    async def stop(self, grace: float) -> None:
        try:
            await self._http.stop(grace)
        finally:
            await self.store.close()


def _smtp_service(name: str, listener: Listener, runtime: Runtime) -> Service:
    """The inbound MTA (protocol smtp) or a submission listener, from the shared gateway."""
    if runtime.gateway is None:
        raise ServiceUnavailable("the SMTP gateway is not available in this process")
    try:
        service = runtime.gateway.listener(name, listener)
    except GatewayUnavailable as error:
        raise ServiceUnavailable(str(error)) from None
    return SmtpService(name, listener, service, runtime.settings)


#: Protocol of a listener → the factory of its service. Subsystems add theirs here.
def _imap_service(name: str, listener: Listener, runtime: Runtime) -> Service:
    """An IMAP listener; the sessions of every IMAP listener share one SessionServices (and the
    SMTP gateway's authenticator and trust store when it runs: one lockout count)."""
    if runtime.store is None:
        raise ServiceUnavailable("the mail store is not open")
    gateway = runtime.gateway
    try:
        if runtime.imap is None:
            runtime.imap = imap_session_services(
                runtime.settings,
                runtime.store,
                authenticator=gateway.authenticator if gateway is not None else None,
                trust=gateway.trust if gateway is not None else None,
            )
        return ImapService(name, listener, runtime.settings, runtime.imap, bind=bind_tcp)
    except ImapUnavailable as error:
        raise ServiceUnavailable(str(error)) from None


def _webmail_service(name: str, listener: Listener, runtime: Runtime) -> Service:
    """The citizen webmail (docs/webmail.md): HTTPS with our server certificate, or plain HTTP
    behind a TLS proxy; it submits through the gateway's pipeline."""
    if runtime.store is None or runtime.gateway is None:
        raise ServiceUnavailable("the webmail needs the mail store and the SMTP gateway")
    if listener.tls == "starttls":
        raise ServiceUnavailable('the webmail speaks HTTPS (tls = "implicit") or HTTP ("none")')
    gateway = runtime.gateway
    try:
        deps = webmail_deps(runtime.settings, runtime.store, gateway.facts, gateway.pipeline)
        context = server_context(runtime.settings.tls) if listener.tls == "implicit" else None
        return AsgiService(name, listener, create_webmail_app(deps), ssl_context=context)
    except (OSError, ValueError, TlsMaterialError) as error:
        raise ServiceUnavailable(f"webmail: {error}") from None


PROTOCOLS: dict[str, ServiceFactory] = {
    "admin": _admin_service,
    "docstore": DocstoreService,
    "smtp": _smtp_service,
    "submission": _smtp_service,
    "imap": _imap_service,
    "webmail": _webmail_service,
}
#: Listeners that need the SMTP gateway (the webmail submits through its pipeline).
GATEWAY_PROTOCOLS = frozenset({"smtp", "submission", "webmail"})


@contextlib.asynccontextmanager
async def open_runtime(settings: Settings) -> AsyncIterator[Runtime]:
    """What the services of this process share, opened before they start, closed after."""
    try:  # the mail store: database migrated, message files, change feed
        store = await Store.open(settings)
    except Exception as error:
        raise StartupError(
            f"mail store cannot be opened: {type(error).__name__}: {error}"
        ) from None
    runtime = Runtime(settings=settings, store=store)
    runtime.health_checks["store"] = store.health
    try:
        if any(lst.protocol in GATEWAY_PROTOCOLS for lst in settings.enabled_listeners().values()):
            try:  # the SMTP gateway: trust material, DKIM key, queue, group-commit writer
                runtime.gateway = Gateway.build(settings, store)
            except GatewayUnavailable as error:
                raise StartupError(f"SMTP gateway cannot start: {error}") from None
            runtime.gateway.start()
        yield runtime
    finally:
        if runtime.gateway is not None:
            await runtime.gateway.close()
        await store.close()


def build_services(runtime: Runtime) -> list[Service]:
    services = []
    for name, listener in runtime.settings.enabled_listeners().items():
        factory = PROTOCOLS.get(listener.protocol)
        if factory is None:
            raise StartupError(
                f"listener {name!r}: protocol {listener.protocol!r} is not available in this build"
            )
        try:
            services.append(factory(name, listener, runtime))
        except ServiceUnavailable as error:
            raise StartupError(f"listener {name!r}: {error}") from None
    if runtime.gateway is not None:  # the outbound queue: delivery, retries, reports
        try:
            services.append(runtime.gateway.queue_runner())
        except GatewayUnavailable as error:
            raise StartupError(f"queue runner: {error}") from None
    services += bulk_services(runtime)  # campaigns, and their queued messages followed
    if runtime.store is not None and Notifier.wanted(runtime.settings):  # new-mail e-mails
        services.append(Notifier.from_settings(runtime.store, runtime.settings))
    if runtime.store is not None and FilingWorker.wanted(runtime.settings):  # documents filed
        try:
            filing = FilingWorker(runtime.store, runtime.settings)
        except FilingUnavailable as error:
            raise StartupError(f"filing: {error}") from None
        runtime.health_checks["filing"] = filing.health
        services.append(filing)
    if runtime.store is not None and runtime.settings.storage.sweep_interval > 0:
        services.append(StoreSweeper(runtime.store, runtime.settings.storage.sweep_interval))
    if runtime.settings.whitelist.refresh_interval > 0:  # ANS's whitelist kept current
        refresher = WhitelistRefresher.from_settings(runtime.settings)
        runtime.health_checks["whitelist"] = refresher.health
        services.append(refresher)
    return services


async def start_all(services: list[Service], settings: Settings) -> None:
    started: list[Service] = []
    for service in services:
        listener = settings.listeners.get(service.name)
        try:
            await service.start()
        except OSError as error:
            await stop_all(started, grace=0)
            where = f"{listener.address}:{listener.port}" if listener else ""
            raise StartupError(
                f"listener {service.name!r} cannot bind {where}: {error.strerror or error}"
            ) from None
        except Exception:
            await stop_all(started, grace=0)
            raise
        started.append(service)
        for host, port in service.addresses():
            log.info(
                "listening",
                service=service.name,
                protocol=listener.protocol if listener else "job",
                address=f"[{host}]:{port}" if ":" in host else f"{host}:{port}",
                tls=listener.tls if listener else "none",
            )


async def stop_all(services: list[Service], grace: float) -> None:
    """Stop every service concurrently: all stop accepting at once, then drain."""
    results = await asyncio.gather(
        *(service.stop(grace) for service in reversed(services)), return_exceptions=True
    )
    for service, result in zip(reversed(services), results, strict=True):
        if isinstance(result, BaseException):
            log.error("stop-failed", service=service.name, error=repr(result))


async def serve(
    settings: Settings, *, on_ready: Callable[[list[Service]], None] | None = None
) -> None:
    """Run until SIGTERM/SIGINT; raise StartupError if the listeners cannot all start."""
    loop = asyncio.get_running_loop()
    stop_requested = asyncio.Event()
    signals = 0

    def request_stop(signum: int) -> None:
        nonlocal signals
        signals += 1
        log.info("stop-requested", signal=signal.Signals(signum).name, count=signals)
        stop_requested.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, request_stop, signum)
    try:
        async with open_runtime(settings) as runtime:
            services = build_services(runtime)
            await start_all(services, settings)
            log.info("ready", services=len(services), config=str(settings.source or "defaults"))
            if on_ready is not None:
                on_ready(services)
            await stop_requested.wait()
            grace = settings.server.shutdown_grace
            log.info("stopping", grace_seconds=grace)
            drain = asyncio.create_task(stop_all(services, grace))
            while not drain.done():
                stop_requested.clear()
                waiter = asyncio.create_task(stop_requested.wait())
                await asyncio.wait({drain, waiter}, return_when=asyncio.FIRST_COMPLETED)
                waiter.cancel()
                if not drain.done():  # a second signal: no more grace
                    log.warning("stop-forced")
                    await stop_all(services, grace=0)
            log.info("stopped")
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
