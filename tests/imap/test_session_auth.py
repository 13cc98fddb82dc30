"""Session tier: capabilities and authentication over in-memory streams with a real store."""

from __future__ import annotations

import base64
import time

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from plitest.imap import PASSWORD, InMemoryImap, imap_services, professional

from pli.config.schema import AuthSection
from pli.mailbox.auth.oauth import TokenVerifier
from pli.mailbox.auth.service import Authenticator
from pli.mailbox.auth.totp import totp
from pli.mailbox.imap.session.auth import MAX_AUTH_FAILURES
from pli.mailbox.store import AccountKind, Store

ISSUER, AUDIENCE = "https://psc.example/realm", "pli"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


async def test_before_tls_login_is_disabled_and_no_mechanism_is_offered(store: Store) -> None:
    account = await professional(store)
    async with InMemoryImap.start(imap_services(store), tls_active=False) as imap:
        assert b"LOGINDISABLED" in imap.greeting and b"AUTH=" not in imap.greeting
        capability = await imap.command("CAPABILITY")
        assert b"LOGINDISABLED" in capability.lines[0]
        refused = await imap.command(f'LOGIN "{account.address}" "{PASSWORD}"')
        assert refused.tagged.endswith(
            b"NO [PRIVACYREQUIRED] LOGIN is disabled before STARTTLS\r\n"
        )
        plain = b64(b"\0a\0b")
        sasl = await imap.command(f"AUTHENTICATE PLAIN {plain}")
        assert b"NO [PRIVACYREQUIRED]" in sasl.tagged
        assert (await imap.command("SELECT INBOX")).status == "BAD"  # still not authenticated


async def test_capabilities_after_tls_and_after_login(store: Store) -> None:
    account = await professional(store)
    async with InMemoryImap.start(imap_services(store)) as imap:
        names = (await imap.command("CAPABILITY")).lines[0].split()
        assert b"AUTH=PLAIN" in names and b"SASL-IR" in names and b"LOGINDISABLED" not in names
        assert b"AUTH=EXTERNAL" not in names  # no client certificate was presented
        assert b"AUTH=OAUTHBEARER" not in names  # no issuer configured
        login = await imap.login(account.address)
        code = login.tagged.split(b"[", 1)[1].split(b"]", 1)[0].split()
        for name in (b"IMAP4rev1", b"IDLE", b"NAMESPACE", b"UIDPLUS", b"MOVE", b"CONDSTORE"):
            assert name in code
        assert b"APPENDLIMIT=26214400" in code and b"AUTH=PLAIN" not in code


async def test_wrong_password_says_only_authenticationfailed_then_bye(store: Store) -> None:
    account = await professional(store)
    async with InMemoryImap.start(imap_services(store)) as imap:
        for attempt in range(MAX_AUTH_FAILURES):
            reply = await imap.command(f'LOGIN "{account.address}" "wrong-{attempt}"')
            assert reply.tagged.endswith(b"NO [AUTHENTICATIONFAILED] authentication failed\r\n")
        unknown = reply  # the last one also closed the connection
        assert await imap.closed()
        assert b"* BYE Too many authentication failures" in bytes(imap.writer.data)
        assert unknown.status == "NO"


async def test_authenticate_plain_with_initial_response_and_with_a_continuation(
    store: Store,
) -> None:
    account = await professional(store)
    secret = f"\0{account.address}\0{PASSWORD}".encode()
    async with InMemoryImap.start(imap_services(store)) as imap:
        reply = await imap.command(f"AUTHENTICATE PLAIN {b64(secret)}")
        assert reply.ok and b"CAPABILITY" in reply.tagged
    async with InMemoryImap.start(imap_services(store)) as imap:
        imap.send(b"a1 AUTHENTICATE PLAIN\r\n")
        assert await imap.read_response() == b"+ \r\n"
        imap.send(b64(secret).encode() + b"\r\n")
        assert (await imap.until_tagged("a1")).ok
        assert (await imap.command("SELECT INBOX")).ok


async def test_authenticate_cancelled_and_malformed(store: Store) -> None:
    await professional(store)
    async with InMemoryImap.start(imap_services(store)) as imap:
        imap.send(b"a1 AUTHENTICATE PLAIN\r\n")
        await imap.read_response()
        imap.send(b"*\r\n")
        assert (await imap.until_tagged("a1")).tagged == b"a1 BAD Authentication cancelled\r\n"
        bad = await imap.command(f"AUTHENTICATE PLAIN {b64(b'only-one-field')}")
        assert b"NO [AUTHENTICATIONFAILED]" in bad.tagged
        unsupported = await imap.command("AUTHENTICATE CRAM-MD5")
        assert b"NO [CANNOT]" in unsupported.tagged
        external = await imap.command("AUTHENTICATE EXTERNAL =")  # no certificate: not offered
        assert b"NO [CANNOT]" in external.tagged
        assert (await imap.command("NOOP")).ok  # the session goes on


