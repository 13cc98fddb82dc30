"""The document store's limits: each a named constant with where its value comes from.

Limits an operator may want to change (document size, page size) are configuration keys
(``[docstore]`` in ``config/schema.py``); their defaults live there, these are the fixed ones.
"""

from __future__ import annotations

#: Bytes a filing request may carry beyond the document itself: the multipart boundaries and the
#: metadata fields (a title of MAX_TITLE_LENGTH UTF-8 characters is ≤ 4 KiB; a few identifiers).
FORM_FIELDS_ALLOWANCE = 64 * 1024

#: Largest body of a request without a document (visibility changes): a small JSON object.
SMALL_BODY_LIMIT = 16 * 1024

#: ebRIM 3.0 FreeFormText (the type of a DocumentEntry title): 1024 characters.
MAX_TITLE_LENGTH = 1024
#: ebRIM 3.0 LongName: author names, identifiers, part paths.
MAX_NAME_LENGTH = 256
#: A code and its coding scheme (a LOINC code, an OID of at most 64 characters, ISO/IEC 9834-1
#: as profiled by HL7 for II.root).
MAX_CODE_LENGTH = 64
#: RFC 5322 §2.1.1: a header line, hence a Message-ID, is at most 998 characters.
MAX_MESSAGE_ID_LENGTH = 998
#: An idempotency key (draft-ietf-httpapi-idempotency-key-header §2 sets no bound: ours).
MAX_IDEMPOTENCY_KEY_LENGTH = 2048
#: A declared media type (RFC 6838 §4.2: type and subtype names of at most 127 characters each).
MAX_MEDIA_TYPE_LENGTH = 255

#: The largest listing page a client may ask for (the default is ``docstore.page_size``).
MAX_PAGE_SIZE = 500

#: Bytes at the start of a document read to recognise its type.
SNIFF_HEAD = 4096
#: Bytes at the end of a PDF searched for its ``%%EOF`` marker (ISO 32000-1 §7.5.5 puts it on
#: the last line; readers tolerate trailing bytes, Acrobat looks within the last 1024).
PDF_TAIL = 1024

#: Chunk size when copying an upload into the store.
COPY_CHUNK = 1024 * 1024

#: SQLite: how long a writer waits for the write lock before the request fails (seconds).
SQLITE_BUSY_TIMEOUT = 10.0

#: A temporary upload file older than this at start-up is an abandoned one (seconds).
ABANDONED_UPLOAD_AGE = 3600.0
