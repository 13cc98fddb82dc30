"""ANS's whitelist of the MSSanté trust space ("liste blanche"), read from its XML format and
queried in memory.

The format (``https://listeblanche.mssante.fr/schema``)::

    <ListeBlancheMSSante xmlns="https://listeblanche.mssante.fr/schema">
      <DateDeGeneration>2025-03-13T14:54:10Z</DateDeGeneration>
      <ListeDomaines>
        <Domaine><Nom>adsea29.mssante.fr</Nom><Description>…</Description>
          <DNCertificatOperateur>CN=…,OU=…,O=…,ST=…,C=FR</DNCertificatOperateur>
          <ResponsableContact>…</ResponsableContact><SupportContact>…</SupportContact>
          <DateMAJ>…</DateMAJ></Domaine> …

A domain appears once per operator certificate allowed to send and receive for it. The parser is
hardened (defusedxml: no DTD, no entities, no external references) and bounded; a list that is
not exactly this shape (truncated, an entry without a domain or with an unreadable DN, no entry
at all) is refused whole with a :class:`WhitelistError` naming the first problem, so that a bad
download never replaces a good list (:mod:`pli.certs.whitelist_store` keeps the good one).

Questions: :meth:`Whitelist.allows` (may the peer whose certificate has DN X send for domain
Y?), :meth:`Whitelist.dns_for` (which DNs serve Y?), :meth:`Whitelist.domains_for`. DNs compare as
:func:`pli.certs.names.dn_key` says (attribute order, spacing and case do not matter).

This module reads bytes; it never touches the network or the disk.
"""

from __future__ import annotations

import datetime as dt
import functools
import io
from collections import defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING
from xml.etree.ElementTree import Element, ParseError
from xml.sax.saxutils import escape

import defusedxml.ElementTree as SafeElementTree
from cryptography import x509
from defusedxml import DefusedXmlException

from .names import DnKey, DnSyntaxError, dn_key
from .profiles import is_hostname
from .refusals import DN_NOT_WHITELISTED, CertificateRefused

if TYPE_CHECKING:
    from .identity import CertificateIdentity

NAMESPACE = "https://listeblanche.mssante.fr/schema"
ROOT_ELEMENT = "ListeBlancheMSSante"
#: The 2025 list has 6,554 entries; a million bounds the memory a hostile file can cost.
MAX_ENTRIES = 1_000_000
#: Entries with a bad value are left out (ANS's 2025 list names a "domain"
#: ``sessad@ase.ditepbeziers.mssante.fr``), but a list where more than this many, or this
#: fraction, are bad is refused whole: it is broken, not slightly wrong.
MAX_SKIPPED_ENTRIES = 10
MAX_SKIPPED_FRACTION = 0.01


class WhitelistError(Exception):
    """A list refused whole; the message says why (first problem found)."""


@dataclass(frozen=True)
class WhitelistEntry:
    domain: str  # lower case
    dn: str  # as written in the list
    description: str
    updated: str  # DateMAJ as written


@functools.lru_cache(maxsize=256)
def _local(tag: str) -> str:
    """``{namespace}Name`` → ``Name`` (a handful of distinct tags: cached)."""
    return tag.rsplit("}", 1)[-1]


def _child_text(element: Element, name: str) -> str | None:
    for child in element:
        if _local(child.tag) == name:
            return (child.text or "").strip()
    return None


def _normalise_domain(domain: str) -> str:
    return domain.strip().lower().rstrip(".")


#: expat's code for "no element found": the input ended with elements still open.
_EXPAT_NO_ELEMENTS = 3


@dataclass
class _ParseState:
    open: list[str]
    entries: list[WhitelistEntry]
    skipped: list[str]
    generated: str | None = None
    domains_closed: bool = False


