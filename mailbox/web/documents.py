""" "Enregistrer dans mes documents": the filing client (``pli.mailbox.filing``) behind the
webmail's :class:`~.context.Filing` interface.

The request commits with its audit record (``filing-request``, naming the acting guardian); the
filing worker sends it to the document store, retries, and records the outcome, which the
message page shows (pending, filed, failed with a French reason). Asking twice files once.
"""

from __future__ import annotations

from collections.abc import Sequence

from pli.mailbox.filing.outbox import filings_for, request_filing
from pli.mailbox.filing.records import FilingState
from pli.mailbox.store import Account, Store


class StoreFiling:
    def __init__(self, store: Store) -> None:
        self.store = store

    async def request(
        self, citizen: Account, folder_id: int, uid: int, part: str, *, actor: Account
    ) -> FilingState:
        return await request_filing(self.store, citizen, folder_id, uid, part, actor=actor)

    async def states(self, citizen: Account, folder_id: int, uid: int) -> Sequence[FilingState]:
        return await filings_for(self.store, citizen, folder_id, uid)
