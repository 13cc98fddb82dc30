"""A store killed (SIGKILL) in the middle of filings and started again: every filing is there
once, with its bytes; nothing lost, nothing duplicated.

- A batch: four clients file concurrently and retry each filing with its idempotency key until
  answered; the store is killed while one upload is known to be half sent and others are in
  flight, then restarted on a new port that the clients move to.
- A lost answer: the store commits a filing (its log says so) and is killed before the client
  reads the answer; the retry after the restart gets the same document, not a second one.
"""

from __future__ import annotations

import contextlib
import hashlib
import signal
import socket
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from plitest.docstore import CITIZEN, TEST_TOKEN, actor_headers
from plitest.docstore_process import docstore_config_file
from plitest.process import PliProcess

DOCUMENTS = 24
KILL_AFTER = 8  # successful filings before the kill
CHUNK = 16 * 1024
DOCS = f"/v1/citizens/{CITIZEN}/documents"


@pytest.fixture
def stack() -> Iterator[contextlib.ExitStack]:
    with contextlib.ExitStack() as opened:
        yield opened


def document(number: int) -> bytes:
    filler = hashlib.sha256(b"%d" % number).hexdigest().encode() * 4000  # ~256 KiB
    return b"%PDF-1.4\n%" + filler + b"\n%%EOF\n"


def multipart(number: int) -> tuple[bytes, str]:
    boundary = f"pli-test-{number}"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="title"\r\n\r\n'
        f"Compte rendu {number}\r\n"
        f'--{boundary}\r\nContent-Disposition: form-data; name="content"; filename="d.pdf"\r\n'
        "Content-Type: application/pdf\r\n\r\n"
    ).encode()
    body = head + document(number) + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


class Endpoint:
    """The store's current base URL; clients wait here for a restart after a failure."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self.url = ""
        self.generation = 0

    def publish(self, url: str) -> None:
        with self._condition:
            self.url, self.generation = url, self.generation + 1
            self._condition.notify_all()

    def current(self) -> tuple[str, int]:
        with self._condition:
            return self.url, self.generation

    def wait_past(self, generation: int) -> None:
        with self._condition:
            if not self._condition.wait_for(lambda: self.generation > generation, timeout=60):
                raise AssertionError("the store did not come back")


class Batch:
    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self.successes = 0
        self.progress = threading.Condition()
        self.half_sent = threading.Event()  # the marked upload has sent its first chunk
        self.killed = threading.Event()
        self.answers: dict[int, list[int]] = {}

    def chunks(self, body: bytes, marked: bool) -> Iterator[bytes]:
        for start in range(0, len(body), CHUNK):
            yield body[start : start + CHUNK]
            if marked and not self.killed.is_set():
                self.half_sent.set()
                self.killed.wait(60)  # hold the upload open until the store is dead

    def file(self, number: int) -> str:
        body, content_type = multipart(number)
        marked = number == KILL_AFTER + 2
        statuses = self.answers.setdefault(number, [])
        while True:
            url, generation = self.endpoint.current()
            headers = actor_headers(
                **{
                    "Idempotency-Key": f"batch-{number}",
                    "Content-Type": content_type,
                    "Authorization": f"Bearer {TEST_TOKEN}",
                }
            )
            try:
                response = httpx.post(
                    f"{url}{DOCS}",
                    headers=headers,
                    content=self.chunks(body, marked and not statuses),
                    timeout=60,
                )
            except httpx.TransportError:
                statuses.append(0)
                self.endpoint.wait_past(generation)
                continue
            statuses.append(response.status_code)
            assert response.status_code in (200, 201), response.text
            with self.progress:
                self.successes += 1
                self.progress.notify_all()
            return response.json()["id"]


def test_a_store_killed_mid_batch_loses_nothing_and_duplicates_nothing(
    tmp_path: Path, stack: contextlib.ExitStack
) -> None:
    config = stack.enter_context(docstore_config_file(tmp_path))
    endpoint = Endpoint()
    batch = Batch(endpoint)
    servers: list[PliProcess] = []

    def start() -> None:
        server = PliProcess(["docstore", "serve", "-c", str(config)])
        servers.append(server)
        host, port = server.listening()["docstore"]
        endpoint.publish(f"http://{host}:{port}")

    try:
        start()
        with ThreadPoolExecutor(max_workers=4) as pool:
            futures = [pool.submit(batch.file, number) for number in range(DOCUMENTS)]
            with batch.progress:
                assert batch.progress.wait_for(lambda: batch.successes >= KILL_AFTER, timeout=120)
            assert batch.half_sent.wait(120)
            servers[-1].signal(signal.SIGKILL)
            servers[-1].wait()
            batch.killed.set()
            start()
            ids = {number: future.result(timeout=120) for number, future in enumerate(futures)}
        retried = [number for number, statuses in batch.answers.items() if 0 in statuses]
        assert KILL_AFTER + 2 in retried
        assert len(set(ids.values())) == DOCUMENTS  # one document per filing

        host_url, _ = endpoint.current()
        with httpx.Client(
            base_url=host_url, headers={"Authorization": f"Bearer {TEST_TOKEN}"}, timeout=60
        ) as client:
            listed = client.get(DOCS, params={"limit": 500}).json()["documents"]
            assert sorted(d["id"] for d in listed) == sorted(ids.values())
            by_key = {d["idempotency_key"]: d for d in listed}
            assert set(by_key) == {f"batch-{n}" for n in range(DOCUMENTS)}
            for number in range(DOCUMENTS):
                filed = by_key[f"batch-{number}"]
                assert filed["id"] == ids[number]
                content = client.get(f"{DOCS}/{filed['id']}/content").content
                assert hashlib.sha256(content).hexdigest() == filed["sha256"]
                assert content == document(number)
    finally:
        batch.killed.set()
        for server in servers:
            server.stop()


def test_a_filing_committed_but_never_answered_is_found_by_its_retry(
    tmp_path: Path, stack: contextlib.ExitStack
) -> None:
    config = stack.enter_context(docstore_config_file(tmp_path))
    servers: list[PliProcess] = []
    try:
        servers.append(PliProcess(["docstore", "serve", "-c", str(config)]))
        host, port = servers[-1].listening()["docstore"]
        body, content_type = multipart(1)
        request = (
            f"POST {DOCS} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {TEST_TOKEN}\r\n"
            f"Pli-Actor: citizen\r\nPli-Actor-Id: {CITIZEN}\r\nIdempotency-Key: lost-answer\r\n"
            f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode()
        with socket.create_connection((host, port)) as connection:
            connection.sendall(request + body)
            filed = servers[-1].wait_for("docstore-filed")  # committed, and not read by us
            servers[-1].signal(signal.SIGKILL)
            servers[-1].wait()
        servers.append(PliProcess(["docstore", "serve", "-c", str(config)]))
        host, port = servers[-1].listening()["docstore"]
        headers = actor_headers(
            **{
                "Idempotency-Key": "lost-answer",
                "Content-Type": content_type,
                "Authorization": f"Bearer {TEST_TOKEN}",
            }
        )
        retry = httpx.post(f"http://{host}:{port}{DOCS}", headers=headers, content=body)
        assert retry.status_code == 200, retry.text
        assert retry.json()["id"] == filed["document"]
        listed = httpx.get(
            f"http://{host}:{port}{DOCS}", headers={"Authorization": f"Bearer {TEST_TOKEN}"}
        ).json()["documents"]
        assert [d["id"] for d in listed] == [filed["document"]]
    finally:
        for server in servers:
            server.stop()
