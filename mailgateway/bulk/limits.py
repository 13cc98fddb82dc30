"""Every bound of the bulk sender, named, with where its value comes from. The bounds an
operator may change are in the ``[bulk]`` configuration section (``config/schema.py``); these
are the fixed ones.
"""

from __future__ import annotations

#: A campaign id: lower-case letters, digits, '.', '_', '-', at most this long (it becomes part
#: of every Message-ID, whose left part RFC 5322 §3.6.4 keeps to dot-atom text).
CAMPAIGN_ID_LENGTH = 64
#: A row key (the CSV's ``cle`` column, else the INS): long enough for an appointment id.
ROW_KEY_LENGTH = 128
#: A stable reason code (policy reasons are under 40 characters).
REASON_LENGTH = 64
#: Characters in one CSV cell: a free field is a date, a place, a name, not a letter.
MAX_FIELD_LENGTH = 2000
#: Columns in the recipients file (a hospital export has tens).
MAX_COLUMNS = 200
#: A template file (subject or body): a letter, not a book.
MAX_TEMPLATE_SIZE = 256 * 1024
#: A rendered subject, in characters (the webmail's bound: RFC 5322 §2.1.1's 78-character line
#: advice, folded over a few lines).
MAX_SUBJECT_LENGTH = 200
#: A rendered body, in characters.
MAX_BODY_LENGTH = 200_000
#: Attachments named by one CSV row, and common to every message.
MAX_ROW_ATTACHMENTS = 10
MAX_COMMON_ATTACHMENTS = 10
#: A campaign definition file (TOML or JSON).
MAX_DEFINITION_SIZE = 256 * 1024
#: After a temporary refusal (the policy's facts could not be read: 451 4.4.3), a row is tried
#: again after these delays (seconds), then refused for good with the last reason.
DEFERRAL_DELAYS = (30.0, 120.0, 600.0)
#: Rows whose Message-ID is looked up in one query when a crashed run is recovered.
RECOVERY_CHUNK = 500
#: Rows inserted per statement when a campaign is registered (SQLite's 32,766 parameters per
#: statement, SQLITE_MAX_VARIABLE_NUMBER, at 11 columns a row).
INSERT_CHUNK = 500
