"""Request body limits, answered with the store's own Problem body (ASGI middleware).

A filing (POST to a citizen's ``documents``) may carry a document of ``max_document_size`` plus
the form fields' allowance; any other request a small JSON object. A declared Content-Length
over the limit is refused before the body is parsed: up to ``DRAIN_LIMIT`` bytes of it are read
and discarded first, so that a client which does not read while it sends (most do not) gets the
answer instead of a reset (nginx's "lingering close"); past that, the connection is closed. A
body that grows past the limit while being read (chunked transfer) stops the read with a 413
(raised as an HTTPException, which FastAPI lets through its body parsing to the error handler).

Starlette's own limiter answers in plain text and replaces any other 413 body, so it is not
used.
"""

from __future__ import annotations

import json
import re

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

_FILING_PATH = re.compile(r"^/v1/citizens/[^/]+/documents/?$")
_TOO_LARGE_TEXT = "the request body is larger than the store accepts"
#: Bytes of a refused body read and thrown away before answering (bounded time, no memory).
DRAIN_LIMIT = 32 * 1024 * 1024


class BodyLimit:
    def __init__(self, app: ASGIApp, *, filing_limit: int, other_limit: int) -> None:
        self.app = app
        self.filing_limit = filing_limit
        self.other_limit = other_limit

    def limit_for(self, scope: Scope) -> int:
        filing = scope["method"] == "POST" and _FILING_PATH.match(scope["path"])
        return self.filing_limit if filing else self.other_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope)
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await _drain(receive, declared)
            await _refuse(send)
            return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise HTTPException(413, _TOO_LARGE_TEXT)
            return message

        await self.app(scope, limited_receive, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # h11 refuses a malformed Content-Length before we see it
    return None


async def _drain(receive: Receive, declared: int) -> None:
    if declared > DRAIN_LIMIT:
        return
    drained = 0
    while drained <= DRAIN_LIMIT:
        message = await receive()
        if message["type"] != "http.request":
            return
        drained += len(message.get("body", b""))
        if not message.get("more_body", False):
            return


async def _refuse(send: Send) -> None:
    body = json.dumps({"reason": "request-too-large", "detail": _TOO_LARGE_TEXT}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
