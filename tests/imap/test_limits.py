"""The limits: from the configuration, their floors, the command rate limiter on a fake clock,
and the SASL line limit against the SASL module's own."""

from __future__ import annotations

import base64
import math

import pytest
from plitest.imap_wire import run

from pli.config.schema import LimitsSection, Settings
from pli.mailbox.imap import commands as c
from pli.mailbox.imap.connection import ImapConnection
from pli.mailbox.imap.events import SaslResponse
from pli.mailbox.imap.limits import (
    COMMAND_BURST,
    MAX_SASL_LINE,
    MIN_LINE_LENGTH,
    CommandRateLimiter,
    Limits,
)


def test_limits_from_settings() -> None:
    settings = Settings(
        limits=LimitsSection(
            message_size="10MiB",
            imap_line_length="16KiB",
            imap_commands_per_second=50,
            imap_idle_timeout="31m",
            imap_sessions_per_account=3,
        )
    )
    limits = Limits.from_settings(settings)
    assert limits.message_size == 10 * 1024 * 1024
    assert limits.line_length == 16384
    assert limits.commands_per_second == 50
    assert limits.idle_timeout == 31 * 60
    assert limits.sessions_per_account == 3
    assert Limits.from_settings(Settings()).line_length == 65536


def test_line_length_floor_of_rfc_7162() -> None:
    Limits(line_length=MIN_LINE_LENGTH)
    with pytest.raises(ValueError, match="RFC 7162"):
        Limits(line_length=MIN_LINE_LENGTH - 1)
    with pytest.raises(ValueError, match="message_size"):
        Limits(message_size=0)


def test_line_length_limit_is_the_configured_one() -> None:
    limits = Limits(line_length=10000)
    fits = b"a LOGIN " + b"x" * (10000 - len(b"a LOGIN ") - 2) + b" y\r\n"
    assert run([fits], limits=limits).commands[0].name == "LOGIN"
    over = b"a LOGIN " + b"x" * (10000 - len(b"a LOGIN ") - 1) + b" y\r\n"
    assert run([over], limits=limits).errors[0].text == "Command line too long"
    # at the boundary the verdict does not depend on where the packets are cut
    for offset in range(len(fits) - 4, len(fits)):
        assert run([fits[:offset], fits[offset:]], limits=limits).errors == []
        assert run([over[:offset], over[offset:]], limits=limits).errors != []


def test_sasl_line_holds_the_largest_response_the_sasl_module_accepts() -> None:
    from pli.mailbox.auth.sasl import MAX_SASL_RESPONSE

    assert 4 * math.ceil(MAX_SASL_RESPONSE / 3) <= MAX_SASL_LINE
    conn = ImapConnection()
    conn.receive_data(b"a AUTHENTICATE OAUTHBEARER\r\n")
    assert conn.next_event() == c.Authenticate("a", "OAUTHBEARER")
    conn.send_sasl_challenge(b"")
    token = b"n,,\x01auth=Bearer " + b"x" * (MAX_SASL_RESPONSE - 20) + b"\x01\x01"
    conn.receive_data(base64.b64encode(token) + b"\r\n")
    assert conn.next_event() == SaslResponse("a", token)


def test_rate_limiter_lets_a_burst_through_then_paces() -> None:
    limiter = CommandRateLimiter(rate=10, burst=COMMAND_BURST)
    now = 1000.0
    assert [limiter.delay(now) for _ in range(COMMAND_BURST)] == [0.0] * COMMAND_BURST
    assert limiter.delay(now) == pytest.approx(0.1)
    assert limiter.delay(now) == pytest.approx(0.2)
    # the client waited as told: one command every 0.1 s is the steady rate
    now += 0.2
    assert limiter.delay(now) == pytest.approx(0.1)
    # after a long pause the burst is back, never more than the burst
    now += 3600
    assert [limiter.delay(now) for _ in range(COMMAND_BURST)] == [0.0] * COMMAND_BURST
    assert limiter.delay(now) > 0


def test_rate_limiter_ignores_a_clock_going_backwards() -> None:
    limiter = CommandRateLimiter(rate=1, burst=1)
    assert limiter.delay(10.0) == 0.0
    assert limiter.delay(5.0) == pytest.approx(1.0)
    with pytest.raises(ValueError):
        CommandRateLimiter(rate=0)
