"""Typed errors of the mail store; front ends turn them into protocol replies at one boundary.

:class:`StoreUserError` and its subclasses are the caller's mistake (IMAP ``NO``, HTTP 4xx, a CLI
message): their ``str()`` is safe to show. Anything else raised by the store is a server error.
"""

from __future__ import annotations


class StoreError(Exception):
    """Base of every error the store raises on purpose."""


class StoreUserError(StoreError):
    """A request that cannot be done as asked; the text is safe to show to the user."""


class NotFound(StoreUserError):
    """No such account, folder, message or entry."""


class AlreadyExists(StoreUserError):
    """The account, folder or entry exists already."""


class InvalidRequest(StoreUserError):
    """Malformed or forbidden arguments (bad folder name, INBOX deletion, bad flag, …)."""


class TooLarge(StoreUserError):
    """A message over the configured size limit."""


class StoreUnavailable(StoreError):
    """The database or the message files cannot be reached; the request may be retried."""
