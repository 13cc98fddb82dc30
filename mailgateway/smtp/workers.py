"""SMTP listeners in several processes (``listeners.NAME.processes > 1``): the port is shared
with SO_REUSEPORT (the kernel spreads connections), each process has its own event loop, store
connections and group-commit writer; they share the database and the message files.

The `pli serve` process binds first (so port 0 works: the children are told the real port), then
starts ``processes - 1`` children (``pli smtp worker``) and waits until each says it listens
(a pipe), so that start-up is still all or nothing. On stop, children get SIGTERM (their own
graceful stop, same grace), then SIGKILL if they outlive it.

On SQLite the processes contend for the single writer (busy timeout); PostgreSQL scales with
them (docs/smtp.md, bench/smtp.py). The queue runner stays in the `pli serve` process; what a
worker queues is found by its next poll (``queue.poll_interval``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys

import structlog

from pli.config.schema import Listener, Settings

log = structlog.get_logger(__name__)

# Not PLI_…: those are configuration overrides (config/loading.py).
READY_FD_VARIABLE = "_PLI_SMTP_WORKER_READY_FD"
READY = b"ready\n"
#: Time a child has to open the store and bind (seconds).
START_TIMEOUT = 60.0


def _environment_key(name: str) -> str:
    return f"PLI_LISTENERS__{name.upper()}__PORT"


class WorkerProcesses:
    """The extra processes of one listener."""

    def __init__(self, name: str, listener: Listener, settings: Settings) -> None:
        self.name = name
        self.listener = listener
        self.settings = settings
        self.processes: list[asyncio.subprocess.Process] = []

    async def start(self, port: int) -> None:
        for _ in range(self.listener.processes - 1):
            self.processes.append(await self._spawn(port))

    async def _spawn(self, port: int) -> asyncio.subprocess.Process:
        read_end, write_end = os.pipe()
        command = [
            sys.executable,
            "-m",
            "pli.mailgateway",
            "smtp",
            "worker",
            "--listener",
            self.name,
        ]
        if self.settings.source is not None:
            command += ["-c", str(self.settings.source)]
        environment = {
            **os.environ,
            READY_FD_VARIABLE: str(write_end),
            _environment_key(self.name): str(port),
        }
        try:
            process = await asyncio.create_subprocess_exec(
                *command, env=environment, pass_fds=(write_end,)
            )
        finally:
            os.close(write_end)
        try:
            ready = await asyncio.wait_for(asyncio.to_thread(_read_all, read_end), START_TIMEOUT)
        except TimeoutError:
            ready = b""
        finally:
            os.close(read_end)
        if ready != READY:
            process.kill()
            await process.wait()
            raise OSError(
                f"SMTP worker process for {self.name!r} did not start (exit {process.returncode})"
            )
        log.info("smtp-worker-started", service=self.name, pid=process.pid)
        return process

    async def stop(self, grace: float) -> None:
        for process in self.processes:
            if process.returncode is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                await asyncio.wait_for(process.wait(), grace + 5.0)
            except TimeoutError:
                process.kill()
                await process.wait()
        self.processes.clear()


def _read_all(descriptor: int) -> bytes:
    chunks = []
    while chunk := os.read(descriptor, 64):
        chunks.append(chunk)
    return b"".join(chunks)


def signal_ready() -> None:
    """In a worker: tell the parent the listener is bound."""
    descriptor = os.environ.get(READY_FD_VARIABLE)
    if descriptor:
        with contextlib.suppress(OSError):
            os.write(int(descriptor), READY)
            os.close(int(descriptor))


async def run_worker(settings: Settings, name: str) -> None:
    """A worker process: one SMTP listener (SO_REUSEPORT) until SIGTERM/SIGINT."""
    from pli.mailbox.store import Store

    from ..gateway import Gateway

    listener = settings.listeners[name]
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    store = await Store.open(settings, migrate=False)
    try:
        gateway = Gateway.build(settings, store)
        gateway.start()
        service = gateway.listener(name, listener)
        await service.start()
        log.info(
            "smtp-worker-listening", service=name, pid=os.getpid(), address=service.addresses()
        )
        signal_ready()
        await stop.wait()
        await service.stop(settings.server.shutdown_grace)
        await gateway.close()
    finally:
        await store.close()
