"""Logging in to the webmail: the citizen's identifier and password, then a one-time code sent to
the personal address (strong authentication, mssante.md §2: "login + password + one-time code by
e-mail").

1. :meth:`Login.check_password`: the identifier is the INS (the citizen domain is added) or the
   whole address. A right password opens a ``code`` session and e-mails a code of
   ``auth.otp_digits`` digits, valid ``auth.otp_lifetime`` seconds; the session keeps only the
   code's keyed digest.
2. :meth:`Login.check_code`: ``webmail.code_attempts`` wrong codes end the pending session (the
   citizen starts again); a right one replaces it with an ``active`` session (a new token).
   :meth:`Login.resend` sends a new code, at most ``webmail.code_sends`` codes per login.

Every wrong password or code counts for the account; after ``auth.failures_before_lockout``
within ``auth.lockout_duration`` the account is locked for that long (as the IMAP and SMTP
Authenticator does; per process). An unknown identifier costs the same time as a known one
(an argon2 verification against a dummy hash) and gets the same text: nobody learns which
identifiers exist. Every step is in the audit log (action ``login``, never the password or code).

What this module must not do: touch cookies or render pages.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

import structlog
from argon2 import PasswordHasher
from argon2.exceptions import Argon2Error

from pli.mailbox.auth.service import FailureTracker, login_address
from pli.mailbox.notify.relay import OutgoingMail, Relay, RelayError, outbox_key
from pli.mailbox.notify.texts import code_mail
from pli.mailbox.store import Account, Store

from .context import WebmailConfig
from .security import keyed_digest, same
from .sessions import ACTIVE, CODE, SessionStore, WebSession

log = structlog.get_logger(__name__)

#: Longest identifier and password read from the form (an address is at most 320 octets,
#: RFC 5321 §4.5.3.1; argon2 hashes anything, but 1 KB of password is enough).
MAX_IDENTIFIER = 320
MAX_PASSWORD = 1024
SERVICE = "webmail"


class LoginRefused(Exception):
    """``reason`` is a stable code (logs, tests); ``text`` the French sentence shown."""

    def __init__(self, reason: str, text: str, *, restart: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.text = text
        self.restart = restart  # the pending login is over: back to the password form


BAD_CREDENTIALS = "Identifiant ou mot de passe incorrect."
LOCKED = (
    "Trop de tentatives de connexion : ce compte est bloqué pendant {minutes} minutes. "
    "Réessayez plus tard."
)
NO_CONTACT = (
    "Aucune adresse e-mail n'est enregistrée pour vous envoyer un code de connexion. "
    "Contactez l'assistance de Mon espace santé."
)
CODE_NOT_SENT = "Le code de connexion n'a pas pu être envoyé. Réessayez dans quelques minutes."
CODE_EXPIRED = "Ce code a expiré. Demandez un nouveau code."
CODE_WRONG = "Code incorrect. Il vous reste {left} essai(s)."
CODE_ATTEMPTS_EXHAUSTED = "Trop de codes incorrects. Reconnectez-vous."
CODE_SENDS_EXHAUSTED = "Trop de codes demandés pour cette connexion. Reconnectez-vous."


@dataclass(frozen=True, slots=True)
class CodeSent:
    token: str  # the pending session's token (for the cookie)
    address: str  # where the code went, masked for display


def mask_address(address: str) -> str:
    """``paul.lefebvre@example.org`` → ``p…e@example.org``: enough to recognise, not to read."""
    local, _, domain = address.partition("@")
    if len(local) <= 2:
        return f"{local[:1]}…@{domain}"
    return f"{local[0]}…{local[-1]}@{domain}"


class Login:
    def __init__(
        self,
        store: Store,
        config: WebmailConfig,
        sessions: SessionStore,
        relay: Relay,
        key: bytes,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.config = config
        self.sessions = sessions
        self.relay = relay
        self.key = key
        self.failures = FailureTracker(
            store.login_failures, config.failures_before_lockout, config.lockout_duration, clock
        )
        self._dummy_hash: str | None = None

    def account_address(self, identifier: str) -> str:
        return login_address(identifier[:MAX_IDENTIFIER], self.config.citizen_domain)

    def _locked(self) -> LoginRefused:
        minutes = max(1, round(self.config.lockout_duration / 60))
        return LoginRefused("locked", LOCKED.format(minutes=minutes), restart=True)

    async def check_password(self, identifier: str, password: str, *, remote: str) -> CodeSent:
        address = self.account_address(identifier)
        async with self.failures.attempt(address):
            return await self._check_password(address, password[:MAX_PASSWORD], remote)

    async def _check_password(self, address: str, password: str, remote: str) -> CodeSent:
        if self.failures.locks(await self.failures.recent(address)):
            await self._audit(address, None, remote, "refused: locked")
            raise self._locked()
        account = await self.store.accounts.find(address)
        usable = account is not None and account.is_citizen and not account.disabled
        if account is None or not usable:
            await self._waste_time(password)
            reason = "unknown-user" if account is None else "not-allowed"
            await self._failed(address, account, remote, reason)
            raise LoginRefused("bad-credentials", BAD_CREDENTIALS)
        if not await self.store.accounts.verify_password(account.id, password):
            await self._failed(address, account, remote, "bad-password")
            raise LoginRefused("bad-credentials", BAD_CREDENTIALS)
        if not account.notification_address:
            await self._audit(address, account, remote, "refused: no-contact-address")
            raise LoginRefused("no-contact-address", NO_CONTACT)
        token = await self.sessions.create(account, CODE, remote=remote)
        session = await self.sessions.load(token)
        assert session is not None
        await self._send_code(session, remote)
        return CodeSent(token, mask_address(account.notification_address))

    async def resend(self, session: WebSession, *, remote: str) -> None:
        if session.code_sends >= self.config.code_sends:
            await self.sessions.destroy(session.token_hash)
            raise LoginRefused("code-sends-exhausted", CODE_SENDS_EXHAUSTED, restart=True)
        await self._send_code(session, remote)

    async def _send_code(self, session: WebSession, remote: str) -> None:
        account = session.account
        assert account.notification_address
        digits = self.config.code_digits
        code = f"{secrets.randbelow(10**digits):0{digits}d}"
        expires = self.sessions.clock() + timedelta(seconds=self.config.code_lifetime)
        await self.sessions.set_code(session, self._code_digest(session, code), expires)
        raw = code_mail(
            self.config.sender,
            account.notification_address,
            code=code,
            lifetime=self.config.code_lifetime,
            domain=self.config.hostname,
        )
        mail = OutgoingMail(
            outbox_key("code", secrets.token_hex(8)),
            self.config.sender,
            account.notification_address,
            raw,
        )
        try:
            await self.relay.send(mail)
        except RelayError as error:
            log.warning("login-code-not-sent", account=account.address, error=str(error))
            await self.sessions.destroy(session.token_hash)
            await self._audit(account.address, account, remote, "refused: code-not-sent")
            raise LoginRefused("code-not-sent", CODE_NOT_SENT, restart=True) from None
        await self._audit(account.address, account, remote, "password ok: code sent")

    def _code_digest(self, session: WebSession, code: str) -> str:
        return keyed_digest(self.key, "login-code", session.token_hash, code)

    async def check_code(self, session: WebSession, code: str, *, remote: str) -> str:
        """The active session's token, or LoginRefused."""
        async with self.failures.attempt(session.account.address):
            return await self._check_code(session, code, remote)

    async def _check_code(self, session: WebSession, code: str, remote: str) -> str:
        account = session.account
        failures = await self.failures.recent(account.address)
        if self.failures.locks(failures):
            await self.sessions.destroy(session.token_hash)
            await self._audit(account.address, account, remote, "refused: locked")
            raise self._locked()
        if session.code_expires_at is None or self.sessions.clock() >= session.code_expires_at:
            await self._audit(account.address, account, remote, "refused: code-expired")
            raise LoginRefused("code-expired", CODE_EXPIRED)
        typed = "".join(code.split())[:32]
        expected = session.code_digest or ""
        if not (typed.isdigit() and same(self._code_digest(session, typed), expected)):
            attempts = await self.sessions.count_attempt(session)
            await self._failed(account.address, account, remote, "bad-code")
            left = self.config.code_attempts - attempts
            if left <= 0:
                await self.sessions.destroy(session.token_hash)
                raise LoginRefused("code-attempts-exhausted", CODE_ATTEMPTS_EXHAUSTED, restart=True)
            raise LoginRefused("bad-code", CODE_WRONG.format(left=left))
        await self.failures.succeeded(account.address, failures)
        token = await self.sessions.replace(session, ACTIVE, remote=remote)
        await self.store.accounts.record_login(account.id)
        await self._audit(account.address, account, remote, "ok: password+email-code")
        return token

    async def _failed(
        self, address: str, account: Account | None, remote: str, reason: str
    ) -> None:
        await self.failures.failed(address)
        await self._audit(address, account, remote, f"refused: {reason}")
        log.info("webmail-login-refused", user=address, remote=remote, reason=reason)

    async def _audit(self, address: str, account: Account | None, remote: str, result: str) -> None:
        await self.store.audit.record(
            account.address if account else address,
            "login",
            mailbox=account.address if account else None,
            request=f"{SERVICE} from {remote}".strip(),
            result=result,
        )

    async def _waste_time(self, password: str) -> None:
        """An argon2 verification, as for a known account (no timing difference)."""
        if self._dummy_hash is None:
            self._dummy_hash = await asyncio.to_thread(PasswordHasher().hash, secrets.token_hex(16))
        with contextlib.suppress(Argon2Error):
            await asyncio.to_thread(PasswordHasher().verify, self._dummy_hash, password)
