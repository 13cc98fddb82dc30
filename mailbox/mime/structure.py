"""The MIME tree of a message, with byte offsets, for BODYSTRUCTURE and BODY[section].

Every part is a JSON object (dict) with these keys::

    type, subtype     lowercased ("text", "plain"); a missing or invalid Content-Type gives
                      text/plain (RFC 2045 §5.2), message/rfc822 inside multipart/digest
    params            Content-Type parameters, [[name, value], …], names lowercased, in order
    id, description   Content-ID, Content-Description (raw strings) or None
    encoding          Content-Transfer-Encoding uppercased, "7BIT" when absent
    size              body size in octets (body[1] - body[0])
    lines             text/* and message/rfc822|global: lines in the body, else None
    md5               Content-MD5 or None
    disposition       None or [value lowercased, params]   (RFC 2183)
    language          None or [tag, …]                    (Content-Language, RFC 3282)
    location          Content-Location or None            (RFC 2557)
    header            [start, end]: the part's header section, the blank line included
    body              [start, end]: the part's body; offsets are absolute in the raw message
    parts             multipart/* only: the child parts, in order (never empty)
    envelope          message/rfc822|global only: the encapsulated message's ENVELOPE
    message           message/rfc822|global only: the encapsulated message's root part, whose
                      header is the encapsulated header and whose body its body

So BODY[HEADER] is ``raw[root.header[0]:root.header[1]]``, BODY[TEXT] ``raw[root.body…]``,
BODY[1.2.MIME] the header of part 1.2, BODY[2.HEADER]/BODY[2.TEXT] the header/body of
``part2.message``. Part numbers (RFC 3501 §6.4.5): the children of a multipart are numbered from 1;
a non-multipart message's (or encapsulated message's) body is part 1; the parts of an
encapsulated message's multipart body continue the number of the message/rfc822 part.

A multipart body is split on lines ``--boundary`` at a line start (RFC 2046 §5.1.1): the line end
before a delimiter belongs to the delimiter, the preamble and epilogue belong to no part, a missing
close delimiter ends the last part at the end of the body. A multipart without a boundary
parameter or with no part found is a text/plain leaf. Beyond :data:`MAX_MIME_DEPTH` nesting or
:data:`MAX_MIME_PARTS` parts, a multipart or message part is an application/octet-stream leaf.
Pure function of the bytes; never raises.
"""

from __future__ import annotations

import re
from typing import Any

from .envelope import build_envelope
from .headers import HeaderSection, parse_header
from .params import parse_content_type, parse_disposition, split_params

Part = dict[str, Any]

#: Nesting of multipart/message parts followed (Dovecot's default message_max_nested_mime_parts
#: is 100); deeper content stays one opaque leaf.
MAX_MIME_DEPTH = 100
#: Parts described per message (Dovecot's default message_max_total_mime_parts is 10000).
MAX_MIME_PARTS = 10000

_ENCAPSULATED = ("rfc822", "global")  # RFC 2046 §5.2.1, RFC 6532 §3.5
_PADDING = re.compile(rb"[ \t]*(\r?\n|$)")


class _Budget:
    def __init__(self) -> None:
        self.parts = 0


def parse_structure(raw: bytes, header: HeaderSection | None = None) -> Part:
    """The root part of ``raw`` (the whole message); ``header``: its header section when the
    caller parsed it already (``parse_header(raw)``)."""
    if header is None:
        header = parse_header(raw)
    return _part(raw, header, len(raw), ("text", "plain"), 0, _Budget())


