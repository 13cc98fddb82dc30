"""The filing client's limits: each a named constant with where its value comes from.

What an operator may want to change (retry schedule, concurrency, lease, time-outs) is in
``[filing]`` (``config/schema.py``); these are fixed.
"""

from __future__ import annotations

#: A source is a Message-ID (RFC 5322 §2.1.1: at most 998 characters on its line) or
#: "blob:" + a blob id (64 characters).
SOURCE_ID_LENGTH = 1024
#: A MIME part path such as "2.1.3". Our MIME tree goes 100 levels deep (mime/structure.py
#: MAX_MIME_DEPTH) and a level's number is at most 5 digits (10,000 parts): this bound is the
#: document store's for a part path (ebRIM LongName, 256 characters, docs/docstore.md § Limits).
PART_PATH_LENGTH = 256
#: Who acted, as the document store names it (Pli-Actor-Id: ebRIM LongName, 256 characters).
ACTOR_ID_LENGTH = 256
#: A reason code (ours, the XDM reader's or the document store's: short kebab-case words).
REASON_LENGTH = 64

#: The document store's bounds on filing fields (docs/docstore.md § Limits): longer values are
#: cut, never refused, so that a long file name does not stop a document from being filed.
TITLE_LENGTH = 1024  # ebRIM FreeFormText
NAME_LENGTH = 256  # ebRIM LongName: author names and identifiers, part paths
CODE_LENGTH = 64  # a code or its scheme OID
MESSAGE_ID_LENGTH = 998  # RFC 5322 §2.1.1
MEDIA_TYPE_LENGTH = 255  # RFC 6838 §4.2: 127-character type and subtype names
#: The document store's bound on an Idempotency-Key (docs/docstore.md § Limits).
IDEMPOTENCY_KEY_LENGTH = 2048

#: A Retry-After asking for more than this is capped (seconds): a store answering "come back
#: tomorrow" must not park a filing for a day when it may be back in minutes.
MAX_RETRY_AFTER = 3600.0

#: Messages examined per transaction by the automatic rules (one transaction advances the
#: folder's mark and enqueues what they found).
SCAN_BATCH = 200
#: Folders remembered as "not a citizen INBOX" so that change-feed events for professional
#: mailboxes cost one lookup, not one per event.
NON_CITIZEN_FOLDER_CACHE = 10_000

#: Characters of a store's answer or a transport error kept in the row for operators.
ERROR_TEXT_LENGTH = 500
