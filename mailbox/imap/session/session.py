"""One IMAP session: executes the core's typed commands for one client against the store.

:class:`ImapSession` is driven by the asyncio adapter (:mod:`pli.mailbox.imap.server`), or by a
test over in-memory streams: it receives each event the core produces (a command, ``IdleDone``,
``SaslResponse``) and writes the responses to its :class:`~.state.Output`. The dispatcher here
turns handler outcomes into the tagged response at one boundary (architecture.md § Errors):

- :class:`~.state.CommandFailed` → its NO/BAD; a store user error → NO with its text; an
  invalid mailbox name → NO; anything else → ``NO [SERVERBUG]`` and the traceback logged (the
  peer never sees an exception's text);
- before the tagged response, while a mailbox is selected, the untagged updates other sessions
  caused are sent where RFC 3501 §7.4.1 allows (:func:`~.selection.synchronise`);
- the selected mailbox deleted under the session ends it with ``* BYE``.

IDLE (RFC 2177) is two calls for the adapter, which races them with reading the client:
:meth:`ImapSession.idle_wait` (cancellable) and :meth:`ImapSession.idle_push` (not).

Must not: read sockets, run TLS or sleep (the adapter does).
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Awaitable, Callable
from typing import Any, Final

import structlog

from pli import __version__
from pli.mailbox.store import StoreUserError

from .. import commands as c
from .. import response
from ..connection import ImapConnection
from ..errors import MailboxNameError
from ..events import Event, IdleDone, SaslResponse
from ..states import may_send_expunge
from . import auth, changes, fetching, mailboxes, ordering, searching, selection
from .state import CommandFailed, Output, Reply, SessionServices, SessionState, bad

log = structlog.get_logger(__name__)

#: While IDLE, the mailbox is checked at least this often even if the change feed says nothing
#: (the feed is a hint: a lost PostgreSQL LISTEN connection must not leave a client unaware).
IDLE_RECHECK_SECONDS: Final = 30.0

#: RFC 2971: what the server says about itself in ID.
SERVER_ID: Final = {"name": "pli", "version": __version__, "vendor": "pli"}

Handler = Callable[[SessionState, Any], Awaitable[Reply | None]]


async def _capability(state: SessionState, command: c.Capability) -> Reply:
    raise AssertionError("handled by the session")  # pragma: no cover


async def _id(state: SessionState, command: c.Id) -> Reply:
    state.out.write(response.id_response(SERVER_ID))
    return Reply("OK", "ID completed")


async def _enable(state: SessionState, command: c.Enable) -> Reply:
    enabled = []
    if "CONDSTORE" in command.capabilities and not state.condstore:
        state.condstore = True
        enabled.append("CONDSTORE")
    state.out.write(response.enabled_response(enabled))
    return Reply("OK", "ENABLE completed")


async def _noop(state: SessionState, command: c.Noop | c.Check) -> Reply:
    return Reply("OK", f"{command.name} completed")


_HANDLERS: Final[dict[type, Handler]] = {
    c.Noop: _noop,
    c.Check: _noop,
    c.Id: _id,
    c.Enable: _enable,
    c.Login: auth.login,
    c.Authenticate: auth.authenticate,
    c.Namespace: mailboxes.namespace,
    c.List: mailboxes.list_mailboxes,
    c.Status: mailboxes.status,
    c.Create: mailboxes.create,
    c.Delete: mailboxes.delete,
    c.Rename: mailboxes.rename,
    c.Subscribe: mailboxes.subscribe,
    c.Select: selection.select,
    c.Close: selection.close,
    c.Unselect: selection.unselect,
    c.Expunge: selection.expunge,
    c.Fetch: fetching.fetch,
    c.Search: searching.search,
    c.Sort: ordering.sort,
    c.Thread: ordering.thread,
    c.Store: changes.store,
    c.Copy: changes.copy,
    c.Move: changes.copy,
    c.Append: changes.append,
}
#: Commands after which the mailbox is checked even when the change feed said nothing.
_ALWAYS_SYNCHRONISE: Final = frozenset({"NOOP", "CHECK", "IDLE"})


class ImapSession:
    def __init__(
        self,
        services: SessionServices,
        conn: ImapConnection,
        out: Output,
        *,
        remote: str = "",
        starttls_available: bool = False,
    ) -> None:
        self.state = SessionState(services, conn, out, remote=remote)
        self.starttls_available = starttls_available
        self.idling = False
        self._closed = False

    @property
    def conn(self) -> ImapConnection:
        return self.state.conn

    def capabilities(self) -> list[str]:
        return auth.capabilities(
            self.state, starttls_available=self.starttls_available and not self.conn.tls_active
        )

    def greeting(self) -> bytes:
        hostname = self.state.services.hostname
        return response.greeting(f"{hostname} pli IMAP ready", self.capabilities())

    def tls_started(self, ssl_object: ssl.SSLObject | None) -> None:
        """TLS is up (implicit, or after STARTTLS): remember the client's certificate, if any."""
        self.state.ssl_object = ssl_object
        self.state.tls_peer_certificate = bool(
            ssl_object is not None and ssl_object.getpeercert(binary_form=True)
        )

    @property
    def account_id(self) -> int | None:
        principal = self.state.principal
        return principal.account.id if principal is not None else None

    def close(self) -> None:
        """The connection ended: release the session slot and the feed subscription."""
        if self._closed:
            return
        self._closed = True
        selection.deselect(self.state)
        if self.state.principal is not None:
            self.state.services.registry.release(self.state.principal.account.id)

    def bye(self, text: str) -> None:
        """``* BYE text`` and the connection closes (shutdown, idle timeout)."""
        if not self.conn.closed:
            self.state.out.write(self.conn.send_bye(text))

    # --- commands ----------------------------------------------------------------------------

    async def execute(self, event: Event) -> None:
        """Execute one event of the core (a command other than STARTTLS, IdleDone or
        SaslResponse) and write its responses."""
        state = self.state
        if isinstance(event, IdleDone):
            self.idling = False
            state.out.write(self.conn.send_tagged(event.tag, "OK", "IDLE terminated"))
            return
        if isinstance(event, SaslResponse):
            await self._run(event.tag, "AUTHENTICATE", False, auth.sasl_response, event)
            return
        if not isinstance(event, c.Command):
            raise TypeError(f"not an event for the session: {event!r}")
        if isinstance(event, c.Capability):
            state.out.write(response.capability_response(self.capabilities()))
            state.out.write(self.conn.send_tagged(event.tag, "OK", "CAPABILITY completed"))
            return
        if isinstance(event, c.Logout):
            state.out.write(self.conn.send_bye("Logging out"))
            state.out.write(self.conn.send_tagged(event.tag, "OK", "LOGOUT completed"))
            return
        if isinstance(event, c.Idle):
            await self._run(event.tag, "IDLE", False, self._start_idle, event)
            return
        handler = _HANDLERS.get(type(event))
        if handler is None:  # STARTTLS is the adapter's; nothing else is unknown here
            state.out.write(self.conn.send_tagged(event.tag, "BAD", "Command not available"))
            return
        uid = bool(getattr(event, "uid", False)) or (
            isinstance(event, c.Expunge) and bool(event.uids)
        )
        await self._run(event.tag, event.name, uid, handler, event)

    async def _run(self, tag: str, name: str, uid: bool, handler: Handler, event: Any) -> None:
        state = self.state
        try:
            reply = await self._outcome(handler, event, name)
            if reply is None:  # AUTHENTICATE continues, or IDLE started
                return
            if state.view is not None:
                await selection.synchronise(
                    state,
                    allow_expunge=may_send_expunge(name, uid),
                    force=name in _ALWAYS_SYNCHRONISE,
                )
        except selection.MailboxGone:
            log.info("imap-selected-mailbox-deleted", remote=state.remote)
            self.bye("Selected mailbox was deleted, have to disconnect")
            return
        state.out.write(self.conn.send_tagged(tag, reply.status, reply.text, reply.code))
        if state.auth_failures >= auth.MAX_AUTH_FAILURES:
            self.bye("Too many authentication failures")

    async def _outcome(self, handler: Handler, event: Any, name: str) -> Reply | None:
        state = self.state
        try:
            return await handler(state, event)
        except CommandFailed as failed:
            state.sasl = None if name == "AUTHENTICATE" else state.sasl
            return failed.reply
        except MailboxNameError as error:
            return Reply("NO", str(error), "CANNOT")
        except StoreUserError as error:
            return Reply("NO", str(error))
        except selection.MailboxGone:
            raise
        except Exception:
            log.exception("imap-command-failed", command=name, remote=state.remote)
            state.sasl = None
            return Reply("NO", "Internal server error", "SERVERBUG")

    async def _start_idle(self, state: SessionState, command: c.Idle) -> Reply | None:
        if state.view is not None:
            await selection.synchronise(state, allow_expunge=True, force=True)
        state.out.write(self.conn.send_continuation("idling"))
        self.idling = True
        return None

    # --- IDLE --------------------------------------------------------------------------------

    async def idle_wait(self) -> None:
        """Return when the selected mailbox may have changed (or the recheck interval passed);
        safe to cancel. With nothing selected there is nothing to wait for."""
        subscription = self.state.subscription
        if subscription is None:
            await asyncio.Event().wait()
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(subscription.get(), IDLE_RECHECK_SECONDS)

    async def idle_push(self) -> None:
        """Send what changed while IDLE (EXPUNGE allowed: RFC 2177, a command is in progress)."""
        try:
            await selection.synchronise(self.state, allow_expunge=True, force=True)
        except selection.MailboxGone:
            self.bye("Selected mailbox was deleted, have to disconnect")
        except Exception:
            log.exception("imap-idle-update-failed", remote=self.state.remote)


__all__ = ["ImapSession", "bad"]
