"""SMTP listeners in several processes (``listeners.NAME.processes > 1``): the `pli serve`
process binds and accepts, and hands every other connection round-robin to its
``processes - 1`` children (``pli smtp worker``) over a Unix socket (SCM_RIGHTS, one
SOCK_SEQPACKET pair per child). Each process serves its connections with its own event loop,
store connections and group-commit writer; they share the database and the message files.

Why not SO_REUSEPORT (one listening socket per process): the kernel spreads connections by a
hash of their addresses, whatever the load; with the few long connections other operators open,
one process may get most of them (20 were split 7 and 13 in bench/smtp.py, and the busier
process set the pace). Nor one shared listening socket: asyncio takes every pending connection
at each wake-up, so the first process awake took a whole burst. Postfix's master likewise hands
connections to its smtpd processes.

`pli serve` starts the children after binding (so port 0 works) and waits until each says it is
ready (a pipe), so that start-up is still all or nothing. A child whose hand-off fails (it died)
is skipped: `pli serve` serves that connection itself. On stop, children get SIGTERM (their own
graceful stop, same grace), then SIGKILL if they outlive it. A child whose parent died (kill -9)
sees its hand-off socket close and stops the same graceful way.

On SQLite the processes take turns on the single writer (a file lock: mailbox/store/writelock.py);
PostgreSQL lets them write in parallel (docs/smtp.md, bench/smtp.py). The queue runner stays in
the `pli serve` process; what a worker queues is found by its next poll (``queue.poll_interval``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys

import structlog

from pli.config.schema import Listener, Settings

log = structlog.get_logger(__name__)

# Not PLI_…: those are configuration overrides (config/loading.py).
READY_FD_VARIABLE = "_PLI_SMTP_WORKER_READY_FD"
HANDOFF_FD_VARIABLE = "_PLI_SMTP_WORKER_HANDOFF_FD"
READY = b"ready\n"
#: Time a child has to open the store and bind (seconds).
START_TIMEOUT = 60.0


class WorkerProcesses:
    """The extra processes of one listener."""

    def __init__(self, name: str, listener: Listener, settings: Settings) -> None:
        self.name = name
        self.listener = listener
        self.settings = settings
        self.processes: list[asyncio.subprocess.Process] = []
        #: Our ends of the hand-off sockets, one per child (``SmtpListener.hand_off_to``).
        self.handoffs: list[socket.socket] = []

    async def start(self) -> None:
        for _ in range(self.listener.processes - 1):
            ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            try:
                self.processes.append(await self._spawn(theirs))
            except BaseException:
                ours.close()
                raise
            finally:
                theirs.close()
            ours.setblocking(False)
            self.handoffs.append(ours)

    async def _spawn(self, handoff: socket.socket) -> asyncio.subprocess.Process:
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
            HANDOFF_FD_VARIABLE: str(handoff.fileno()),
        }
        try:
            process = await asyncio.create_subprocess_exec(
                *command, env=environment, pass_fds=(write_end, handoff.fileno())
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
        for handoff in self.handoffs:
            handoff.close()
        self.handoffs.clear()


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


def _inherited_handoff() -> socket.socket:
    descriptor = os.environ.get(HANDOFF_FD_VARIABLE)
    if not descriptor:
        raise RuntimeError(f"{HANDOFF_FD_VARIABLE} is not set: workers are started by pli serve")
    return socket.socket(fileno=int(descriptor))


async def run_worker(settings: Settings, name: str) -> None:
    """A worker process: serves the connections `pli serve` hands over for one SMTP listener,
    until SIGTERM/SIGINT, or until `pli serve` is gone (killed with -9, its hand-off socket
    closes): then it stops as gracefully, so that no orphan keeps the store open."""
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
        service = gateway.listener(name, listener, handoff=_inherited_handoff())
        await service.start()
        log.info(
            "smtp-worker-listening", service=name, pid=os.getpid(), address=service.addresses()
        )
        signal_ready()
        waits = [asyncio.create_task(event.wait()) for event in (stop, service.handoff_closed)]
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        for wait in waits:
            wait.cancel()
        await service.stop(settings.server.shutdown_grace)
        await gateway.close()
    finally:
        await store.close()
