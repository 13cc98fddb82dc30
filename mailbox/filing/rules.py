"""Automatic filing rules (``[[filing.rules]]``): which attachments of a message delivered to a
citizen are filed without being asked.

A rule matches an attachment (as the webmail lists them: ``mime.cache.attachments``) of a
message whose From: domain is in ``from_domains`` (any domain when empty):

- ``match = "ihe-xdm"``: an IHE_XDM.zip attachment (every document of the package is filed,
  once the reader has verified it);
- ``match = "content-type"``: an attachment whose declared type is in ``types``
  (``"application/pdf"``, or a family ``"image/*"``).

Each attachment is filed at most once: the first rule that matches it names the filing.

Pure functions over the cached ENVELOPE and MIME tree: no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pli.config.schema import FilingRule
from pli.mailbox.mime.cache import Attachment, attachments
from pli.mailbox.mime.structure import Part

from .source import XDM_FILENAME

IHE_XDM, CONTENT_TYPE = "ihe-xdm", "content-type"


@dataclass(frozen=True, slots=True)
class RuleMatch:
    part: str  # the attachment's section number
    rule: str  # the rule's name
    xdm: bool


def sender_domain(envelope: list[Any]) -> str:
    """The domain of the first From: address of an ENVELOPE (RFC 3501 §7.4.2), lowercased."""
    for address in envelope[2] or []:
        host = address[3]
        if isinstance(host, str):
            return host.lower()
    return ""


def _is_xdm(attachment: Attachment) -> bool:
    return (attachment.filename or "").strip().lower() == XDM_FILENAME


def _type_matches(types: Sequence[str], content_type: str) -> bool:
    content_type = content_type.lower()
    family = content_type.split("/", 1)[0] + "/*"
    return content_type in types or family in types


def applies(rule: FilingRule, domain: str, attachment: Attachment) -> bool:
    if not rule.enabled:
        return False
    if rule.from_domains and domain not in rule.from_domains:
        return False
    if rule.match == IHE_XDM:
        return _is_xdm(attachment)
    return _type_matches(rule.types, attachment.content_type)


def matching_parts(
    rules: Sequence[FilingRule], envelope: list[Any], structure: Part
) -> list[RuleMatch]:
    """The attachments the rules file, in the message's order, each once."""
    domain = sender_domain(envelope)
    found = []
    for attachment in attachments(structure):
        for rule in rules:
            if applies(rule, domain, attachment):
                found.append(RuleMatch(attachment.section, rule.name, _is_xdm(attachment)))
                break
    return found
