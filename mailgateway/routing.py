"""Where to deliver a domain's mail: static routes first (``queue.routes``: private setups,
tests), else the domain's MX records (RFC 5321 §5.1), by preference, falling back to the domain's
own address records when it has no MX ("implicit MX"); a null MX (RFC 7505) means the domain
accepts no mail.

The DNS is behind :class:`Resolver` (dnspython's asynchronous resolver in production; tests
inject a fake: never the internet). Lookup failures are temporary (``4.4.3``), a domain that does
not exist or accepts no mail is permanent (``5.1.2``, ``5.1.10``).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

import dns.asyncresolver
import dns.exception
import dns.resolver
import structlog

log = structlog.get_logger(__name__)

#: RFC 5321 §4.5.3.2 does not bound MX lists; 10 hosts is more than enough to try per attempt.
MAX_HOPS = 10
SMTP_PORT = 25
#: Time allowed for one DNS question (seconds).
DNS_TIMEOUT = 10.0


@dataclass(frozen=True, slots=True)
class Hop:
    """A host to try: ``address`` is what we connect to, ``host`` its name (for logs and DSNs)."""

    host: str
    address: str
    port: int


class RouteError(Exception):
    """No hop for a domain; ``permanent`` tells a bounce from a retry."""

    def __init__(self, status: str, text: str, *, permanent: bool) -> None:
        super().__init__(text)
        self.status = status
        self.text = text
        self.permanent = permanent


class NoSuchDomain(Exception):
    pass


class Resolver(Protocol):
    async def mx(self, domain: str) -> list[tuple[int, str]] | None:
        """MX records as (preference, host); None when the domain has none; NoSuchDomain when
        the domain does not exist; any other exception is a temporary failure."""

    async def addresses(self, host: str) -> list[str]:
        """IPv4 and IPv6 addresses of ``host`` (empty: none)."""


class DnsResolver:
    """dnspython's asynchronous resolver (the system's configuration)."""

    def __init__(self, timeout: float = DNS_TIMEOUT) -> None:
        self._resolver = dns.asyncresolver.Resolver()
        self._resolver.lifetime = timeout

    async def mx(self, domain: str) -> list[tuple[int, str]] | None:
        try:
            answer = await self._resolver.resolve(domain, "MX")
        except dns.resolver.NXDOMAIN:
            raise NoSuchDomain(domain) from None
        except dns.resolver.NoAnswer:
            return None
        return [(int(r.preference), r.exchange.to_text(omit_final_dot=True)) for r in answer]

    async def addresses(self, host: str) -> list[str]:
        found: list[str] = []
        for kind in ("A", "AAAA"):
            try:
                answer = await self._resolver.resolve(host, kind)
            except (dns.resolver.NoAnswer, dns.resolver.NXDOMAIN):
                continue
            found += [r.to_text() for r in answer]
        return found


def parse_route(value: str) -> tuple[str, int]:
    """``host``, ``host:port``, ``[IPv6]:port`` → (host, port)."""
    value = value.strip()
    if value.startswith("["):
        host, _, rest = value[1:].partition("]")
        return host, int(rest[1:]) if rest.startswith(":") else SMTP_PORT
    host, colon, port = value.rpartition(":")
    if colon and port.isdigit():
        return host, int(port)
    return value, SMTP_PORT


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


class Router:
    def __init__(
        self, routes: Mapping[str, str], resolver: Resolver | None = None, *, port: int = SMTP_PORT
    ) -> None:
        self.routes = {domain.lower(): parse_route(target) for domain, target in routes.items()}
        self.resolver = resolver or DnsResolver()
        self.port = port

    async def hops(self, domain: str) -> list[Hop]:
        """The hosts to try for ``domain``, best first (raises RouteError)."""
        domain = domain.lower().rstrip(".")
        static = self.routes.get(domain) or self.routes.get("*")
        if static is not None:
            host, port = static
            return await self._resolve([host], port)
        try:
            records = await self.resolver.mx(domain)
        except NoSuchDomain:
            raise RouteError("5.1.2", f"domain {domain} does not exist", permanent=True) from None
        except Exception as error:
            raise RouteError(
                "4.4.3", f"MX lookup for {domain} failed ({type(error).__name__})", permanent=False
            ) from None
        if records is None:
            names = [domain]  # RFC 5321 §5.1: no MX, the domain itself
        else:
            if any(host in ("", ".") for _, host in records):  # RFC 7505 null MX
                raise RouteError("5.1.10", f"{domain} accepts no mail (null MX)", permanent=True)
            names = [host for _, host in sorted(records)]
        return await self._resolve(names[:MAX_HOPS], self.port)

    async def _resolve(self, hosts: list[str], port: int) -> list[Hop]:
        hops: list[Hop] = []
        for host in hosts:
            if _is_address(host):
                hops.append(Hop(host, host, port))
                continue
            try:
                addresses = await self.resolver.addresses(host)
            except Exception as error:  # this host is skipped; the others may do
                log.info("address-lookup-failed", host=host, error=type(error).__name__)
                continue
            hops += [Hop(host, address, port) for address in addresses]
        if not hops:
            raise RouteError("4.4.4", f"no address for {', '.join(hosts)}", permanent=False)
        return hops[:MAX_HOPS]
