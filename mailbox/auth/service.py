"""Who is this? Credentials from any front end (IMAP, SMTP submission, webmail) → a principal.

Strong authentication is required for professional mailboxes (mssante.md §2): a password alone is
not enough. The means each kind of account accepts:

| account | password + one-time code | client certificate (EXTERNAL) | bearer token (OAUTHBEARER) |
|---|---|---|---|
| PER (a professional) | yes | yes (person certificate, CPS-like) | yes (Pro Santé Connect) |
| ORG (organisational) | yes | yes (organisation certificate) | no: members log in as themselves |
| APP (applicative)    | no  | yes (organisation certificate, ORG_AUTH_CLI-like) | no |
| citizen              | yes | no | no |

``auth.require_otp = false`` (development only) lets a password alone through.

A principal may *act as* another mailbox: an ORG mailbox it is a member of, a citizen it is the
guardian of (policy P9). The SASL authorization identity (``authzid``) names it; the store decides
(``may_act_for``). Every attempt, successful or not, is written to the audit log; repeated
failures lock the account for ``auth.lockout_duration``, counted in the database so that every
process (SMTP workers, IMAP, webmail) and a restart see them (``store/logins.py``).

This module looks accounts up in the store and verifies secrets; it does not speak any protocol.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

import structlog

from pli.certs.identity import CertificateIdentity as PeerIdentity
from pli.config.schema import AuthSection
from pli.mailbox.store import Account, AccountKind, Store
from pli.mailbox.store.logins import LoginFailures
from pli.mailbox.store.records import CertificateIdentity

from .oauth import TokenRefused, TokenVerifier
from .sasl import BearerCredentials, Credentials, ExternalCredentials, PasswordCredentials
from .totp import split_code

log = structlog.get_logger(__name__)


class AuthMethod(StrEnum):
    PASSWORD = "password"  # noqa: S105 (a method name): development only, require_otp = false
    PASSWORD_OTP = "password+otp"  # noqa: S105 (a method name)
    CERTIFICATE = "certificate"
    BEARER = "bearer"


ACCEPTED_METHODS: dict[AccountKind, frozenset[AuthMethod]] = {
    AccountKind.PER: frozenset(
        {AuthMethod.PASSWORD_OTP, AuthMethod.CERTIFICATE, AuthMethod.BEARER}
    ),
    AccountKind.ORG: frozenset({AuthMethod.PASSWORD_OTP, AuthMethod.CERTIFICATE}),
    AccountKind.APP: frozenset({AuthMethod.CERTIFICATE}),
    AccountKind.CITIZEN: frozenset({AuthMethod.PASSWORD_OTP}),
}

PUBLIC_FAILURE = "authentication failed"  # the same text whatever the cause (no user probing)


class AuthenticationFailed(Exception):
    """``reason`` is a stable code for logs and audit; peers only ever see PUBLIC_FAILURE."""

    def __init__(self, reason: str, detail: str = "", *, mailbox: str | None = None) -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.mailbox = mailbox  # the account attempted, when known (its audit trail shows it)


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated identity, and the mailbox it acts as (itself unless it asked for one)."""

    account: Account
    method: AuthMethod
    acting_as: Account
    detail: str = ""  # certificate label or token subject, for the audit

    @property
    def acting_for_another(self) -> bool:
        return self.acting_as.id != self.account.id


def login_address(username: str, citizen_domain: str) -> str:
    """The address a user name logs in to: lower-cased, and a citizen may give the INS alone.
    The lockout counts under this key, whichever front end the attempt came through."""
    name = username.strip().lower()
    return name if "@" in name else f"{name}@{citizen_domain}"


