"""SASL mechanisms (RFC 4616 PLAIN, LOGIN, RFC 4422 EXTERNAL, RFC 7628 OAUTHBEARER, XOAUTH2)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pli.mailbox.auth.sasl import (
    MAX_SASL_RESPONSE,
    BearerCredentials,
    Challenge,
    ExternalCredentials,
    PasswordCredentials,
    SaslError,
    SaslExchange,
)


def test_plain_with_initial_response() -> None:
    result = SaslExchange("plain").step(b"\x00dupont@ch.mssante.fr\x00s3cret123456")
    assert result == PasswordCredentials("dupont@ch.mssante.fr", "s3cret123456", "")


def test_plain_without_initial_response_gets_an_empty_challenge_first() -> None:
    exchange = SaslExchange("PLAIN")
    assert exchange.step(None) == Challenge(b"")
    result = exchange.step("secrétariat\x00jean@x.fr\x00mot-de-passé".encode())
    assert result == PasswordCredentials("jean@x.fr", "mot-de-passé", "secrétariat")


@pytest.mark.parametrize(
    "response",
    [b"user\x00pass", b"\x00\x00pass", b"\x00user\x00", b"a\x00b\x00c\x00d", b"\x00u\xff\x00p"],
)
def test_malformed_plain_is_refused(response: bytes) -> None:
    with pytest.raises(SaslError):
        SaslExchange("PLAIN").step(response)


def test_login_asks_user_name_then_password() -> None:
    exchange = SaslExchange("LOGIN")
    assert exchange.step(None) == Challenge(b"Username:")
    assert exchange.step(b"jean@x.fr") == Challenge(b"Password:")
    assert exchange.step(b"pw") == PasswordCredentials("jean@x.fr", "pw")


def test_external_with_and_without_authorization_identity() -> None:
    assert SaslExchange("EXTERNAL").step(b"") == ExternalCredentials("")
    assert SaslExchange("EXTERNAL").step(b"app@ch.mssante.fr") == ExternalCredentials(
        "app@ch.mssante.fr"
    )


def test_oauthbearer_rfc_7628_example() -> None:
    response = (
        b"n,a=user@example.com,\x01host=server.example.com\x01port=143\x01"
        b"auth=Bearer vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==\x01\x01"
    )
    result = SaslExchange("OAUTHBEARER").step(response)
    assert result == BearerCredentials(
        token="vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==", authzid="user@example.com"
    )


def test_oauthbearer_failure_sends_json_then_refuses_the_dummy_reply() -> None:
    exchange = SaslExchange("OAUTHBEARER")
    exchange.step(b"n,,\x01auth=Bearer abc\x01\x01")
    challenge = exchange.bearer_failure_challenge(scope="mail")
    assert json.loads(challenge.data) == {"status": "invalid_token", "scope": "mail"}
    with pytest.raises(SaslError, match="authentication failed"):
        exchange.step(b"\x01")


@pytest.mark.parametrize(
    "response",
    [
        b"n,,auth=Bearer abc",  # no ^A separator
        b"p=tls-unique,,\x01auth=Bearer abc\x01\x01",  # channel binding not supported
        b"n,user,\x01auth=Bearer abc\x01\x01",
        b"n,,\x01auth=Basic abc\x01\x01",
        b"n,,\x01auth=Bearer \x01\x01",
        b"n,,\x01host\x01\x01",
    ],
)
def test_malformed_oauthbearer_is_refused(response: bytes) -> None:
    with pytest.raises(SaslError):
        SaslExchange("OAUTHBEARER").step(response)


def test_xoauth2() -> None:
    result = SaslExchange("XOAUTH2").step(b"user=jean@x.fr\x01auth=Bearer tok\x01\x01")
    assert result == BearerCredentials(token="tok", authzid="jean@x.fr")


def test_unknown_mechanism_and_oversized_response() -> None:
    with pytest.raises(SaslError, match="unsupported mechanism"):
        SaslExchange("CRAM-MD5")
    with pytest.raises(SaslError, match="too long"):
        SaslExchange("PLAIN").step(b"\x00u\x00" + b"p" * MAX_SASL_RESPONSE)


@given(
    st.sampled_from(["PLAIN", "LOGIN", "EXTERNAL", "OAUTHBEARER", "XOAUTH2"]),
    st.lists(st.binary(max_size=64), max_size=3),
)
def test_any_bytes_give_a_challenge_credentials_or_sasl_error(
    mechanism: str, responses: list[bytes]
) -> None:
    exchange = SaslExchange(mechanism)
    for response in responses:
        try:
            exchange.step(response)
        except SaslError:
            return
