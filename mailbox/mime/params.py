"""Structured MIME header values: ``type/subtype; name=value; …`` (RFC 2045 §5.1) and
``disposition; name=value`` (RFC 2183), parsed leniently.

Parameter names are lowercased; values keep their text with quotes removed and backslash escapes
resolved; RFC 2231 forms (``filename*0*=…``) are kept as sent (IMAP passes them through;
:func:`display_filename` decodes them for people). Never raises.
"""

from __future__ import annotations

import email.utils
import re

from .text import decode_header_text

Params = list[list[str]]

#: Parameters kept per header field (a hostile part may carry thousands).
MAX_PARAMS = 100

_TOKEN = re.compile(r"^[!#$%&'*+\-.0-9A-Z^_`a-z{|}~]+$")  # RFC 2045 §5.1 token


def split_params(value: str) -> tuple[str, Params]:
    """The value before the first ';' (stripped, lowercased) and the parameters after it."""
    pieces: list[str] = []
    current: list[str] = []
    quoted = False
    escaped = False
    for char in value:
        if escaped:
            current.append(char)
            escaped = False
        elif char == "\\" and quoted:
            current.append(char)
            escaped = True
        elif char == '"':
            quoted = not quoted
            current.append(char)
        elif char == ";" and not quoted:
            pieces.append("".join(current))
            current = []
        else:
            current.append(char)
    pieces.append("".join(current))
    head = _strip_comments(pieces[0]).strip().lower()
    params: Params = []
    for piece in pieces[1:]:
        name, equals, raw = piece.partition("=")
        name = name.strip().lower()
        if not equals or not name or len(params) >= MAX_PARAMS:
            continue
        params.append([name, _unquote(raw.strip())])
    return head, params


def _strip_comments(text: str) -> str:
    return re.sub(r"\([^()]*\)", "", text)


def _unquote(value: str) -> str:
    if len(value) >= 2 and value.startswith('"') and value.endswith('"'):
        return re.sub(r"\\(.)", r"\1", value[1:-1], flags=re.DOTALL)
    if value.startswith('"'):
        return value[1:]
    return value


def parse_content_type(value: str | None, default: tuple[str, str]) -> tuple[str, str, Params]:
    """(type, subtype, params); a missing or invalid type gives ``default`` (RFC 2045 §5.2:
    text/plain; charset=us-ascii for an ordinary part)."""
    if value is None:
        params = [["charset", "us-ascii"]] if default == ("text", "plain") else []
        return default[0], default[1], params
    head, params = split_params(value)
    main, slash, sub = head.partition("/")
    main, sub = main.strip(), sub.strip()
    if not slash or not _TOKEN.match(main) or not _TOKEN.match(sub):
        return "text", "plain", [["charset", "us-ascii"]]
    return main, sub, params


def parse_disposition(value: str | None) -> list[object] | None:
    """``[disposition, params]`` (disposition lowercased) or None when absent or empty."""
    if value is None:
        return None
    head, params = split_params(value)
    if not head:
        return None
    return [head, params]


def param(params: Params, name: str) -> str | None:
    for key, value in params:
        if key == name:
            return value
    return None


def display_filename(params: Params) -> str | None:
    """A file name for people from ``filename``/``name`` parameters: RFC 2231 continuations and
    charsets (``filename*=utf-8''r%C3%A9sultat.pdf``) and RFC 2047 encoded words decoded."""
    for name in ("filename", "name"):
        related = [(k, v) for k, v in params if k == name or k.startswith(name + "*")]
        if not related:
            continue
        try:
            decoded = email.utils.decode_params([("", ""), *related])
            for key, value in decoded[1:]:
                if key == name:
                    text = email.utils.unquote(str(email.utils.collapse_rfc2231_value(value)))
                    return _decode_words(text)
        except (ValueError, LookupError, TypeError, IndexError):
            return _decode_words(related[0][1])
    return None


def _decode_words(text: str) -> str:
    return decode_header_text(text) or text