def _part(
    raw: bytes,
    header: HeaderSection,
    end: int,
    default: tuple[str, str],
    depth: int,
    budget: _Budget,
) -> Part:
    budget.parts += 1
    main, sub, params = parse_content_type(header.first("content-type"), default)
    body_start = header.body_start
    part: Part = {
        "type": main,
        "subtype": sub,
        "params": params,
        "id": header.first("content-id"),
        "description": header.first("content-description"),
        "encoding": (header.first("content-transfer-encoding") or "7BIT").strip().upper(),
        "size": end - body_start,
        "lines": None,
        "md5": header.first("content-md5"),
        "disposition": parse_disposition(header.first("content-disposition")),
        "language": _languages(header.first("content-language")),
        "location": header.first("content-location"),
        "header": [header.start, body_start],
        "body": [body_start, end],
    }
    nested_allowed = depth < MAX_MIME_DEPTH and budget.parts < MAX_MIME_PARTS
    if main == "multipart":
        if not nested_allowed:
            return _opaque(part)
        boundary = next((value for name, value in params if name == "boundary"), None)
        ranges = _split_multipart(raw, body_start, end, boundary) if boundary else []
        if not ranges:
            part.update(type="text", subtype="plain", params=[["charset", "us-ascii"]])
            part["lines"] = _lines(raw, body_start, end)
            return part
        child_default = ("message", "rfc822") if sub == "digest" else ("text", "plain")
        children: list[Part] = []
        for start, stop in ranges:
            if budget.parts >= MAX_MIME_PARTS:  # the rest stays one opaque leaf
                last = children[-1] if children else None
                if last is not None:
                    last["body"][1] = ranges[-1][1]
                    last["size"] = last["body"][1] - last["body"][0]
                break
            child_header = parse_header(raw, start, stop)
            children.append(_part(raw, child_header, stop, child_default, depth + 1, budget))
        part["parts"] = children
        return part
    if main == "message" and sub in _ENCAPSULATED:
        if not nested_allowed:
            return _opaque(part)
        inner_header = parse_header(raw, body_start, end)
        part["envelope"] = build_envelope(inner_header)
        part["message"] = _part(raw, inner_header, end, ("text", "plain"), depth + 1, budget)
        part["lines"] = _lines(raw, body_start, end)
        return part
    if main == "text":
        part["lines"] = _lines(raw, body_start, end)
    return part


def _opaque(part: Part) -> Part:
    part.update(type="application", subtype="octet-stream", params=[])
    return part


def _lines(raw: bytes, start: int, end: int) -> int:
    count = raw.count(b"\n", start, end)
    if end > start and raw[end - 1 : end] != b"\n":
        count += 1
    return count


def _split_multipart(raw: bytes, start: int, end: int, boundary: str) -> list[tuple[int, int]]:
    """Body ranges of the parts between delimiter lines; [] when no delimiter is found."""
    delimiter = b"--" + boundary.encode("utf-8", "surrogateescape")
    positions: list[tuple[int, int, bool]] = []  # (delimiter start, next line start, closing)
    search = start
    while True:
        found = raw.find(delimiter, search, end)
        if found < 0:
            break
        search = found + 1
        if found != start and raw[found - 1 : found] != b"\n":
            continue
        after = found + len(delimiter)
        closing = raw.startswith(b"--", after) and after + 2 <= end
        if closing:
            line_end = raw.find(b"\n", after, end)
            positions.append((found, end if line_end < 0 else line_end + 1, True))
            break
        padding = _PADDING.match(raw, after, end)
        if padding is None:
            continue  # "--boundaryXYZ": a longer line, not a delimiter
        positions.append((found, padding.end(), False))
        search = padding.end()
    ranges = []
    for index, (_, content_start, closing) in enumerate(positions):
        if closing:
            break
        if index + 1 < len(positions):
            next_delimiter = positions[index + 1][0]
            stop = next_delimiter
            if raw[stop - 2 : stop] == b"\r\n" and stop - 2 >= content_start:
                stop -= 2
            elif raw[stop - 1 : stop] == b"\n" and stop - 1 >= content_start:
                stop -= 1
        else:
            stop = end
        ranges.append((content_start, max(stop, content_start)))
    return ranges


def _languages(value: str | None) -> list[str] | None:
    if value is None:
        return None
    tags = [tag.strip() for tag in split_params(value)[0].split(",") if tag.strip()]
    return tags or None


def iter_parts(part: Part, section: str = "") -> list[tuple[str, Part]]:
    """Every part with its IMAP section number ("" for the root), depth first. The body of a
    single-part message is also listed as part "1" (the same dict)."""
    found = [(section, part)]
    if "parts" in part:
        for index, child in enumerate(part["parts"], start=1):
            found += iter_parts(child, f"{section}.{index}" if section else str(index))
    elif section == "":
        found += iter_parts(part, "1")
    elif "message" in part:
        inner = part["message"]
        if "parts" in inner:
            for index, child in enumerate(inner["parts"], start=1):
                found += iter_parts(child, f"{section}.{index}")
        else:
            found += iter_parts(inner, f"{section}.1")
    return found
