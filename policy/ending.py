"""What ends an exchange (policy P4): the subject ``[FIN]`` and the header ``X-MSS-MES: FIN``.

This module is the only place where the meaning of ``[FIN]`` lives; the store records the effects
(:mod:`pli.policy.effects`) and never reads subjects itself.

Which subjects count (decided here, with reasons; mssante.md §4, product.md P4):

- ``[FIN]`` counts, and so do ``[fin]`` / ``[Fin]``: the ANS FAQ says the subject is "exactly
  [FIN]", which rules out any other text, not a lower-case spelling of the same word; a
  professional typing ``[fin]`` means it, and nobody writes ``[fin]`` meaning anything else.
  Only ASCII letters match (``[fın]`` with a dotless i, ``[ＦＩＮ]`` in full width do not).
- Surrounding whitespace is ignored (``[FIN] ``, `` [FIN]``, a folded header's tab): clients add
  it, header folding (RFC 5322 §2.2.3) leaves it, and nobody sees it. Only ASCII whitespace
  (space, tab, CR, LF) is trimmed.
- Nothing else counts: ``Re: [FIN]``, ``TR: [FIN]``, ``Fwd: [FIN]``, ``[FIN] merci``, ``[ FIN ]``,
  ``FIN``. A reply or forward prefix means the message is about another message, not an end;
  "exactly" leaves no room for more text. A professional who wants to end the exchange with a
  message that also says something uses ``X-MSS-MES: FIN``.
- The subject is the decoded one: RFC 2047 encoded-words are decoded by the caller
  (``=?utf-8?q?=5BFIN=5D?=`` is ``[FIN]``).

``X-MSS-MES: FIN`` (Référentiel #2 ECO.2.2.8: "the professional does not want the patient to be
able to reply") ends the exchange whatever the subject: the value is compared without case, with
surrounding ASCII whitespace trimmed; any of several X-MSS-MES headers saying FIN is enough (the
sender's wish not to be answered is never ignored). Any other value is an ordinary message.
"""

from __future__ import annotations

from .facts import MessageTraits

END_SUBJECT = "[FIN]"  # ANS FAQ Mon espace santé; policy P4
END_HEADER_VALUE = "FIN"  # X-MSS-MES, Référentiel #2 ECO.2.2.8; policy P4
_ASCII_WHITESPACE = " \t\r\n"


def _is_token(value: str, token: str) -> bool:
    """``value`` is ``token`` (ASCII, any case) with only ASCII whitespace around it."""
    trimmed = value.strip(_ASCII_WHITESPACE)
    return len(trimmed) == len(token) and trimmed.isascii() and trimmed.upper() == token


def is_end_subject(subject: str) -> bool:
    """The decoded subject ends the exchange (policy P4)."""
    return _is_token(subject, END_SUBJECT)


def is_end_header(values: tuple[str, ...]) -> bool:
    """One of the X-MSS-MES values is FIN (policy P4)."""
    return any(_is_token(value, END_HEADER_VALUE) for value in values)


def ends_exchange(message: MessageTraits) -> bool:
    """A professional's message with these traits ends its exchange with the citizen."""
    return is_end_subject(message.subject) or is_end_header(message.mss_mes)
