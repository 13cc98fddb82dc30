"""The IMAP cache of a message: parsed once at delivery or APPEND, stored as JSON in its row.

:func:`pli.mailbox.mime.cache.parse_message` turns raw bytes into a :class:`MessageCache`:
the ENVELOPE of RFC 3501 §7.4.2 (:mod:`.envelope`), the MIME tree with byte offsets for
BODYSTRUCTURE and BODY[section] (:mod:`.structure`), and decoded fields for SEARCH. The parser is
defensive: broken MIME, missing boundaries, 8-bit junk and huge headers give a best-effort result,
never an exception. It reads bytes only: no I/O, no database, no IMAP syntax (the IMAP server turns
the cache into protocol text).
"""
