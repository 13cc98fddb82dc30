"""Address lists (RFC 5322 §3.4) into the address structures of the IMAP ENVELOPE.

Each address is a 4-list ``[name, adl, mailbox, host]`` (RFC 3501 §7.4.2 / RFC 9051 §7.5.2):
``name`` is the display name (phrase, quotes removed, encoded words left as they are), ``adl`` the
obsolete source route (``"@a,@b"``) or None, ``mailbox`` the local part, ``host`` the domain. A
group ``team: a@x, b@y;`` is the marker ``[None, None, "team", None]``, its members, then
``[None, None, None, None]``. An address without a domain gets ``host = "MISSING_DOMAIN"`` and one
without a local part ``mailbox = "MISSING_MAILBOX"`` (never None, which means "group" to IMAP;
the same markers as Dovecot). A comment after an address that has no display name becomes its
name (``user@domain (Real Name)``, as Dovecot reads it); other comments are dropped.

The parser tokenizes once and never raises: junk gives best-effort addresses or none. At most
:data:`MAX_ADDRESSES` addresses are kept per list.
"""

from __future__ import annotations

import re

Address = list[str | None]

#: Addresses kept per header (a hostile To: may list millions; Dovecot caps lists as well).
MAX_ADDRESSES = 1000
MISSING_MAILBOX = "MISSING_MAILBOX"
MISSING_DOMAIN = "MISSING_DOMAIN"

_SPECIALS = "<>,:;@"
_TOKEN = re.compile(
    r"""
      (?P<quoted>"(?:[^"\\]|\\.)*"?)          # quoted string (unterminated: to the end)
    | (?P<space>[ \t\r\n]+)
    | (?P<special>[<>,:;@])
    | (?P<comment>\()
    | (?P<atom>[^ \t\r\n<>,:;@"(]+)
    """,
    re.VERBOSE | re.DOTALL,
)
_UNESCAPE = re.compile(r"\\(.)", re.DOTALL)

# A token: (kind, text) with kind "q" quoted, "a" atom, "s" special, " " space, "c" a comment
# (its text without the outer parentheses; a space everywhere but as a display name).
Token = tuple[str, str]


def _skip_comment(text: str, position: int) -> int:
    """Position after the comment opening at ``text[position] == '('`` (nesting, escapes)."""
    depth = 0
    index = position
    while index < len(text):
        char = text[index]
        if char == "\\":
            index += 2
            continue
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                return index + 1
        index += 1
    return len(text)


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:  # a lone ')' or similar: skip one character
            position += 1
            continue
        kind = match.lastgroup
        if kind == "comment":
            end = _skip_comment(text, position)
            inner = text[position + 1 : end - 1 if text[end - 1 : end] == ")" else end]
            tokens.append(("c", _UNESCAPE.sub(r"\1", inner).strip()))
            position = end
            continue
        value = match.group()
        if kind == "quoted":
            inner = value[1:-1] if len(value) > 1 and value.endswith('"') else value[1:]
            tokens.append(("q", _UNESCAPE.sub(r"\1", inner)))
        elif kind == "space":
            tokens.append((" ", " "))
        elif kind == "special":
            tokens.append(("s", value))
        else:
            tokens.append(("a", value))
        position = match.end()
    return tokens


def _phrase(tokens: list[Token]) -> str | None:
    words: list[str] = []
    pending_space = False
    for kind, text in tokens:
        if kind in (" ", "c"):
            pending_space = bool(words)
            continue
        if pending_space:
            words.append(" ")
            pending_space = False
        words.append(text)
    phrase = "".join(words).strip()
    return phrase or None


def _joined(tokens: list[Token]) -> str:
    """Local part or domain: tokens joined without the spaces around them."""
    return "".join(text for kind, text in tokens if kind not in (" ", "c"))


def _addr_spec(tokens: list[Token]) -> tuple[str, str]:
    """(mailbox, host) from the tokens of ``local@domain`` (the last '@' splits)."""
    at = max(
        (i for i, (kind, text) in enumerate(tokens) if kind == "s" and text == "@"), default=-1
    )
    if at < 0:
        return (_joined(tokens) or MISSING_MAILBOX, MISSING_DOMAIN)
    local = _joined(tokens[:at]) or MISSING_MAILBOX
    host = _joined(tokens[at + 1 :]) or MISSING_DOMAIN
    return local, host


