"""MAIL FROM and RCPT TO arguments: the path and the ESMTP parameters, parsed strictly.

Grammar (RFC 5321 §4.1.2, §4.1.3)::

    MAIL FROM:<reverse-path> [SP Mail-parameters]      reverse-path = "<" [Mailbox] ">"
    RCPT TO:<forward-path> [SP Rcpt-parameters]        or "<Postmaster>"
    Mailbox = Local-part "@" ( Domain / address-literal )
    esmtp-param = esmtp-keyword ["=" esmtp-value]

Tolerated, as every MTA does: one space after the colon. Refused: a path without angle
brackets, source routes are accepted and ignored (RFC 5321 §4.1.2: "MUST accept ... SHOULD
ignore"), non-ASCII addresses without ``SMTPUTF8`` (RFC 6531 §3.4).

Parameters recognised:

- MAIL: ``SIZE=n`` (RFC 1870), ``BODY=7BIT|8BITMIME`` (RFC 6152), ``SMTPUTF8`` (RFC 6531),
  ``RET=FULL|HDRS`` and ``ENVID=xtext`` (RFC 3461 §4.3-4.4), ``AUTH=xtext`` (RFC 4954 §5,
  recorded only).
- RCPT: ``NOTIFY=NEVER|SUCCESS,FAILURE,DELAY`` and ``ORCPT=addr-type;xtext`` (RFC 3461 §4.1-4.2).

Anything else is ``555 5.5.4``; a malformed value ``501 5.5.4``; a repeated parameter
``501 5.5.4``. Pure functions: the only exception they raise is :class:`SmtpError`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from . import limits
from .replies import (
    BAD_ADDRESS,
    BAD_SENDER_ADDRESS,
    PARAM_NOT_RECOGNISED,
    SMTPUTF8_REQUIRED,
    SYNTAX,
    Reply,
    SmtpError,
)

NOTIFY_VALUES = frozenset({"SUCCESS", "FAILURE", "DELAY"})
RET_VALUES = frozenset({"FULL", "HDRS"})
BODY_VALUES = frozenset({"7BIT", "8BITMIME"})
POSTMASTER = "postmaster"

_KEYWORD = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]*$")
# RFC 5321 §4.1.2 esmtp-value: any CHAR except "=", SP and controls (and UTF-8 with SMTPUTF8).
_VALUE = re.compile(r"^[^=\x00-\x20\x7f]+$")
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]"
_ATEXT_UTF8 = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~\-\u0080-\U0010ffff]"
_DOT_STRING = re.compile(rf"^{_ATEXT}+(\.{_ATEXT}+)*$")
_DOT_STRING_UTF8 = re.compile(rf"^{_ATEXT_UTF8}+(\.{_ATEXT_UTF8}+)*$")
_QUOTED = re.compile(r'^"([\x20\x21\x23-\x5b\x5d-\x7e]|\\[\x20-\x7e])*"$')
_QUOTED_UTF8 = re.compile(r'^"([\x20\x21\x23-\x5b\x5d-\x7e\u0080-\U0010ffff]|\\[\x20-\x7e])*"$')
_LABEL = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")
_LABEL_UTF8 = re.compile(
    r"^[A-Za-z0-9\u0080-\U0010ffff]([A-Za-z0-9\u0080-\U0010ffff-]*[A-Za-z0-9\u0080-\U0010ffff])?$"
)
_IPV4 = re.compile(r"^(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}$")
_XTEXT_HEX = re.compile(r"\+([0-9A-F]{2})")


@dataclass(frozen=True, slots=True)
class MailParams:
    size: int | None = None
    body: str | None = None
    smtputf8: bool = False
    ret: str | None = None  # "FULL" or "HDRS" (RFC 3461 §4.3)
    envid: str | None = None  # decoded (RFC 3461 §4.4)
    auth: str | None = None  # RFC 4954 §5, decoded; recorded, never trusted


@dataclass(frozen=True, slots=True)
class RcptParams:
    notify: tuple[str, ...] | None = None  # ("NEVER",) or a subset of NOTIFY_VALUES
    orcpt: str | None = None  # decoded "addr-type;address" (RFC 3461 §4.2)


def xtext_decode(value: str) -> str:
    """RFC 3461 §4: ``+XX`` is the octet XX (upper-case hex); other characters stand for
    themselves. Refuses a ``+`` not followed by two upper-case hex digits."""
    if not all("!" <= c <= "~" for c in value):
        raise SmtpError(SYNTAX.with_text("Malformed xtext value"))
    stripped = _XTEXT_HEX.sub("", value)
    if "+" in stripped or "=" in stripped:
        raise SmtpError(SYNTAX.with_text("Malformed xtext value"))
    raw = _XTEXT_HEX.sub(lambda m: chr(int(m.group(1), 16)), value)
    return raw.encode("latin-1").decode("utf-8", "replace")


def xtext_encode(value: str) -> str:
    """The xtext form of ``value`` (UTF-8 octets outside 33-126, "+" and "=" as ``+XX``)."""
    out = []
    for octet in value.encode("utf-8"):
        if 33 <= octet <= 126 and octet not in (0x2B, 0x3D):
            out.append(chr(octet))
        else:
            out.append(f"+{octet:02X}")
    return "".join(out)


def _split_path(argument: str, keyword: str) -> tuple[str, str]:
    """``FROM:<path> params`` → (the path inside the brackets, the parameters text)."""
    if argument[: len(keyword)].upper() != keyword:
        raise SmtpError(SYNTAX.with_text(f"Syntax: {keyword}<address> [parameters]"))
    rest = argument[len(keyword) :]
    if rest.startswith(" "):  # tolerated: "MAIL FROM: <a@b>"
        rest = rest[1:]
    if not rest.startswith("<"):
        raise SmtpError(SYNTAX.with_text("Address must be enclosed in <>"))
    closing = _closing_bracket(rest)
    if closing < 0:
        raise SmtpError(SYNTAX.with_text("Address must be enclosed in <>"))
    path, tail = rest[1:closing], rest[closing + 1 :]
    if tail and not tail.startswith(" "):
        raise SmtpError(SYNTAX.with_text("Expected a space before parameters"))
    return path, tail.strip(" ")


def _closing_bracket(text: str) -> int:
    """Index of the ">" closing the path (quoted strings may contain one)."""
    quoted = escaped = False
    for index, char in enumerate(text):
        if escaped:
            escaped = False
        elif char == "\\" and quoted:
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == ">" and not quoted:
            return index
    return -1


def _strip_source_route(path: str) -> str:
    """RFC 5321 §4.1.2 / Appendix C: "@a,@b:user@c" → "user@c" (accepted, ignored)."""
    if path.startswith("@"):
        colon = path.find(":")
        if colon < 0:
            raise SmtpError(BAD_ADDRESS)
        return path[colon + 1 :]
    return path


def _valid_domain(domain: str, utf8: bool) -> bool:
    if domain.startswith("[") and domain.endswith("]"):
        literal = domain[1:-1]
        if literal.upper().startswith("IPV6:"):
            return bool(re.fullmatch(r"[0-9A-Fa-f:.]{2,45}", literal[5:]))
        return bool(_IPV4.match(literal))
    if not domain or len(domain.encode("utf-8")) > limits.DOMAIN:
        return False
    label = _LABEL_UTF8 if utf8 else _LABEL
    return all(label.match(part) for part in domain.rstrip(".").split("."))


def parse_mailbox(path: str, *, utf8: bool, reply: Reply = BAD_ADDRESS) -> str:
    """``local@domain`` checked (RFC 5321 §4.1.2), domain lowered; ``reply`` when malformed."""
    if len(path.encode("utf-8")) > limits.PATH - 2:
        raise SmtpError(reply.with_text("Address too long"))
    if not path.isascii() and not utf8:
        raise SmtpError(SMTPUTF8_REQUIRED)
    local, at, domain = path.rpartition("@")
    if not at or not local:
        raise SmtpError(reply)
    if len(local.encode("utf-8")) > limits.LOCAL_PART:
        raise SmtpError(reply.with_text("Local part longer than 64 octets"))
    dot, quoted = (_DOT_STRING_UTF8, _QUOTED_UTF8) if utf8 else (_DOT_STRING, _QUOTED)
    if not (dot.match(local) or quoted.match(local)):
        raise SmtpError(reply)
    if not _valid_domain(domain, utf8):
        raise SmtpError(reply)
    return f"{local}@{domain.lower().rstrip('.')}"


def _parameters(text: str) -> list[tuple[str, str | None]]:
    found: list[tuple[str, str | None]] = []
    seen: set[str] = set()
    for item in text.split(" ") if text else ():
        if not item:
            continue
        keyword, equals, value = item.partition("=")
        if not _KEYWORD.match(keyword) or (equals and not _VALUE.match(value)):
            raise SmtpError(SYNTAX.with_text(f"Malformed parameter {item[:40]!r}"))
        keyword = keyword.upper()
        if keyword in seen:
            raise SmtpError(SYNTAX.with_text(f"Parameter {keyword} given twice"))
        seen.add(keyword)
        found.append((keyword, value if equals else None))
    return found


def _unknown(keyword: str) -> SmtpError:
    return SmtpError(PARAM_NOT_RECOGNISED.with_text(f"Parameter {keyword} not recognized"))


def _need(keyword: str, value: str | None) -> str:
    if value is None:
        raise SmtpError(SYNTAX.with_text(f"Parameter {keyword} needs a value"))
    return value


def parse_mail(argument: str, *, smtputf8: bool = True, dsn: bool = True) -> tuple[str, MailParams]:
    """``FROM:<a@b> SIZE=…`` → (sender address, "" for the null path; parameters)."""
    path, text = _split_path(argument, "FROM:")
    values: dict[str, object] = {}
    for keyword, value in _parameters(text):
        if keyword == "SIZE":
            digits = _need(keyword, value)
            if not digits.isdigit() or len(digits) > 20:
                raise SmtpError(SYNTAX.with_text("SIZE must be a number"))
            values["size"] = int(digits)
        elif keyword == "BODY":
            body = _need(keyword, value).upper()
            if body not in BODY_VALUES:
                raise SmtpError(SYNTAX.with_text("BODY must be 7BIT or 8BITMIME"))
            values["body"] = body
        elif keyword == "SMTPUTF8" and smtputf8:
            if value is not None:
                raise SmtpError(SYNTAX.with_text("SMTPUTF8 takes no value"))
            values["smtputf8"] = True
        elif keyword == "RET" and dsn:
            ret = _need(keyword, value).upper()
            if ret not in RET_VALUES:
                raise SmtpError(SYNTAX.with_text("RET must be FULL or HDRS"))
            values["ret"] = ret
        elif keyword == "ENVID" and dsn:
            envid = xtext_decode(_need(keyword, value))
            if len(envid) > limits.ENVID:
                raise SmtpError(SYNTAX.with_text("ENVID longer than 100 characters"))
            values["envid"] = envid
        elif keyword == "AUTH":
            values["auth"] = xtext_decode(_need(keyword, value))
        else:
            raise _unknown(keyword)
    params = MailParams(**values)  # type: ignore[arg-type]
    path = _strip_source_route(path)
    if not path:
        return "", params
    return parse_mailbox(path, utf8=params.smtputf8, reply=BAD_SENDER_ADDRESS), params


def parse_notify(value: str) -> tuple[str, ...]:
    """RFC 3461 §4.1: NEVER alone, or a comma list of SUCCESS, FAILURE, DELAY."""
    items = tuple(item.upper() for item in value.split(","))
    if items == ("NEVER",):
        return items
    if (
        not items
        or any(item not in NOTIFY_VALUES for item in items)
        or len(set(items)) != len(items)
    ):
        raise SmtpError(SYNTAX.with_text("NOTIFY must be NEVER or SUCCESS,FAILURE,DELAY"))
    return items


def parse_orcpt(value: str) -> str:
    """RFC 3461 §4.2: ``addr-type ";" xtext`` → "addr-type;decoded address"."""
    addr_type, semicolon, encoded = value.partition(";")
    if not semicolon or not _KEYWORD.match(addr_type) or not encoded:
        raise SmtpError(SYNTAX.with_text("ORCPT must be addr-type;address"))
    decoded = xtext_decode(encoded)
    if len(decoded) + len(addr_type) + 1 > limits.ORCPT:
        raise SmtpError(SYNTAX.with_text("ORCPT longer than 500 characters"))
    return f"{addr_type.lower()};{decoded}"


def parse_rcpt(
    argument: str, *, smtputf8: bool = False, dsn: bool = True
) -> tuple[str, RcptParams]:
    """``TO:<a@b> NOTIFY=…`` → (recipient, parameters); ``<Postmaster>`` gives "postmaster"."""
    path, text = _split_path(argument, "TO:")
    notify: tuple[str, ...] | None = None
    orcpt: str | None = None
    for keyword, value in _parameters(text):
        if keyword == "NOTIFY" and dsn:
            notify = parse_notify(_need(keyword, value))
        elif keyword == "ORCPT" and dsn:
            orcpt = parse_orcpt(_need(keyword, value))
        else:
            raise _unknown(keyword)
    path = _strip_source_route(path)
    if path.lower() == POSTMASTER:  # RFC 5321 §4.5.1: <Postmaster> without a domain
        return POSTMASTER, RcptParams(notify, orcpt)
    if not path:
        raise SmtpError(BAD_ADDRESS)
    return parse_mailbox(path, utf8=smtputf8), RcptParams(notify, orcpt)
