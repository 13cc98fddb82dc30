"""ENVELOPE and BODY/BODYSTRUCTURE (RFC 3501 §7.4.2; RFC 9051 §7.5.2): input shapes, formatters.

The input shapes are plain frozen dataclasses, in protocol order, close to what the store's
MIME cache (mailbox/mime: envelope.py, structure.py) holds, so the session adapts one to the
other field by field:

- :class:`Envelope` — ``date, subject, from_, sender, reply_to, to, cc, bcc, in_reply_to,
  message_id``. Strings are the raw (unfolded) header values, encoded words left as they are;
  None is NIL. Address lists are tuples of :data:`Address` 4-tuples ``(name, adl, mailbox,
  host)``; RFC 2822 groups use RFC 3501's markers ``(None, None, "group", None)`` … ``(None,
  None, None, None)``; None or an empty tuple is NIL. An empty ``sender``/``reply_to`` is sent
  as ``from_`` (RFC 3501 §7.4.2 requires the server to default them).
- :class:`BodyPart` — one MIME part: ``type``/``subtype`` (sent as given), ``params`` (name,
  value) pairs, ``id``, ``description``, ``encoding``, ``size`` (octets), ``lines`` (text/* and
  message/rfc822), ``md5``, ``disposition`` (value, params), ``language``, ``location``;
  ``parts`` (non-empty: a multipart, whose own fields are its subtype and extension data);
  ``envelope`` and ``message`` (message/rfc822 and message/global: the encapsulated message).

:func:`format_envelope` and :func:`format_body` return the parenthesised value; with
``extensible`` True (BODYSTRUCTURE) the extension data is included, without it (BODY) not.
Strings are quoted, or literals when 8-bit, multi-line or long (:mod:`.wire`).

Must not: parse messages (the store's MIME module does).
"""

from __future__ import annotations

from dataclasses import dataclass

from .wire import encode_text, nstring_text, string_text

Address = tuple[str | None, str | None, str | None, str | None]
AddressList = tuple[Address, ...] | None
Params = tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class Envelope:
    date: str | None = None
    subject: str | None = None
    from_: AddressList = None
    sender: AddressList = None
    reply_to: AddressList = None
    to: AddressList = None
    cc: AddressList = None
    bcc: AddressList = None
    in_reply_to: str | None = None
    message_id: str | None = None


@dataclass(frozen=True, slots=True)
class BodyPart:
    type: str = "text"
    subtype: str = "plain"
    params: Params = ()
    id: str | None = None
    description: str | None = None
    encoding: str = "7BIT"
    size: int = 0
    lines: int | None = None
    md5: str | None = None
    disposition: tuple[str, Params] | None = None
    language: tuple[str, ...] | None = None
    location: str | None = None
    parts: tuple[BodyPart, ...] = ()
    envelope: Envelope | None = None
    message: BodyPart | None = None


def _address_list(addresses: AddressList) -> str:
    if not addresses:
        return "NIL"
    ns = nstring_text
    return (
        "("
        + "".join(
            [
                f"({ns(name)} {ns(adl)} {ns(mailbox)} {ns(host)})"
                for name, adl, mailbox, host in addresses
            ]
        )
        + ")"
    )


def _envelope_text(envelope: Envelope) -> str:
    ns = nstring_text
    sender_from = _address_list(envelope.from_)
    sender = _address_list(envelope.sender) if envelope.sender else sender_from
    reply_to = _address_list(envelope.reply_to) if envelope.reply_to else sender_from
    return (
        f"({ns(envelope.date)} {ns(envelope.subject)} {sender_from} {sender} {reply_to} "
        f"{_address_list(envelope.to)} {_address_list(envelope.cc)} "
        f"{_address_list(envelope.bcc)} {ns(envelope.in_reply_to)} {ns(envelope.message_id)})"
    )


def format_envelope(envelope: Envelope) -> bytes:
    """``("date" "subject" ((from)) ((sender)) ((reply-to)) to cc bcc "in-reply-to" "id")``."""
    return encode_text(_envelope_text(envelope))


def _params(params: Params) -> str:
    if not params:
        return "NIL"
    return (
        "("
        + " ".join([f"{string_text(name)} {string_text(value)}" for name, value in params])
        + ")"
    )


def _disposition(disposition: tuple[str, Params] | None) -> str:
    if disposition is None:
        return "NIL"
    value, params = disposition
    return f"({string_text(value)} {_params(params)})"


def _language(language: tuple[str, ...] | None) -> str:
    if not language:
        return "NIL"
    if len(language) == 1:
        return string_text(language[0])
    return "(" + " ".join([string_text(tag) for tag in language]) + ")"


def _extension(part: BodyPart) -> str:
    """The extension data shared by body-ext-1part and body-ext-mpart after their first
    member: disposition, language, location."""
    return (
        f"{_disposition(part.disposition)} {_language(part.language)} {nstring_text(part.location)}"
    )


def _body_text(part: BodyPart, extensible: bool) -> str:
    if part.parts:
        children = "".join([_body_text(child, extensible) for child in part.parts])
        if not extensible:
            return f"({children} {string_text(part.subtype)})"
        # body-ext-mpart
        return f"({children} {string_text(part.subtype)} {_params(part.params)} {_extension(part)})"
    text = (
        f"({string_text(part.type)} {string_text(part.subtype)} {_params(part.params)} "
        f"{nstring_text(part.id)} {nstring_text(part.description)} "
        f"{string_text(part.encoding)} {part.size}"
    )
    if part.envelope is not None and part.message is not None:  # body-type-msg
        inner = _body_text(part.message, extensible)
        text += f" {_envelope_text(part.envelope)} {inner} {part.lines or 0}"
    elif part.type.lower() == "text":  # body-type-text
        text += f" {part.lines or 0}"
    if extensible:  # body-ext-1part
        text += f" {nstring_text(part.md5)} {_extension(part)}"
    return text + ")"


def format_body(part: BodyPart, extensible: bool = True) -> bytes:
    """BODYSTRUCTURE (``extensible``) or BODY of ``part`` (RFC 3501 §7.4.2 ``body``)."""
    return encode_text(_body_text(part, extensible))


def fetch_envelope(envelope: Envelope) -> bytes:
    return b"ENVELOPE " + format_envelope(envelope)


def fetch_body_structure(part: BodyPart, extensible: bool) -> bytes:
    return (b"BODYSTRUCTURE " if extensible else b"BODY ") + format_body(part, extensible)