async def test_sessions_per_account_are_limited(store: Store) -> None:
    account = await professional(store)
    services = imap_services(store, sessions_per_account=2)
    async with (
        InMemoryImap.start(services) as first,
        InMemoryImap.start(services) as second,
        InMemoryImap.start(services) as third,
    ):
        await first.login(account.address)
        await second.login(account.address)
        refused = await third.command(f'LOGIN "{account.address}" "{PASSWORD}"')
        assert refused.tagged.endswith(b"NO [LIMIT] Too many sessions for this account\r\n")
        assert (await third.command("SELECT INBOX")).status == "BAD"  # not authenticated
        await first.command("LOGOUT")
        assert await first.closed()
        assert (await third.command(f'LOGIN "{account.address}" "{PASSWORD}"')).ok
    assert services.registry.count(account.id) == 0  # every slot released


async def test_login_as_an_organisation_mailbox_with_the_authorization_identity(
    store: Store,
) -> None:
    person = await professional(store, "p")
    org = await professional(store, "secretariat", AccountKind.ORG)
    await store.accounts.add_member(org.id, person.id)
    await store.messages.deliver(b"Subject: for the org\r\n\r\nhello\r\n", [_target(org.id)])
    token = f"{org.address}\0{person.address}\0{PASSWORD}".encode()
    async with InMemoryImap.start(imap_services(store)) as imap:
        assert (await imap.command(f"AUTHENTICATE PLAIN {b64(token)}")).ok
        select = await imap.command("SELECT INBOX")  # the ORG mailbox's own INBOX
        assert b"* 1 EXISTS\r\n" in select.lines
        namespace = await imap.command("NAMESPACE")
        assert namespace.lines == [b'* NAMESPACE (("" "/")) NIL NIL\r\n']
    stranger = await professional(store, "stranger")
    token = f"{org.address}\0{stranger.address}\0{PASSWORD}".encode()
    async with InMemoryImap.start(imap_services(store)) as imap:
        refused = await imap.command(f"AUTHENTICATE PLAIN {b64(token)}")
        assert b"NO [AUTHENTICATIONFAILED]" in refused.tagged
    history = await store.audit.history(org.address)
    selects = [record for record in history if record.action == "imap-select"]
    assert selects and selects[-1].actor == person.address
    assert selects[-1].acting_for == org.address


def _target(account_id: int) -> object:
    from pli.mailbox.store import DeliveryTarget

    return DeliveryTarget(account_id)


@pytest.fixture(scope="module")
def issuer_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _token(key: rsa.RSAPrivateKey, subject: str, **claims: object) -> str:
    now = int(time.time())
    body = {"iss": ISSUER, "aud": AUDIENCE, "sub": subject, "iat": now, "exp": now + 300}
    body.update(claims)
    return jwt.encode(body, key, algorithm="RS256")


async def test_oauthbearer_with_a_valid_token_and_the_rfc7628_error_exchange(
    store: Store, issuer_key: rsa.RSAPrivateKey
) -> None:
    account = await professional(store)
    await store.accounts.add_oauth_subject(account.id, "810003461033")
    verifier = TokenVerifier(
        issuer=ISSUER, audience=AUDIENCE, keys={None: issuer_key.public_key()}, subject_claim="sub"
    )
    services = imap_services(store, token_verifier=verifier)
    good = f"n,,\x01auth=Bearer {_token(issuer_key, '810003461033')}\x01\x01".encode()
    async with InMemoryImap.start(services) as imap:
        names = (await imap.command("CAPABILITY")).lines[0].split()
        assert b"AUTH=OAUTHBEARER" in names and b"AUTH=XOAUTH2" in names
        assert (await imap.command(f"AUTHENTICATE OAUTHBEARER {b64(good)}")).ok
    expired = _token(issuer_key, "810003461033", exp=int(time.time()) - 3600)
    bad = f"n,,\x01auth=Bearer {expired}\x01\x01".encode()
    async with InMemoryImap.start(services) as imap:
        imap.send(f"a1 AUTHENTICATE OAUTHBEARER {b64(bad)}\r\n".encode())
        challenge = await imap.read_response()
        assert base64.b64decode(challenge[2:]) == b'{"status":"invalid_token"}'
        imap.send(b64(b"\x01").encode() + b"\r\n")  # RFC 7628 §3.2.3: the client's dummy reply
        failed = await imap.until_tagged("a1")
        assert b"NO [AUTHENTICATIONFAILED]" in failed.tagged


async def test_password_and_one_time_code_when_strong_authentication_is_required(
    store: Store,
) -> None:
    """``auth.require_otp = true`` (the default): LOGIN carries the password with the current
    code appended; the password alone, or a code replayed, is refused."""
    account = await professional(store)
    secret = await store.accounts.enable_totp(account.id)
    services = imap_services(store)
    services.authenticator = Authenticator(
        store, AuthSection(require_otp=True), citizen_domain="patient.mssante.fr"
    )
    code = totp(secret)
    async with InMemoryImap.start(services) as imap:
        alone = await imap.command(f'LOGIN "{account.address}" "{PASSWORD}"')
        assert b"NO [AUTHENTICATIONFAILED]" in alone.tagged
        assert (await imap.command(f'LOGIN "{account.address}" "{PASSWORD}{code}"')).ok
    async with InMemoryImap.start(services) as imap:
        replayed = await imap.command(f'LOGIN "{account.address}" "{PASSWORD}{code}"')
        assert b"NO [AUTHENTICATIONFAILED]" in replayed.tagged  # a code serves once
