"""Listing cursors: what the store gives comes back to the same place; anything else is a 400."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pli.docstore.store import DocstoreError, decode_cursor, encode_cursor


@given(
    st.datetimes(
        min_value=datetime(1900, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
    ),
    st.integers(min_value=1, max_value=2**63 - 1),
)
def test_a_cursor_round_trips(when: datetime, seq: int) -> None:
    assert decode_cursor(encode_cursor(when, seq)) == (when, seq)


@given(st.text(max_size=200))
def test_any_other_text_is_refused_as_a_bad_cursor(text: str) -> None:
    try:
        when, seq = decode_cursor(text)
    except DocstoreError as error:
        assert (error.status, error.reason) == (400, "invalid-cursor")
    else:
        assert when.tzinfo is not None
        assert isinstance(seq, int)


@pytest.mark.parametrize("text", ["", "=", "%%%", "MjAyNQ", "bm8tcGlwZQ", "YXxi"])
def test_malformed_cursors(text: str) -> None:
    with pytest.raises(DocstoreError):
        decode_cursor(text)
