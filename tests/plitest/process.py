"""Run `pli` as a real process and follow its JSON log (integration tier)."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

PLI = [sys.executable, "-m", "pli.mailgateway"]


class PliProcess:
    """`pli serve` in a subprocess, with its JSON log lines parsed as they come."""

    def __init__(
        self, args: list[str], env: Mapping[str, str] | None = None, cwd: Path | None = None
    ):
        environment = {**os.environ, "PLI_SERVER__LOG_FORMAT": "json", **(env or {})}
        self.process = subprocess.Popen(
            [*PLI, *args],
            cwd=cwd,
            env=environment,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self._events: queue.Queue[dict[str, Any] | None] = queue.Queue()
        #: Events :meth:`listening` read past on its way to 'ready': a service may log what a
        #: test waits for before the server says it is ready (the notifier's first e-mail).
        self._before_ready: list[dict[str, Any]] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if isinstance(event, dict):
                self._events.put(event)
        self._events.put(None)

    def wait_for(self, event_name: str, timeout: float = 30.0) -> dict[str, Any]:
        """The next log event of that name (one logged before 'ready' included); fails if the
        process ends or the time runs out."""
        for index, event in enumerate(self._before_ready):
            if event.get("event") == event_name:
                del self._before_ready[: index + 1]
                return event
        while True:
            try:
                event = self._events.get(timeout=timeout)
            except queue.Empty:
                raise AssertionError(
                    f"no {event_name!r} within {timeout}s:\n{self.output}"
                ) from None
            if event is None:
                raise AssertionError(f"process ended before {event_name!r}:\n{self.output}")
            if event.get("event") == event_name:
                return event

    def listening(self) -> dict[str, tuple[str, int]]:
        """Service name → (host, port), read from the 'listening' events up to 'ready'."""
        found: dict[str, tuple[str, int]] = {}
        while True:
            event = self._next_of({"listening", "ready"}, keep_others=True)
            if event["event"] == "ready":
                return found
            host, _, port = event["address"].rpartition(":")
            found[event["service"]] = (host.strip("[]"), int(port))

    def _next_of(self, names: set[str], *, keep_others: bool = False) -> dict[str, Any]:
        while True:
            event = self._events.get(timeout=30)
            if event is None:
                raise AssertionError(f"process ended early:\n{self.output}")
            if event.get("event") in names:
                return event
            if keep_others:
                self._before_ready.append(event)

    def signal(self, signum: int = signal.SIGTERM) -> None:
        self.process.send_signal(signum)

    def wait(self, timeout: float = 30.0) -> int:
        code = self.process.wait(timeout=timeout)
        self._reader.join(timeout=5)
        return code

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def run_pli(
    *args: str, env: Mapping[str, str] | None = None, cwd: Path | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run a `pli` subcommand to completion; stdout and stderr captured as text."""
    return subprocess.run(
        [*PLI, *args],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
