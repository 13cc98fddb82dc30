"""DATA reception, sans-IO: the end marker, dot-unstuffing, limits, bare CR/LF; the same result
however the bytes are cut; hypothesis: never an exception, memory bounded."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pli.mailgateway.smtp.data import DataReceiver, _has_line_longer_than
from pli.mailgateway.smtp.limits import DATA_LINE, TEXT_LINE


def receive(chunks: list[bytes], limit: int = 10_000) -> DataReceiver:
    receiver = DataReceiver(limit)
    for chunk in chunks:
        receiver.feed(chunk)  # after the end, what follows is kept as leftover
    return receiver


def every_cut(data: bytes) -> list[list[bytes]]:
    cuts = [[data], [data[i : i + 1] for i in range(len(data))]]
    cuts += [[data[:i], data[i:]] for i in range(1, len(data))]
    return cuts


def outcome(receiver: DataReceiver) -> tuple[object, ...]:
    message = receiver.message() if receiver.done and receiver.problem is None else None
    return receiver.done, receiver.problem, message, receiver.leftover


STREAM = b"Subject: x\r\n\r\n..dotted\r\n.\r\nhello\r\n\r\n.\r\nQUIT\r\n"


def test_the_end_marker_unstuffing_and_what_follows() -> None:
    receiver = receive([STREAM])
    assert receiver.done and receiver.problem is None
    assert receiver.message() == b"Subject: x\r\n\r\n.dotted\r\n"
    assert receiver.leftover == b"hello\r\n\r\n.\r\nQUIT\r\n"


def test_the_same_outcome_however_the_bytes_are_cut() -> None:
    expected = outcome(receive([STREAM]))
    for chunks in every_cut(STREAM):
        assert outcome(receive(chunks)) == expected, chunks


def test_an_empty_message() -> None:
    receiver = receive([b".\r\nNOOP\r\n"])
    assert receiver.message() == b"" and receiver.leftover == b"NOOP\r\n"


def test_no_end_yet() -> None:
    receiver = receive([b"abc\r\n.\r", b"x\r\n"])
    assert not receiver.done


@pytest.mark.parametrize(
    ("line", "accepted"),
    [
        (b"x" * TEXT_LINE, True),
        (b"x" * (TEXT_LINE + 1), False),
        (b"." + b"x" * TEXT_LINE, True),  # 998 octets once the transparency dot is removed
        (b"." + b"x" * (TEXT_LINE + 1), False),
    ],
)
def test_the_998_octet_line_limit(line: bytes, accepted: bool) -> None:
    receiver = receive([b"a\r\n" + line + b"\r\nb\r\n.\r\n"], limit=10**6)
    assert receiver.done
    assert (receiver.problem is None) is accepted
    if not accepted:
        assert receiver.problem is not None and receiver.problem.line.startswith("554 5.6.0")


def test_a_line_without_end_is_cut_and_the_stream_stays_in_step() -> None:
    receiver = receive([b"x" * (DATA_LINE * 5), b"\r\n.\r\nNOOP\r\n"], limit=10**6)
    assert receiver.done and receiver.problem is not None
    assert receiver.leftover == b"NOOP\r\n"


@pytest.mark.parametrize("extra", [0, 1])
def test_the_size_limit_and_one_past_it(extra: int) -> None:
    limit = 10
    receiver = receive([b"x" * (limit - 2 + extra) + b"\r\n.\r\n"], limit=limit)
    assert receiver.done
    if extra:
        assert receiver.problem is not None and receiver.problem.line.startswith("552 5.3.4")
        assert receiver.size == limit + 1
    else:
        assert receiver.problem is None and len(receiver.message()) == limit


def test_memory_stays_bounded_past_the_limit() -> None:
    receiver = DataReceiver(1000)
    for _ in range(200):
        receiver.feed(b"x" * 500 + b"\r\n")
    assert receiver._parts == [] and len(receiver._pending) < 4 * DATA_LINE
    assert receiver.feed(b".\r\n") and receiver.problem is not None


@pytest.mark.parametrize("smuggled", [b"\n.\n", b"\r.\r\n", b"\n.\r\n", b"\r\n.\n"])
def test_bare_cr_or_lf_never_end_the_data_and_refuse_the_message(smuggled: bytes) -> None:
    stream = b"Subject: a\r\n\r\nhello" + smuggled + b"MAIL FROM:<evil@x.fr>\r\n\r\n.\r\nQUIT\r\n"
    for chunks in every_cut(stream):
        receiver = receive(chunks)
        assert receiver.done
        assert receiver.problem is not None and receiver.problem.line.startswith("554 5.6.11")
        assert receiver.leftover == b"QUIT\r\n"


@pytest.mark.parametrize("ending", [b"\r\r\n.\r\n", b"\n\r\n.\r\n"])
def test_a_real_end_after_a_bare_line_end_ends_a_refused_message(ending: bytes) -> None:
    """CR CR LF . CR LF holds a real <CRLF>.<CRLF>: the data ends there (RFC 5321 §4.1.1.4),
    refused for its bare CR/LF; the session then closes (test_security), so nothing after it
    is read as a command."""
    receiver = receive([b"Subject: a\r\n\r\nhello" + ending + b"MAIL FROM:<evil@x.fr>\r\n"])
    assert receiver.done and receiver.problem is not None
    assert receiver.problem.line.startswith("554 5.6.11")
    assert receiver.leftover == b"MAIL FROM:<evil@x.fr>\r\n"


@settings(max_examples=300)
@given(st.lists(st.binary(max_size=64), max_size=20), st.integers(min_value=1, max_value=300))
def test_any_bytes_cut_anyhow_never_raise(chunks: list[bytes], limit: int) -> None:
    receiver = DataReceiver(limit)
    for chunk in chunks:
        receiver.feed(chunk)
    receiver.feed(b"\r\n.\r\n")
    assert receiver.done
    if receiver.problem is None:
        message = receiver.message()
        assert len(message) <= limit
        assert b"\r\n.\r\n" not in b"\r\n" + message


@given(st.binary(max_size=200), st.integers(min_value=1, max_value=199))
def test_cutting_does_not_change_the_outcome(data: bytes, cut: int) -> None:
    stream = data + b"\r\n.\r\nREST"
    whole = outcome(receive([stream]))
    assert outcome(receive([stream[:cut], stream[cut:]])) == whole


@given(
    st.lists(st.binary(max_size=12).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b""))),
    st.integers(min_value=0, max_value=10),
)
def test_the_long_line_gate_agrees_with_measuring_every_line(
    lines: list[bytes], limit: int
) -> None:
    content = b"".join(line + b"\r\n" for line in lines)
    expected = any(len(line) > limit for line in lines)
    assert _has_line_longer_than(content, limit) is expected
