"""The submission pipeline as the mailbox side sees it: a Protocol, implemented in mailgateway.

The webmail (replies, writing to a pharmacy, read receipts) and the bulk sender hand a complete
message to an injected :class:`Submitter`; they never speak SMTP to their own server. The
implementation (``mailgateway/submission.py``) checks that the principal may use the envelope
sender and the From: address, asks the policy once per recipient (policy P8: each refusal with
its reason and French text), adds what a submission agent adds (Message-ID, Date; RFC 6409 §8),
signs, delivers local recipients and queues remote ones durably, and answers per recipient.

``mail_from`` may be empty: the null reverse-path ``<>`` of delivery reports and read receipts
(RFC 8098 §3: an MDN's envelope sender MUST be null); the From: header then still names the
principal's mailbox.

This module holds types only: no I/O, no policy, no protocol.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from pli.mailbox.auth.service import Principal


@dataclass(frozen=True, slots=True)
class RecipientResult:
    """What happened to one recipient.

    ``accepted``: delivered here or queued for another operator. Otherwise ``temporary`` tells a
    deferral (try again later) from a permanent refusal. ``reason`` is the policy's stable code
    (``citizen-reply``, ``thread-closed``, …) or the pipeline's own (``sender-not-allowed``,
    ``message-too-large``); ``text`` is French, for the person who wrote."""

    recipient: str
    accepted: bool
    reason: str
    text: str
    smtp_code: int = 250
    enhanced_code: str = "2.0.0"
    temporary: bool = False


@dataclass(frozen=True, slots=True)
class SubmissionResult:
    """The message as submitted (``message_id`` without angle brackets) and one result per
    recipient, in the order given."""

    message_id: str
    recipients: tuple[RecipientResult, ...]

    @property
    def accepted(self) -> tuple[RecipientResult, ...]:
        return tuple(result for result in self.recipients if result.accepted)

    @property
    def refused(self) -> tuple[RecipientResult, ...]:
        return tuple(result for result in self.recipients if not result.accepted)


class SubmissionRefused(Exception):
    """The whole message was refused before any recipient was considered (the principal may not
    use this sender, the message is malformed or too large). ``text`` is French and safe to show;
    ``reason`` a stable code."""

    def __init__(self, reason: str, text: str) -> None:
        super().__init__(f"{reason}: {text}")
        self.reason = reason
        self.text = text


class Submitter(Protocol):
    """``await submit(principal, mail_from, recipients, raw)``.

    ``principal.account`` is who acts (a guardian, say) and ``principal.acting_as`` the mailbox
    the message is sent from (policy P9: the audit records both). ``raw`` is the complete message
    (CRLF line ends). Raises :class:`SubmissionRefused` for a message refused as a whole; never
    raises for a recipient's refusal (that is a :class:`RecipientResult`)."""

    async def __call__(
        self,
        principal: Principal,
        mail_from: str,
        recipients: Sequence[str],
        raw: bytes,
    ) -> SubmissionResult: ...
