"""One-time codes: RFC 4226 / RFC 6238 test vectors, window, replay, password+code split."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pli.mailbox.auth.totp import hotp, new_secret, split_code, totp, verify_totp

RFC_SECRET = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"  # base32 of ASCII "12345678901234567890"


@pytest.mark.parametrize(
    ("counter", "code"), [(0, "755224"), (1, "287082"), (5, "254676"), (9, "520489")]
)
def test_hotp_matches_rfc_4226_appendix_d(counter: int, code: str) -> None:
    assert hotp(RFC_SECRET, counter) == code


@pytest.mark.parametrize(
    ("at", "code"), [(59, "94287082"), (1111111109, "07081804"), (1234567890, "89005924")]
)
def test_totp_matches_rfc_6238_appendix_b_sha1(at: int, code: str) -> None:
    assert totp(RFC_SECRET, at=at, digits=8) == code


def test_a_code_is_accepted_one_step_either_side_and_not_further() -> None:
    secret = new_secret()
    now = 1_800_000_000.0
    for drift, accepted in ((-60, False), (-30, True), (0, True), (30, True), (60, False)):
        code = totp(secret, at=now + drift)
        assert (verify_totp(secret, code, at=now) is not None) is accepted, drift


def test_a_code_is_accepted_only_once() -> None:
    secret = new_secret()
    now = 1_800_000_000.0
    code = totp(secret, at=now)
    counter = verify_totp(secret, code, at=now)
    assert counter is not None
    assert verify_totp(secret, code, at=now, last_counter=counter) is None


@pytest.mark.parametrize("code", ["", "12345", "1234567", "abcdef", "12 456"])
def test_malformed_codes_are_refused(code: str) -> None:
    assert verify_totp(new_secret(), code) is None


def test_split_password_and_code() -> None:
    assert split_code("motdepasse123456") == ("motdepasse", "123456")
    assert split_code("123456") is None  # no password before the code
    assert split_code("motdepasse") is None
    assert split_code("motdepasse12345a") is None


@given(st.text(max_size=40))
def test_split_never_raises(text: str) -> None:
    result = split_code(text)
    assert result is None or "".join(result) == text
