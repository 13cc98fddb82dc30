"""The `pli serve` service of an SMTP listener (protocol ``smtp`` or ``submission``): our
listener in this process, plus worker processes it hands connections to when the listener asks
for several (:mod:`.workers`)."""

from __future__ import annotations

import asyncio

from pli.config.schema import Listener, Settings

from .server import SmtpListener
from .workers import WorkerProcesses


class SmtpService:
    def __init__(self, name: str, listener: Listener, service: SmtpListener, settings: Settings):
        self.name = name
        self.service = service
        self.workers = WorkerProcesses(name, listener, settings) if listener.processes > 1 else None

    async def start(self) -> None:
        await self.service.start()
        if self.workers is not None:
            try:
                await self.workers.start()
                self.service.hand_off_to(self.workers.handoffs)
            except BaseException:
                await self.workers.stop(0)
                await self.service.stop(0)
                raise

    def addresses(self) -> list[tuple[str, int]]:
        return self.service.addresses()

    async def stop(self, grace: float) -> None:
        stops = [self.service.stop(grace)]
        if self.workers is not None:
            stops.append(self.workers.stop(grace))
        await asyncio.gather(*stops)
