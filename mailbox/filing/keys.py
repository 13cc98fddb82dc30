"""The names of a filing: which attachment it is (the outbox's unique key) and the
Idempotency-Key each of its documents is filed under in the document store.

- A **source** is the message's Message-ID, or ``blob:<blob id>`` when it has none (a copy of
  the message in another folder shares its file, hence its blob id).
- The **source key** (unique per citizen account in the outbox) is ``sha256(source, part)``: the
  same attachment of the same message is one filing, however many times it is asked for (a
  double click, an automatic rule and a click, two folders holding the message).
- The **idempotency key** of a document names the source, the part (and the document's path in
  an IHE_XDM package) and the SHA-256 of the bytes: the retry of a filing the store already did
  gets the same document back (200), and two different messages that reuse a Message-ID never
  collide (``409 idempotency-key-reused``). ``generation`` is added when a citizen asks again
  for a document they had deleted from the store (which answers ``410`` for the old key).

Pure functions.
"""

from __future__ import annotations

import hashlib
import re

from .limits import IDEMPOTENCY_KEY_LENGTH

_HEADER_SAFE = re.compile(r"^[\x21-\x7e]+$")  # visible ASCII: an HTTP field value as it is


def source_of(message_id: str, blob_id: str) -> str:
    return message_id if message_id else f"blob:{blob_id}"


def digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def source_key(source: str, part: str) -> str:
    return digest(f"{source}\x00{part}")


def idempotency_key(source: str, source_part: str, content_sha256: str, generation: int) -> str:
    """The store's Idempotency-Key of one document of a filing."""
    key = f"pli:{source}#{source_part}@{content_sha256[:32]}"
    if generation:
        key += f"~{generation}"
    if len(key) > IDEMPOTENCY_KEY_LENGTH or not _HEADER_SAFE.match(key):
        key = f"pli:sha256:{digest(key)}"
    return key


def actor_id(value: str, fallback: str) -> str:
    """A Pli-Actor-Id the store accepts (visible ASCII, ≤ 256), else ``fallback``."""
    return value if value and len(value) <= 256 and _HEADER_SAFE.match(value) else fallback
