"""Capabilities and authentication: LOGIN, AUTHENTICATE (PLAIN, EXTERNAL, OAUTHBEARER, XOAUTH2),
by the same means and identities as SMTP submission (``mailbox/auth``).

- Before TLS on a STARTTLS listener: ``STARTTLS LOGINDISABLED``, no ``AUTH=`` (RFC 3501
  §6.2.3, RFC 9051 §6.2.3); LOGIN and AUTHENTICATE are refused with ``NO [PRIVACYREQUIRED]``.
- After TLS: ``AUTH=PLAIN``; ``AUTH=EXTERNAL`` when the client presented a certificate (it is
  verified with the trust store, chain and revocation, before the authenticator sees it);
  ``AUTH=OAUTHBEARER AUTH=XOAUTH2`` when a token issuer is configured; ``SASL-IR``.
- The SASL authorization identity (PLAIN's authzid, EXTERNAL's response, OAUTHBEARER's ``a=``)
  opens another mailbox the person may act in (an ORG mailbox, a ward's): the authenticator
  decides (``may_act_for``), the session then acts as that mailbox.
- Failures say only ``[AUTHENTICATIONFAILED]`` (no user probing); after
  :data:`MAX_AUTH_FAILURES` on one connection it is closed. A successful login over the
  per-account session limit is answered ``NO [LIMIT]``.

Must not: verify secrets itself (``mailbox/auth`` does) nor say why a login failed.
"""

from __future__ import annotations

from typing import Final

import structlog

from pli.certs.identity import CertificateIdentity as PeerIdentity
from pli.certs.refusals import CertificateRefused
from pli.mailbox.auth.sasl import (
    BearerCredentials,
    Challenge,
    Credentials,
    ExternalCredentials,
    PasswordCredentials,
    SaslError,
    SaslExchange,
)
from pli.mailbox.auth.service import PUBLIC_FAILURE, AuthenticationFailed

from .. import commands as c
from .. import response
from ..events import SaslResponse
from .namespaces import Namespaces
from .state import Reply, SessionState, bad, no

log = structlog.get_logger(__name__)

#: Failed authentications on one connection before it is closed (Dovecot closes after 3 too);
#: the authenticator's lockout bounds attempts per account across connections.
MAX_AUTH_FAILURES: Final = 3

#: Extensions served by the session on top of the core's base list (RFC 5258, RFC 5819,
#: RFC 4731, RFC 5256, RFC 5957, RFC 3502, RFC 3516).
SESSION_CAPABILITIES: Final = (
    "LIST-EXTENDED",
    "LIST-STATUS",
    "MULTIAPPEND",
    "BINARY",
    "ESEARCH",
    "SORT",
    "SORT=DISPLAY",
    "THREAD=ORDEREDSUBJECT",
    "THREAD=REFERENCES",
)

_PRIVACY: Final = "PRIVACYREQUIRED"  # RFC 5530
_FAILED: Final = "AUTHENTICATIONFAILED"  # RFC 5530


def mechanisms(state: SessionState) -> list[str]:
    """The SASL mechanisms offered now (none before TLS)."""
    if not state.conn.tls_active:
        return []
    offered = ["PLAIN"]
    if state.tls_peer_certificate and state.services.trust is not None:
        offered.append("EXTERNAL")
    if state.services.bearer_enabled:
        offered += ["OAUTHBEARER", "XOAUTH2"]
    return offered


def capabilities(state: SessionState, *, starttls_available: bool) -> list[str]:
    authenticated = state.principal is not None
    return response.capabilities(
        tls_active=state.conn.tls_active,
        starttls_available=starttls_available,
        login_allowed=state.conn.tls_active,
        mechanisms=mechanisms(state),
        authenticated=authenticated,
        append_limit=state.services.limits.message_size if authenticated else None,
        extra=SESSION_CAPABILITIES if authenticated else (),
    )


async def login(state: SessionState, command: c.Login) -> Reply:
    if not state.conn.tls_active:
        raise no("LOGIN is disabled before STARTTLS", _PRIVACY)
    credentials = PasswordCredentials(username=command.username, password=command.password)
    return await _complete(state, credentials)


class SaslInProgress:
    """The exchange of an AUTHENTICATE in progress."""

    def __init__(self, exchange: SaslExchange) -> None:
        self.exchange = exchange
        self.failed_bearer = False


async def authenticate(state: SessionState, command: c.Authenticate) -> Reply | None:
    """Start an exchange: a challenge is written (None returned) or the command completes."""
    if not state.conn.tls_active:
        raise no("Authentication is disabled before STARTTLS", _PRIVACY)
    mechanism = command.mechanism.upper()
    if mechanism not in mechanisms(state):
        raise no("Unsupported authentication mechanism", "CANNOT")
    state.sasl = SaslInProgress(SaslExchange(mechanism))
    return await _step(state, command.tag, command.initial_response)


async def sasl_response(state: SessionState, event: SaslResponse) -> Reply | None:
    sasl = state.sasl
    if sasl is None:
        raise bad("No authentication in progress")
    if sasl.failed_bearer:  # RFC 7628 §3.2.2: the client acknowledged the error challenge
        return _failure(state)
    return await _step(state, event.tag, event.data)


async def _step(state: SessionState, tag: str, data: bytes | None) -> Reply | None:
    sasl = state.sasl
    assert sasl is not None
    try:
        result = sasl.exchange.step(data)
    except SaslError as error:
        state.sasl = None
        state.auth_failures += 1
        raise no(str(error), _FAILED) from None
    if isinstance(result, Challenge):
        state.out.write(state.conn.send_sasl_challenge(result.data))
        return None
    try:
        return await _complete(state, result)
    except _BearerRefused:
        sasl.failed_bearer = True
        challenge = sasl.exchange.bearer_failure_challenge()
        state.out.write(state.conn.send_sasl_challenge(challenge.data))
        return None


class _BearerRefused(Exception):
    pass


def _failure(state: SessionState) -> Reply:
    state.sasl = None
    state.auth_failures += 1
    raise no(PUBLIC_FAILURE, _FAILED)


async def _peer_identity(state: SessionState) -> PeerIdentity | None:
    """The client certificate's identity once verified (chain, revocation), else None (the
    authenticator then refuses EXTERNAL, audited)."""
    trust = state.services.trust
    if trust is None or state.ssl_object is None:
        return None
    try:
        verified = await trust.verify_tls_peer(state.ssl_object, "client")
    except CertificateRefused as refused:
        log.info("imap-client-certificate-refused", reason=refused.reason, remote=state.remote)
        return None
    return verified.identity


async def _complete(state: SessionState, credentials: Credentials) -> Reply:
    services = state.services
    peer = await _peer_identity(state) if isinstance(credentials, ExternalCredentials) else None
    try:
        principal = await services.authenticator.authenticate(
            credentials,
            peer=peer,
            service="imap",
            remote=state.remote,
        )
    except AuthenticationFailed:
        if isinstance(credentials, BearerCredentials) and state.sasl is not None:
            raise _BearerRefused from None
        return _failure(state)
    state.sasl = None
    if not services.registry.acquire(principal.account.id):
        log.info("imap-session-limit", account=principal.account.address, remote=state.remote)
        raise no("Too many sessions for this account", "LIMIT")
    state.principal = principal
    state.namespaces = Namespaces(services.store, principal.account, principal.acting_as)
    names = capabilities(state, starttls_available=False)
    return Reply("OK", "Logged in", response.capability_code(names))
