"""Filing attachments into citizens' health document stores: a durable outbox, a worker that
sends it over HTTP with retries and idempotency, the states citizens see, automatic rules.

    state = await request_filing(store, citizen, folder_id, uid, "2")   # the webmail's "save"
    states = await filings_for(store, citizen, folder_id, uid)          # pending/filed/failed
    worker = FilingWorker(store, settings); await worker.start()        # `pli serve` runs it

Start at :mod:`.outbox` (requests, states, leases), then :mod:`.worker` (sending, retries),
:mod:`.documents` (what is sent: attachments, IHE_XDM documents), :mod:`.client` (the store's
HTTP API and how its answers are read), :mod:`.scanner` and :mod:`.rules` (automatic filing),
:mod:`.keys` (idempotency), :mod:`.reasons` (codes and the citizen's French texts).

This package talks to the document store over HTTP only, like to any deployment's own store: it
must not import ``pli.docstore`` (nor ``pli.mailgateway``).
"""

from .client import Actor, DocstoreClient, Filed, Outcome, Refused, TryLater, classify
from .outbox import (
    FilingForbidden,
    filings_for,
    get_filing,
    list_filings,
    pending_count,
    request_filing,
    retry_filings,
)
from .reasons import FilingStatus, citizen_text, failure_text
from .records import DocumentResult, FilingState
from .scanner import RuleScanner
from .worker import FilingUnavailable, FilingWorker

__all__ = [
    "Actor",
    "DocstoreClient",
    "DocumentResult",
    "Filed",
    "FilingForbidden",
    "FilingState",
    "FilingStatus",
    "FilingUnavailable",
    "FilingWorker",
    "Outcome",
    "Refused",
    "RuleScanner",
    "TryLater",
    "citizen_text",
    "classify",
    "failure_text",
    "filings_for",
    "get_filing",
    "list_filings",
    "pending_count",
    "request_filing",
    "retry_filings",
]
