"""An OCSP responder over HTTP for the test PKI (`pli pki ocsp serve`, and the tests).

It answers POST requests (and GET, RFC 6960 Appendix A.1) for the certificates of the test PKI
from its revocation state, read at every request, so that `pli pki revoke` is seen at once. It
runs in its own threads so that a test, a synchronous command or an event loop can all use it.

This is a test and development tool: production deployments use IGC Santé's responders.
"""

from __future__ import annotations

import datetime as dt
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType

from cryptography import x509

from .ca import CA_ROLES, TestPki
from .ocsp import (
    MAX_REQUEST_SIZE,
    OCSP_RESPONSE_TYPE,
    OcspAnswerer,
    decode_get_path,
)


def answerer_for(pki: TestPki) -> OcspAnswerer:
    """An answerer speaking for every CA of ``pki``."""
    roles = {pki.ca_certificate(role).subject: role for role in CA_ROLES}

    def lookup(
        authority: x509.Certificate, serial: int
    ) -> tuple[str, dt.datetime | None, x509.ReasonFlags | None]:
        return pki.revocation_state(roles[authority.subject], serial)

    return OcspAnswerer([(pki.ca_certificate(r), pki.ca_key(r)) for r in CA_ROLES], lookup)


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:
        try:
            length = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            length = -1
        if not 0 < length <= MAX_REQUEST_SIZE:
            self.send_error(413 if length > MAX_REQUEST_SIZE else 400)
            return
        self._answer(self.rfile.read(length))

    def do_GET(self) -> None:
        self._answer(decode_get_path(self.path))

    def _answer(self, request: bytes) -> None:
        body = self.server.answerer.respond(request)
        self.server.requests += 1
        self.send_response(200)
        self.send_header("Content-Type", OCSP_RESPONSE_TYPE)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the tests count requests instead of reading a log."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], answerer: OcspAnswerer) -> None:
        super().__init__(address, _Handler)
        self.answerer = answerer
        self.requests = 0


class OcspServer:
    """The responder on ``host:port`` (port 0: any free port) until :meth:`stop`."""

    def __init__(self, pki: TestPki, host: str = "127.0.0.1", port: int = 0) -> None:
        self._server = _Server((host, port), answerer_for(pki))
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="ocsp-responder", daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/"

    @property
    def requests(self) -> int:
        """How many requests were answered (tests check caching with it)."""
        return self._server.requests

    def start(self) -> OcspServer:
        self._thread.start()
        return self

    def serve(self) -> None:
        """Serve in the calling thread until KeyboardInterrupt (`pli pki ocsp serve`)."""
        try:
            self._server.serve_forever()
        finally:
            self._server.server_close()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> OcspServer:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
