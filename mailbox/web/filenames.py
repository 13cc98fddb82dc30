"""File names of attachments, made safe for a ``Content-Disposition`` header and a disk.

A name from a message is anything its sender wrote: slashes, control characters, 10,000
characters, quotes that would end the header parameter, ``..``. The header gets an ASCII
fallback (``filename="…"``) and the exact UTF-8 name (``filename*=UTF-8''…``, RFC 6266 §4.3 with
RFC 8187's encoding), both from a cleaned name: no path, no control or format characters, no
leading dots, at most :data:`MAX_FILENAME` characters with the extension kept.

Pure functions; never raise.
"""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import quote

#: Characters kept of a file name (common file systems allow 255 bytes; 150 characters of
#: UTF-8 stay under that for most scripts).
MAX_FILENAME = 150
#: Characters kept of an extension when a long name is shortened.
MAX_EXTENSION = 10
FALLBACK_NAME = "piece-jointe"
#: RFC 8187 §3.2.1 attr-char, besides ALPHA and DIGIT (``quote`` keeps those).
_ATTR_CHARS = "!#$&+-.^_`|~"
_UNSAFE = re.compile(r'[/\\:*?"<>|;]')


def _visible(character: str) -> bool:
    return unicodedata.category(character)[0] not in ("C", "Z") or character == " "


def clean_filename(name: str) -> str:
    """A name safe to offer for saving: no path, no control, format or line characters, no
    leading dot, bounded length; the fallback name when nothing is left."""
    text = unicodedata.normalize("NFC", name)
    text = text.replace("\\", "/").rsplit("/", 1)[-1]  # the last path element only
    text = "".join(character if _visible(character) else " " for character in text)
    text = _UNSAFE.sub("_", text)
    text = " ".join(text.split()).lstrip(". ").rstrip(". ")
    if len(text) > MAX_FILENAME:
        stem, dot, extension = text.rpartition(".")
        if dot and 0 < len(extension) <= MAX_EXTENSION:
            text = f"{stem[: MAX_FILENAME - len(extension) - 1]}.{extension}"
        else:
            text = text[:MAX_FILENAME]
    return text or FALLBACK_NAME


def ascii_fallback(name: str) -> str:
    """The ``filename=`` value for old clients: accents removed, other non-ASCII as ``_``."""
    decomposed = unicodedata.normalize("NFKD", name)
    text = "".join(
        character if character.isascii() else "_"
        for character in decomposed
        if not unicodedata.combining(character)
    )
    return text.strip() or FALLBACK_NAME


def content_disposition(disposition: str, name: str) -> str:
    """``attachment`` or ``inline`` with both forms of the cleaned name (RFC 6266 §4.3)."""
    cleaned = clean_filename(name)
    return (
        f'{disposition}; filename="{ascii_fallback(cleaned)}"; '
        f"filename*=UTF-8''{quote(cleaned, safe=_ATTR_CHARS)}"
    )
