"""What `pli serve` runs: services (listeners and background jobs) with one life cycle.

A service starts (binds and begins accepting), reports where it listens, and stops in two steps:
it stops accepting at once, then lets in-flight transactions finish within a grace period. The
registry maps a listener's protocol to the factory that builds its service; each subsystem
registers its own protocols (see ``mailgateway/serve.py``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from pli.config.schema import Listener, Settings
from pli.mailbox.store import Store


class Service(Protocol):
    name: str

    async def start(self) -> None:
        """Bind and begin serving; raise on failure (port taken, material missing)."""

    def addresses(self) -> list[tuple[str, int]]:
        """Where the service listens, once started (empty for background jobs)."""

    async def stop(self, grace: float) -> None:
        """Stop accepting, let in-flight work finish for at most ``grace`` seconds, close."""


HealthCheck = Callable[[], Awaitable[str | None]]
"""A readiness check: returns None when healthy, else a short reason."""


@dataclass
class Runtime:
    """What the services of one process share: settings and the health checks they register."""

    settings: Settings
    health_checks: dict[str, HealthCheck] = field(default_factory=dict)
    store: Store | None = None  # the mail store, opened by open_runtime (mailgateway/serve.py)
    # The SMTP gateway (mailgateway/gateway.py: handlers, pipeline, queue), built by
    # open_runtime when an SMTP, submission or webmail listener is enabled.
    gateway: Any = None
    # What the IMAP listeners share (mailbox/imap/service.py SessionServices), built by the
    # first IMAP listener's factory.
    imap: Any = None
    # The campaign runner of `pli serve` (mailgateway/bulk/service.py BulkService), which the
    # bulk HTTP API wakes when a campaign is submitted; None when bulk.enabled is false.
    bulk: Any = None

    async def health(self) -> dict[str, str]:
        results = {}
        for name, check in self.health_checks.items():
            try:
                problem = await check()
            except Exception as error:  # a failing check is a finding, not a crash
                problem = f"check failed: {type(error).__name__}"
            results[name] = problem or "ok"
        return results


ServiceFactory = Callable[[str, Listener, Runtime], Service]


class ServiceUnavailable(Exception):
    """A listener whose protocol this build or configuration cannot serve."""
