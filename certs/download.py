"""Bounded HTTP reads for the trust space: ANS's whitelist and its checksum, OCSP answers.

A peer we download from is not trusted with our memory or our time: the body is read in chunks
and abandoned past ``max_size``, the whole exchange within ``timeout``. Every failure is a
:class:`DownloadError` whose message completes a sentence starting with the URL.
"""

from __future__ import annotations

import time

import httpx

#: Redirects followed when asked (GitHub's raw files redirect once).
MAX_REDIRECTS = 5


class DownloadError(Exception):
    """Nothing usable came back; the message says why ("answered HTTP 500", …)."""


def fetch_bounded(
    method: str,
    url: str,
    *,
    max_size: int,
    timeout: float,
    content: bytes | None = None,
    headers: dict[str, str] | None = None,
    follow_redirects: bool = False,
) -> bytes:
    """The body of a 200 answer to ``method url``, at most ``max_size`` bytes, all of it within
    ``timeout`` (httpx's own timeout bounds each read: a server trickling a byte at a time
    would never trip it)."""
    deadline = time.monotonic() + timeout
    try:
        with (
            httpx.Client(
                timeout=timeout, follow_redirects=follow_redirects, max_redirects=MAX_REDIRECTS
            ) as client,
            client.stream(method, url, content=content, headers=headers) as response,
        ):
            if response.status_code != 200:
                raise DownloadError(f"answered HTTP {response.status_code}")
            body = bytearray()
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) > max_size:
                    raise DownloadError(f"sent more than {max_size} bytes")
                if time.monotonic() > deadline:
                    raise httpx.ReadTimeout("the whole answer took too long")
            return bytes(body)
    except httpx.TimeoutException:
        raise DownloadError(f"gave no complete answer within {timeout:g} s") from None
    except httpx.HTTPError as error:
        raise DownloadError(f"unreachable: {type(error).__name__}") from None