def parse_whitelist(data: bytes) -> Whitelist:
    """The list in ``data``; raises :class:`WhitelistError`.

    Two leniencies, both for ANS's own files:

    - the list published in 2025 (and its GitHub mirror, whose checksum matches) ends after
      ``</ListeDomaines>`` without closing the root element. A file that ends there is accepted
      (:attr:`Whitelist.root_unclosed` is set and the import logs it); a file cut anywhere else
      (inside an entry, or before ``</ListeDomaines>``) is refused;
    - an entry whose domain is not a domain name or whose DN cannot be read is left out
      (:attr:`Whitelist.skipped` says which and why), up to :data:`MAX_SKIPPED_ENTRIES` or
      :data:`MAX_SKIPPED_FRACTION` of the list."""
    if not data.strip():
        raise WhitelistError("the file is empty")
    state = _ParseState(open=[], entries=[], skipped=[])
    root_unclosed = False
    try:
        for event, element in SafeElementTree.iterparse(
            io.BytesIO(data), events=("start", "end"), forbid_dtd=True
        ):
            _on_event(state, event, element)
    except DefusedXmlException as error:
        raise WhitelistError(f"forbidden XML construct ({type(error).__name__})") from None
    except ParseError as error:
        line, column = error.position
        ends_like_ans = (
            error.code == _EXPAT_NO_ELEMENTS and state.open == [ROOT_ELEMENT]
        ) and state.domains_closed
        if not ends_like_ans:
            inside = f" inside <{state.open[-1]}>" if state.open else ""
            raise WhitelistError(
                f"not well-formed XML at line {line}, column {column}{inside}"
                f"{' (truncated?)' if error.code == _EXPAT_NO_ELEMENTS else ''}"
            ) from None
        root_unclosed = True
    if not state.domains_closed:
        raise WhitelistError("no <ListeDomaines>")
    if not state.generated:
        raise WhitelistError("no <DateDeGeneration>")
    try:
        generated_at = dt.datetime.fromisoformat(state.generated.replace("Z", "+00:00"))
    except ValueError:
        raise WhitelistError(f"<DateDeGeneration> {state.generated!r} is not a date") from None
    if generated_at.tzinfo is None:
        generated_at = generated_at.replace(tzinfo=dt.UTC)
    if not state.entries:
        raise WhitelistError("no usable <Domaine> entry" + _first(state.skipped))
    total = len(state.entries) + len(state.skipped)
    if len(state.skipped) > max(MAX_SKIPPED_ENTRIES, total * MAX_SKIPPED_FRACTION):
        raise WhitelistError(
            f"{len(state.skipped)} of {total} entries unusable: not a list to trust"
            + _first(state.skipped)
        )
    return Whitelist(
        generated_at,
        tuple(state.entries),
        skipped=tuple(state.skipped),
        root_unclosed=root_unclosed,
    )


def _first(skipped: list[str]) -> str:
    return f" (first: {skipped[0]})" if skipped else ""


def _on_event(state: _ParseState, event: str, element: Element) -> None:
    name = _local(element.tag)
    if event == "start":
        if not state.open and name != ROOT_ELEMENT:
            raise WhitelistError(f"root element is <{name}>, expected <{ROOT_ELEMENT}>")
        state.open.append(name)
        return
    state.open.pop()
    parent = state.open[-1] if state.open else None
    if name == "DateDeGeneration" and parent == ROOT_ELEMENT:
        state.generated = (element.text or "").strip()
    elif name == "ListeDomaines" and parent == ROOT_ELEMENT:
        state.domains_closed = True
    elif name == "Domaine" and parent == "ListeDomaines":
        number = len(state.entries) + len(state.skipped) + 1
        if number > MAX_ENTRIES:
            raise WhitelistError(f"more than {MAX_ENTRIES} entries")
        try:
            state.entries.append(_entry(element))
        except _BadEntry as error:
            state.skipped.append(f"entry {number}: {error}")
        element.clear()  # the entry is kept; its elements are not needed any more


class _BadEntry(Exception):
    pass


def _entry(element: Element) -> WhitelistEntry:
    written = _child_text(element, "Nom") or ""
    domain = _normalise_domain(written)
    if not domain or "." not in domain or not is_hostname(domain):
        raise _BadEntry(f"<Nom> {written!r} is not a domain name")
    dn = _child_text(element, "DNCertificatOperateur")
    if not dn:
        raise _BadEntry(f"{domain}: no <DNCertificatOperateur>")
    try:
        dn_key(dn)
    except DnSyntaxError as error:
        raise _BadEntry(f"{domain}: DN {dn!r}: {error}") from None
    return WhitelistEntry(
        domain=domain,
        dn=dn,
        description=_child_text(element, "Description") or "",
        updated=_child_text(element, "DateMAJ") or "",
    )


