"""The IMAP server's protocol core, sans-IO (RFC 3501 IMAP4rev1 and the extensions of issue 7).

Bytes in, typed events out; typed responses in, bytes out. This package does no I/O: it imports
neither asyncio, ssl nor the store (h11's design, see docs/imap.md). The session layer executes
commands against the store; the asyncio adapter reads sockets, feeds :class:`ImapConnection`
and writes what it returns.

- :mod:`.connection` — ``ImapConnection``: literals, IDLE, AUTHENTICATE, STARTTLS, state checks;
  :mod:`.events` — what it returns; :mod:`.framing` — octets to whole commands, with the limits.
- :mod:`.commands`, :mod:`.fetch`, :mod:`.search`, :mod:`.flags` — the typed commands;
  :mod:`.reader` and :mod:`.parser` — their grammar (:class:`.errors.ParseError` otherwise).
- :mod:`.states` — the state machine as data.
- :mod:`.response`, :mod:`.wire`, :mod:`.bodystructure`, :mod:`.dates` — the response side.
- :mod:`.mutf7`, :mod:`.sequence`, :mod:`.patterns`, :mod:`.limits` — mailbox names, sequence
  sets, LIST patterns, limits.
"""
