"""The IMAP session layer: typed commands of the protocol core executed against the mail store
for one authenticated principal (see :mod:`.session`). Must not do I/O of its own."""

from .session import ImapSession
from .state import BufferedOutput, SessionRegistry, SessionServices

__all__ = ["BufferedOutput", "ImapSession", "SessionRegistry", "SessionServices"]