DnLike = str | x509.Name | DnKey


def _key(dn: DnLike) -> DnKey:
    return dn if isinstance(dn, tuple) else dn_key(dn)


class Whitelist:
    """An immutable, indexed list: domain → DNs and DN → domains."""

    def __init__(
        self,
        generated_at: dt.datetime,
        entries: tuple[WhitelistEntry, ...],
        *,
        skipped: tuple[str, ...] = (),
        root_unclosed: bool = False,
    ) -> None:
        self.generated_at = generated_at
        self.entries = entries
        self.skipped = skipped  # entries left out, each with why (see parse_whitelist)
        self.root_unclosed = root_unclosed  # see parse_whitelist: ANS's files end this way
        by_domain: defaultdict[str, set[DnKey]] = defaultdict(set)
        written: defaultdict[str, list[str]] = defaultdict(list)
        by_dn: defaultdict[DnKey, set[str]] = defaultdict(set)
        for entry in entries:
            key = dn_key(entry.dn)
            by_domain[entry.domain].add(key)
            if entry.dn not in written[entry.domain]:
                written[entry.domain].append(entry.dn)
            by_dn[key].add(entry.domain)
        self._by_domain = {domain: frozenset(keys) for domain, keys in by_domain.items()}
        self._written = {domain: tuple(dns) for domain, dns in written.items()}
        self._by_dn = {key: frozenset(domains) for key, domains in by_dn.items()}

    def __len__(self) -> int:
        return len(self.entries)

    @property
    def domain_count(self) -> int:
        return len(self._by_domain)

    @property
    def dn_count(self) -> int:
        return len(self._by_dn)

    def allows(self, dn: DnLike, domain: str) -> bool:
        """Whether the operator whose certificate has ``dn`` is listed for ``domain``. ``dn``: a
        certificate name, a DN string or a :func:`~pli.certs.names.dn_key`."""
        return _key(dn) in self._by_domain.get(_normalise_domain(domain), frozenset())

    def dns_for(self, domain: str) -> tuple[str, ...]:
        """The DNs listed for ``domain``, as written in the list (empty: not in the trust
        space)."""
        return self._written.get(_normalise_domain(domain), ())

    def domains_for(self, dn: DnLike) -> frozenset[str]:
        """The domains the operator with ``dn`` serves."""
        return self._by_dn.get(_key(dn), frozenset())

    def has_domain(self, domain: str) -> bool:
        return _normalise_domain(domain) in self._by_domain


def render_whitelist(
    entries: list[WhitelistEntry], generated_at: dt.datetime | None = None
) -> bytes:
    """A list in ANS's format (the demo list of `pli init --demo`, and tests)."""
    stamp = (generated_at or dt.datetime.now(dt.UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<{ROOT_ELEMENT} xmlns="{NAMESPACE}">',
        f"    <DateDeGeneration>{stamp}</DateDeGeneration>",
        "    <ListeDomaines>",
    ]
    for entry in entries:
        lines += [
            "        <Domaine>",
            f"            <Nom>{escape(entry.domain)}</Nom>",
            f"            <Description>{escape(entry.description)}</Description>",
            f"            <DNCertificatOperateur>{escape(entry.dn)}</DNCertificatOperateur>",
            f"            <DateMAJ>{escape(entry.updated or stamp)}</DateMAJ>",
            "        </Domaine>",
        ]
    lines += ["    </ListeDomaines>", f"</{ROOT_ELEMENT}>", ""]
    return "\n".join(lines).encode()


def require_listed(
    whitelist: Whitelist, subject: CertificateIdentity | x509.Name, domain: str
) -> None:
    """Raise ``CertificateRefused("dn-not-whitelisted")`` unless ``subject`` (a verified peer's
    identity or certificate name) is listed for ``domain``."""
    if isinstance(subject, x509.Name):
        key, shown = dn_key(subject), subject.rfc4514_string()
    else:
        key, shown = subject.dn_key, subject.dn
    if whitelist.allows(key, domain):
        return
    listed = whitelist.dns_for(domain)
    detail = f"listed DNs: {'; '.join(listed)}" if listed else "the domain is not in the list"
    raise CertificateRefused(DN_NOT_WHITELISTED, f"{shown} may not send for {domain} ({detail})")