class FailureTracker:
    """Failed attempts per user name within a sliding window, counted in the store
    (``Store.login_failures``): every process of the server, and the next one after a restart,
    sees the same count. ``clock`` gives seconds since the epoch. Each attempt is also audited."""

    def __init__(
        self,
        failures: LoginFailures,
        limit: int,
        window: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._failures = failures
        self._limit = limit
        self._window = window
        self._clock = clock
        self._attempts: dict[str, tuple[asyncio.Lock, list[int]]] = {}

    @contextlib.asynccontextmanager
    async def attempt(self, key: str) -> AsyncIterator[None]:
        """One attempt of ``key`` at a time in this process: attempts running side by side
        would all count the failures before any had recorded its own, and each get a guess
        past the limit. Across processes, at most one such extra guess per process remains."""
        lock, users = self._attempts.setdefault(key, (asyncio.Lock(), [0]))
        users[0] += 1
        try:
            async with lock:
                yield
        finally:
            users[0] -= 1
            if not users[0]:
                del self._attempts[key]

    async def recent(self, key: str) -> int:
        """The failures of ``key`` within the window."""
        return await self._failures.count(key, since=self._instant(-self._window))

    def locks(self, failures: int) -> bool:
        return failures >= self._limit

    async def failed(self, key: str) -> None:
        await self._failures.record(
            key, self._instant(0), forget_before=self._instant(-self._window)
        )

    async def succeeded(self, key: str, failures: int) -> None:
        """``failures`` as :meth:`recent` gave them: none, and there is nothing to write."""
        if failures:
            await self._failures.clear(key)

    def _instant(self, offset: float) -> datetime:
        return datetime.fromtimestamp(self._clock() + offset, UTC)


class Authenticator:
    def __init__(
        self,
        store: Store,
        settings: AuthSection,
        *,
        citizen_domain: str,
        token_verifier: TokenVerifier | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._settings = settings
        self._citizen_domain = citizen_domain
        self._tokens = token_verifier
        self._failures = FailureTracker(
            store.login_failures, settings.failures_before_lockout, settings.lockout_duration, clock
        )

    async def authenticate(
        self,
        credentials: Credentials,
        *,
        peer: PeerIdentity | None = None,
        service: str,
        remote: str = "",
    ) -> Principal:
        """The principal for these credentials, or AuthenticationFailed (audited either way).

        ``peer`` is the verified TLS client certificate's identity, when there is one."""
        key = self._failure_key(credentials, peer)
        async with self._failures.attempt(key):
            return await self._attempt(key, credentials, peer, service, remote)

    async def _attempt(
        self,
        key: str,
        credentials: Credentials,
        peer: PeerIdentity | None,
        service: str,
        remote: str,
    ) -> Principal:
        try:
            failures = await self._failures.recent(key)
            if self._failures.locks(failures):
                raise AuthenticationFailed("locked", f"{key} locked after repeated failures")
            principal = await self._authenticate(credentials, peer)
        except AuthenticationFailed as failure:
            if failure.reason != "locked":
                await self._failures.failed(key)
            await self._audit(
                key, None, service, remote, f"refused: {failure.reason}", failure.mailbox
            )
            log.info(
                "auth-refused", user=key, service=service, remote=remote, reason=failure.reason
            )
            raise
        await self._failures.succeeded(key, failures)
        await self._audit(key, principal, service, remote, f"ok: {principal.method}", None)
        await self._store.accounts.record_login(principal.account.id)
        return principal

    async def may_send_as(self, principal: Principal, address: str) -> bool:
        """Whether the principal may use ``address`` as MAIL FROM / From: (its own mailbox, an
        ORG mailbox it is a member of, a citizen it is the guardian of)."""
        target = await self._store.accounts.find(address)
        if target is None:
            return False
        return await self._store.accounts.may_act_for(principal.account.id, target.id)

    def _failure_key(self, credentials: Credentials, peer: PeerIdentity | None) -> str:
        if isinstance(credentials, PasswordCredentials):
            return login_address(credentials.username, self._citizen_domain)
        if isinstance(credentials, ExternalCredentials) and peer is not None:
            return f"certificate:{peer.fingerprint_sha256}"
        return f"{type(credentials).__name__}:{credentials.authzid.lower()}"

    async def _authenticate(self, credentials: Credentials, peer: PeerIdentity | None) -> Principal:
        if isinstance(credentials, PasswordCredentials):
            account, method = await self._password(credentials)
            detail = ""
        elif isinstance(credentials, ExternalCredentials):
            account, detail = await self._certificate(credentials, peer)
            method = AuthMethod.CERTIFICATE
        else:
            account, detail = await self._bearer(credentials)
            method = AuthMethod.BEARER
        if account.disabled:
            raise AuthenticationFailed("disabled", account.address, mailbox=account.address)
        accepted = ACCEPTED_METHODS[account.kind]
        if AuthMethod.PASSWORD_OTP in accepted and not self._settings.require_otp:
            accepted = accepted | {AuthMethod.PASSWORD}
        if method not in accepted:
            raise AuthenticationFailed(
                "method-not-allowed", f"{method} for {account.kind}", mailbox=account.address
            )
        acting_as = await self._acting_as(account, credentials.authzid)
        return Principal(account=account, method=method, acting_as=acting_as, detail=detail)

    async def _account_for_login(self, username: str) -> Account:
        account = await self._store.accounts.find(login_address(username, self._citizen_domain))
        if account is None:
            raise AuthenticationFailed("unknown-user", username)
        return account

    async def _password(self, credentials: PasswordCredentials) -> tuple[Account, AuthMethod]:
        account = await self._account_for_login(credentials.username)
        means = await self._store.accounts.credentials(account.id)
        digits = self._settings.otp_digits
        if means.has_totp:
            parts = split_code(credentials.password, digits)
            if parts is None:
                raise AuthenticationFailed("otp-missing", account.address, mailbox=account.address)
            password, code = parts
            if not await self._store.accounts.verify_password(account.id, password):
                raise AuthenticationFailed("bad-password", account.address, mailbox=account.address)
            if not await self._store.accounts.verify_totp(account.id, code, digits=digits):
                raise AuthenticationFailed("bad-otp", account.address, mailbox=account.address)
            return account, AuthMethod.PASSWORD_OTP
        if self._settings.require_otp:
            raise AuthenticationFailed("otp-not-enrolled", account.address, mailbox=account.address)
        if not await self._store.accounts.verify_password(account.id, credentials.password):
            raise AuthenticationFailed("bad-password", account.address, mailbox=account.address)
        return account, AuthMethod.PASSWORD

    async def _certificate(
        self, credentials: ExternalCredentials, peer: PeerIdentity | None
    ) -> tuple[Account, str]:
        if peer is None:
            raise AuthenticationFailed("no-certificate", "EXTERNAL without a client certificate")
        registered = CertificateIdentity(
            dn=peer.dn,
            rpps=peer.rpps,
            structure_id=peer.structure_id,
            fingerprint=peer.fingerprint_sha256,
        )
        accounts = await self._store.accounts.by_certificate(registered)
        return self._choose(accounts, credentials.authzid, peer.label), peer.label

    async def _bearer(self, credentials: BearerCredentials) -> tuple[Account, str]:
        if self._tokens is None:
            raise AuthenticationFailed("bearer-not-configured", "no token issuer configured")
        try:
            token = self._tokens.verify(credentials.token)
        except TokenRefused as refused:
            raise AuthenticationFailed(refused.reason, str(refused)) from None
        accounts = await self._store.accounts.by_oauth_subject(token.subject)
        return self._choose(accounts, credentials.authzid, token.subject), token.subject

    @staticmethod
    def _choose(accounts: list[Account], authzid: str, who: str) -> Account:
        """The account a certificate or token authenticates: the only one, or the one named by
        the authorization identity (an ORG mailbox a member acts in is handled later)."""
        if not accounts:
            raise AuthenticationFailed("no-account", f"{who} is registered for no mailbox")
        if len(accounts) == 1:
            return accounts[0]
        named = [account for account in accounts if account.address == authzid.strip().lower()]
        if not named:
            raise AuthenticationFailed("ambiguous", f"{who} opens several mailboxes; name one")
        return named[0]

    async def _acting_as(self, account: Account, authzid: str) -> Account:
        wanted = authzid.strip().lower()
        if not wanted or wanted == account.address:
            return account
        target = await self._store.accounts.find(wanted)
        if target is None or not await self._store.accounts.may_act_for(account.id, target.id):
            raise AuthenticationFailed(
                "authzid-refused", f"{account.address} → {wanted}", mailbox=account.address
            )
        return target

    async def _audit(
        self,
        key: str,
        principal: Principal | None,
        service: str,
        remote: str,
        result: str,
        attempted: str | None,
    ) -> None:
        await self._store.audit.record(
            principal.account.address if principal else key,
            "login",
            mailbox=principal.acting_as.address if principal else attempted,
            acting_for=principal.acting_as.address
            if principal and principal.acting_for_another
            else None,
            request=f"{service} from {remote}".strip(),
            result=result,
        )