def _angle(tokens: list[Token]) -> tuple[str | None, str, str]:
    """(adl, mailbox, host) from the tokens inside ``<…>``."""
    adl = None
    colon = next((i for i, (k, t) in enumerate(tokens) if k == "s" and t == ":"), -1)
    first = next((text for kind, text in tokens if kind not in (" ", "c")), "")
    if colon >= 0 and first == "@":  # obsolete route: <@a,@b:user@host> (RFC 5322 §4.4)
        adl = _joined(tokens[:colon]) or None
        tokens = tokens[colon + 1 :]
    mailbox, host = _addr_spec([t for t in tokens if not (t[0] == "s" and t[1] in ":;")])
    return adl, mailbox, host


def _mailbox(tokens: list[Token]) -> Address | None:
    """One mailbox from its tokens (name-addr or addr-spec); None if it is empty."""
    if not any(kind not in (" ", "c") for kind, _ in tokens):
        return None
    opening = next((i for i, (k, t) in enumerate(tokens) if k == "s" and t == "<"), -1)
    if opening >= 0:
        closing = next(
            (i for i, (k, t) in enumerate(tokens) if i > opening and k == "s" and t == ">"),
            len(tokens),
        )
        name = _phrase([t for t in tokens[:opening] if t[0] != "s"])
        adl, mailbox, host = _angle(tokens[opening + 1 : closing])
        return [name, adl, mailbox, host]
    mailbox, host = _addr_spec([t for t in tokens if not (t[0] == "s" and t[1] in "<>")])
    last = next(((kind, text) for kind, text in reversed(tokens) if kind != " "), None)
    name = last[1] if last is not None and last[0] == "c" and last[1] else None
    return [name, None, mailbox, host]


# The shapes nearly every header has, read without tokenizing (what the tokenizer would give:
# tests/store/test_mime.py checks it): ``local@host`` and ``Display Name <local@host>`` of atoms.
_ATOM = r"[^ \t\r\n<>,:;@\"()\\]+"
_BARE = re.compile(rf"[ \t]*({_ATOM})@({_ATOM})[ \t]*")
_NAMED = re.compile(rf"[ \t]*((?:{_ATOM}[ \t]+)*{_ATOM})[ \t]*<({_ATOM})@({_ATOM})>[ \t]*")


def parse_address_list(text: str | None) -> list[Address] | None:
    """The IMAP address list of a header value; None when the header is absent or holds none."""
    if text is None:
        return None
    if bare := _BARE.fullmatch(text):
        return [[None, None, bare[1], bare[2]]]
    if named := _NAMED.fullmatch(text):
        return [[" ".join(named[1].split()), None, named[2], named[3]]]
    return parse_tokens(text)


def parse_tokens(text: str) -> list[Address] | None:
    """:func:`parse_address_list` of any value, by its tokens."""
    tokens = tokenize(text)
    result: list[Address] = []
    current: list[Token] = []
    in_group = False
    in_angle = False

    def flush() -> None:
        address = _mailbox(current)
        if address is not None and len(result) < MAX_ADDRESSES:
            result.append(address)
        current.clear()

    for token in tokens:
        kind, value = token
        if kind == "s" and value == "<":
            in_angle = True
        elif kind == "s" and value == ">":
            in_angle = False
        if kind == "s" and not in_angle:
            if value == ",":
                flush()
                continue
            if value == ":" and not in_group and "@" not in _joined(current):
                in_group = True
                if len(result) < MAX_ADDRESSES:
                    result.append([None, None, _phrase(current) or "", None])
                current.clear()
                continue
            if value == ";" and in_group:
                flush()
                result.append([None, None, None, None])
                in_group = False
                continue
        current.append(token)
    flush()
    if in_group:  # unterminated group: close it so that the structure stays balanced
        result.append([None, None, None, None])
    return result or None
