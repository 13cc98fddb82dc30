"""The authenticator: means each mailbox accepts, acting as another mailbox, lockout, audit."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from plitest.pki import session_pki
from plitest.store import demo, open_test_store
from sqlalchemy import select

from pli.certs.identity import identity
from pli.config.schema import AuthSection
from pli.mailbox.auth.oauth import TokenVerifier
from pli.mailbox.auth.sasl import BearerCredentials, ExternalCredentials, PasswordCredentials
from pli.mailbox.auth.service import AuthenticationFailed, Authenticator, AuthMethod
from pli.mailbox.auth.totp import totp
from pli.mailbox.store import AccountKind, Store
from pli.mailbox.store.demo import DEMO_PASSWORD, DemoAccounts
from pli.mailbox.store.models import LoginFailureRow
from pli.mailbox.store.records import CertificateIdentity

ISSUER, AUDIENCE = "https://psc.example/realm", "pli"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def issuer_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
async def store(database_url: str, tmp_path: Path) -> AsyncIterator[Store]:
    async with open_test_store(database_url, tmp_path) as opened:
        yield opened


@pytest.fixture
async def accounts(store: Store) -> DemoAccounts:
    return await demo(store)


def authenticator(
    store: Store, key: rsa.RSAPrivateKey | None = None, clock: Clock | None = None, **auth: Any
) -> Authenticator:
    verifier = None
    if key is not None:
        verifier = TokenVerifier(
            issuer=ISSUER, audience=AUDIENCE, keys={None: key.public_key()}, subject_claim="sub"
        )
    return Authenticator(
        store,
        AuthSection(**auth),
        citizen_domain="patient.mssante.fr",
        token_verifier=verifier,
        clock=clock or Clock(),
    )


def token(key: rsa.RSAPrivateKey, subject: str) -> str:
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + 60, "sub": subject}
    return jwt.encode(claims, key, algorithm="RS256")


async def test_password_plus_totp_for_a_professional(store: Store, accounts: DemoAccounts) -> None:
    secret = await store.accounts.enable_totp(accounts.doctor.id)
    auth = authenticator(store)
    code = totp(secret)
    principal = await auth.authenticate(
        PasswordCredentials(accounts.doctor.address, DEMO_PASSWORD + code), service="imap"
    )
    assert principal.account == accounts.doctor
    assert principal.method is AuthMethod.PASSWORD_OTP
    assert principal.acting_as == accounts.doctor
    with pytest.raises(AuthenticationFailed) as replay:  # the same code is never taken twice
        await auth.authenticate(
            PasswordCredentials(accounts.doctor.address, DEMO_PASSWORD + code), service="imap"
        )
    assert replay.value.reason == "bad-otp"


@pytest.mark.parametrize(
    ("password", "reason"),
    [("demo-password-1234", "otp-missing"), ("wrong-password-1234{code}", "bad-password")],
)
async def test_password_failures_say_why_in_the_audit_only(
    store: Store, accounts: DemoAccounts, password: str, reason: str
) -> None:
    secret = await store.accounts.enable_totp(accounts.doctor.id)
    with pytest.raises(AuthenticationFailed) as failed:
        await authenticator(store).authenticate(
            PasswordCredentials(accounts.doctor.address, password.format(code=totp(secret))),
            service="submission",
            remote="127.0.0.1",
        )
    assert failed.value.reason == reason
    assert str(failed.value) != "authentication failed"  # the detail is for logs and audit
    history = await store.audit.history(accounts.doctor.address)
    logins = [record for record in history if record.action == "login"]
    assert [(r.actor, r.request, r.result) for r in logins] == [
        (accounts.doctor.address, "submission from 127.0.0.1", f"refused: {reason}")
    ]
    assert (await store.audit.verify()).ok


async def test_a_password_alone_is_refused_unless_otp_is_not_required(
    store: Store, accounts: DemoAccounts
) -> None:
    credentials = PasswordCredentials(accounts.doctor.address, DEMO_PASSWORD)
    with pytest.raises(AuthenticationFailed) as failed:
        await authenticator(store).authenticate(credentials, service="imap")
    assert failed.value.reason == "otp-not-enrolled"
    principal = await authenticator(store, require_otp=False).authenticate(
        credentials, service="imap"
    )
    assert principal.method is AuthMethod.PASSWORD


async def test_a_citizen_logs_in_with_the_ins_alone(store: Store, accounts: DemoAccounts) -> None:
    assert accounts.child.ins is not None
    principal = await authenticator(store, require_otp=False).authenticate(
        PasswordCredentials(accounts.child.ins, DEMO_PASSWORD), service="imap"
    )
    assert principal.account == accounts.child


async def test_an_app_mailbox_accepts_only_its_certificate(
    store: Store, accounts: DemoAccounts
) -> None:
    with pytest.raises(AuthenticationFailed) as failed:
        await authenticator(store, require_otp=False).authenticate(
            PasswordCredentials(accounts.reports.address, DEMO_PASSWORD), service="submission"
        )
    assert failed.value.reason == "method-not-allowed"

    pki = session_pki()
    certificate = pki.issue_org("990000001", "CH DEMO", service="LOGICIEL_CR")
    peer = identity(certificate.certificate)
    await store.accounts.add_certificate(
        accounts.reports.id, CertificateIdentity(fingerprint=peer.fingerprint_sha256)
    )
    principal = await authenticator(store).authenticate(
        ExternalCredentials(""), peer=peer, service="submission"
    )
    assert principal.account == accounts.reports
    assert principal.method is AuthMethod.CERTIFICATE
    assert principal.detail == peer.label


async def test_external_without_a_certificate_or_with_an_unregistered_one(
    store: Store, accounts: DemoAccounts
) -> None:
    auth = authenticator(store)
    with pytest.raises(AuthenticationFailed) as failed:
        await auth.authenticate(ExternalCredentials(""), service="imap")
    assert failed.value.reason == "no-certificate"
    stranger = identity(session_pki().issue_person("10000000009", "INCONNU", "Jean").certificate)
    with pytest.raises(AuthenticationFailed) as failed:
        await auth.authenticate(ExternalCredentials(""), peer=stranger, service="imap")
    assert failed.value.reason == "no-account"


async def test_a_person_certificate_registered_by_rpps(
    store: Store, accounts: DemoAccounts
) -> None:
    person = identity(session_pki().issue_person("10003461033", "MARTIN", "Alice").certificate)
    await store.accounts.add_certificate(accounts.doctor.id, CertificateIdentity(rpps=person.rpps))
    principal = await authenticator(store).authenticate(
        ExternalCredentials(""), peer=person, service="imap"
    )
    assert principal.account == accounts.doctor


async def test_bearer_token_of_a_registered_subject(
    store: Store, accounts: DemoAccounts, issuer_key: rsa.RSAPrivateKey
) -> None:
    await store.accounts.add_oauth_subject(accounts.doctor.id, "810003461033")
    auth = authenticator(store, issuer_key)
    principal = await auth.authenticate(
        BearerCredentials(token(issuer_key, "810003461033")), service="imap"
    )
    assert principal.account == accounts.doctor
    assert principal.method is AuthMethod.BEARER
    with pytest.raises(AuthenticationFailed) as failed:
        await auth.authenticate(
            BearerCredentials(token(issuer_key, "899999999999")), service="imap"
        )
    assert failed.value.reason == "no-account"
    with pytest.raises(AuthenticationFailed) as failed:
        await auth.authenticate(BearerCredentials("garbage"), service="imap")
    assert failed.value.reason == "token-malformed"
    with pytest.raises(AuthenticationFailed) as failed:
        await authenticator(store).authenticate(BearerCredentials("x"), service="imap")
    assert failed.value.reason == "bearer-not-configured"


async def test_a_member_acts_in_the_org_mailbox_and_a_guardian_for_the_child(
    store: Store, accounts: DemoAccounts
) -> None:
    auth = authenticator(store, require_otp=False)
    principal = await auth.authenticate(
        PasswordCredentials(
            accounts.secretary.address, DEMO_PASSWORD, authzid=accounts.secretariat.address
        ),
        service="imap",
    )
    assert principal.account == accounts.secretary
    assert principal.acting_as == accounts.secretariat
    assert principal.acting_for_another
    guardian = await auth.authenticate(
        PasswordCredentials(accounts.parent.address, DEMO_PASSWORD, authzid=accounts.child.address),
        service="webmail",
    )
    assert guardian.acting_as == accounts.child
    assert await auth.may_send_as(guardian, accounts.child.address)
    assert not await auth.may_send_as(guardian, accounts.doctor.address)
    with pytest.raises(AuthenticationFailed) as failed:
        await auth.authenticate(
            PasswordCredentials(
                accounts.secretary.address, DEMO_PASSWORD, authzid=accounts.doctor.address
            ),
            service="imap",
        )
    assert failed.value.reason == "authzid-refused"


async def test_repeated_failures_lock_the_account_for_the_lockout_duration(
    store: Store, accounts: DemoAccounts
) -> None:
    clock = Clock()
    auth = authenticator(
        store, clock=clock, require_otp=False, failures_before_lockout=3, lockout_duration=60
    )
    wrong = PasswordCredentials(accounts.doctor.address, "not-the-password")
    right = PasswordCredentials(accounts.doctor.address.upper(), DEMO_PASSWORD)
    for _ in range(3):
        with pytest.raises(AuthenticationFailed):
            await auth.authenticate(wrong, service="imap")
    with pytest.raises(AuthenticationFailed) as locked:
        await auth.authenticate(right, service="imap")  # even the right password
    assert locked.value.reason == "locked"
    clock.now += 61
    assert (await auth.authenticate(right, service="imap")).account == accounts.doctor


async def test_a_lockout_is_seen_by_another_process_and_a_success_forgives(
    store: Store, accounts: DemoAccounts
) -> None:
    """Two authenticators on one database share nothing in memory, as two processes (or one
    before and after a restart) would: the failures counted by one lock the other."""
    clock = Clock()
    options: dict[str, Any] = {
        "require_otp": False,
        "failures_before_lockout": 3,
        "lockout_duration": 60,
    }
    first, second = (authenticator(store, clock=clock, **options) for _ in range(2))
    wrong = PasswordCredentials(accounts.doctor.address, "not-the-password")
    right = PasswordCredentials(accounts.doctor.address, DEMO_PASSWORD)
    for auth in (first, second):
        with pytest.raises(AuthenticationFailed):
            await auth.authenticate(wrong, service="smtp")
    await second.authenticate(right, service="smtp")  # a success forgives the two failures
    for auth in (first, second, first):
        with pytest.raises(AuthenticationFailed):
            await auth.authenticate(wrong, service="smtp")
    with pytest.raises(AuthenticationFailed) as locked:
        await second.authenticate(right, service="imap")
    assert locked.value.reason == "locked"
    clock.now += 61
    assert (await second.authenticate(right, service="imap")).account.id == accounts.doctor.id


async def test_a_citizen_counts_as_one_whether_named_by_ins_or_address(
    store: Store, accounts: DemoAccounts
) -> None:
    """A citizen may log in with the INS alone: the failures count under the address, the key
    the webmail and `pli mailbox unlock` use too."""
    clock = Clock()
    auth = authenticator(
        store, clock=clock, require_otp=False, failures_before_lockout=3, lockout_duration=60
    )
    address = accounts.parent.address
    ins = address.split("@")[0]
    for username in (ins, ins.upper(), f" {address.upper()} "):
        with pytest.raises(AuthenticationFailed):
            await auth.authenticate(PasswordCredentials(username, "wrong"), service="imap")
    with pytest.raises(AuthenticationFailed) as locked:
        await auth.authenticate(PasswordCredentials(ins, DEMO_PASSWORD), service="imap")
    assert locked.value.reason == "locked"
    since = datetime.fromtimestamp(clock.now - 60, UTC)
    assert await store.login_failures.count(address, since=since) == 3
    assert await store.login_failures.clear(address) == 3
    unlocked = await auth.authenticate(PasswordCredentials(ins, DEMO_PASSWORD), service="imap")
    assert unlocked.account.id == accounts.parent.id


async def test_attempts_side_by_side_get_no_guess_past_the_limit(
    store: Store, accounts: DemoAccounts
) -> None:
    """Six wrong passwords at once with a limit of three: three are checked, three locked
    (without the per-key serialisation all six counted no failure and were checked)."""
    auth = authenticator(store, require_otp=False, failures_before_lockout=3, lockout_duration=60)
    wrong = PasswordCredentials(accounts.doctor.address, "not-the-password")
    outcomes = await asyncio.gather(
        *(auth.authenticate(wrong, service="smtp") for _ in range(6)), return_exceptions=True
    )
    reasons = sorted(o.reason for o in outcomes if isinstance(o, AuthenticationFailed))
    assert reasons == ["bad-password"] * 3 + ["locked"] * 3


async def test_failures_older_than_the_window_are_forgotten(store: Store) -> None:
    """The table holds one window of failures, whatever the keys (user names sprayed)."""
    failures = store.login_failures
    start = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    for second in range(5):
        at = start + timedelta(seconds=second)
        await failures.record(f"user{second}@x.fr", at, forget_before=at - timedelta(minutes=1))
    assert await failures.count("user0@x.fr", since=start) == 1
    later = start + timedelta(minutes=2)
    await failures.record("other@x.fr", later, forget_before=later - timedelta(minutes=1))
    async with store.db.read() as conn:
        keys = (await conn.execute(select(LoginFailureRow.key))).scalars().all()
    assert keys == ["other@x.fr"]


async def test_a_user_name_longer_than_an_address_is_cut_not_refused(store: Store) -> None:
    at = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    hostile = "a" * 5000
    await store.login_failures.record(hostile, at, forget_before=at)
    assert await store.login_failures.count(hostile, since=at) == 1
    await store.login_failures.clear(hostile)
    assert await store.login_failures.count(hostile, since=at) == 0


async def test_disabled_and_unknown_accounts(store: Store, accounts: DemoAccounts) -> None:
    auth = authenticator(store, require_otp=False)
    await store.accounts.set_disabled(accounts.doctor.id, True)
    for username, reason in (
        (accounts.doctor.address, "disabled"),
        ("nobody@x.fr", "unknown-user"),
    ):
        with pytest.raises(AuthenticationFailed) as failed:
            await auth.authenticate(PasswordCredentials(username, DEMO_PASSWORD), service="imap")
        assert failed.value.reason == reason


def test_every_account_kind_has_its_accepted_methods() -> None:
    from pli.mailbox.auth.service import ACCEPTED_METHODS

    assert set(ACCEPTED_METHODS) == set(AccountKind)
    assert ACCEPTED_METHODS[AccountKind.APP] == {AuthMethod.CERTIFICATE}
