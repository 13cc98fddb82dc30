"""The subject and body templates of a campaign: Jinja2, in the sandbox, strict.

- ``jinja2.sandbox.SandboxedEnvironment``: a template written by an establishment cannot reach
  Python internals (attribute access to ``__class__``, ``mro`` … raises SecurityError).
- ``StrictUndefined``: a field the row does not have is an error naming the row and the field
  (found by the dry run before anything is sent), never an empty string in a letter.
- No autoescaping: the body is ``text/plain`` (escaping would print ``&amp;``).
- The subject is one line (line breaks become spaces: a header cannot be injected), at most
  :data:`MAX_SUBJECT_LENGTH` characters. The subject travels in clear in every notification and
  mail client list: it should carry no health data beyond what the establishment chose
  (docs/bulk.md).
- Output is bounded while it is produced (``generate``), and ``*`` and ``**`` are checked before
  they compute (``"x" * 10**9`` is refused, not allocated). The sandbox bounds ``range`` to
  100,000 items; nested loops can still burn CPU: callers render in a worker thread, and the dry
  run shows such a template before it runs on thousands of rows.

Pure: strings in, strings out.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from jinja2 import StrictUndefined, TemplateError, TemplateSyntaxError, UndefinedError
from jinja2.sandbox import SandboxedEnvironment, SecurityError

from .limits import MAX_BODY_LENGTH, MAX_SUBJECT_LENGTH, MAX_TEMPLATE_SIZE

#: Row error reasons.
FIELD_MISSING = "template-field-missing"
TEMPLATE_FAILED = "template-failed"
SUBJECT_INVALID = "subject-invalid"
BODY_TOO_LONG = "body-too-long"
_UNDEFINED_NAME = re.compile(r"^'([^']{1,100})' is undefined$")
_UNDEFINED_ATTRIBUTE = re.compile(r"has no attribute '([^']{1,100})'$")


class TemplateDefinitionError(Exception):
    """A template that cannot be compiled (syntax, size): the campaign is refused; ``text`` is
    French and names the template and line."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


class RenderError(Exception):
    """One row cannot be rendered: ``reason`` is a stable code, ``text`` French and names the
    field when one is missing."""

    def __init__(self, reason: str, text: str, field: str | None = None) -> None:
        super().__init__(text)
        self.reason = reason
        self.text = text
        self.field = field


@dataclass(frozen=True)
class Rendered:
    subject: str
    body: str


#: The largest string or sequence ``*`` may build, and the largest result ``**`` may give
#: (bits): more than a rendered body needs.
MAX_PRODUCT_LENGTH = MAX_BODY_LENGTH
MAX_POWER_BITS = 4096


class _BoundedSandbox(SandboxedEnvironment):
    """The sandbox with ``*`` and ``**`` checked before they run."""

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Any, operator_name: str, left: Any, right: Any) -> Any:
        if operator_name == "*":
            for sequence, count in ((left, right), (right, left)):
                if (
                    isinstance(sequence, str | list | tuple)
                    and isinstance(count, int)
                    and len(sequence) * max(count, 0) > MAX_PRODUCT_LENGTH
                ):
                    raise SecurityError("product too large")
            return operator.mul(left, right)
        if (
            isinstance(left, int)
            and isinstance(right, int)
            and right > 0
            and abs(left).bit_length() * right > MAX_POWER_BITS
        ):
            raise SecurityError("power too large")
        return operator.pow(left, right)


def _environment() -> SandboxedEnvironment:
    return _BoundedSandbox(
        undefined=StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )


class CampaignTemplates:
    """The compiled subject and body of a campaign."""

    def __init__(self, subject: str, body: str) -> None:
        environment = _environment()
        self.subject = self._compile(environment, subject, "l'objet")
        self.body = self._compile(environment, body, "le corps du message")

    @staticmethod
    def _compile(environment: SandboxedEnvironment, source: str, what: str) -> object:
        if len(source.encode("utf-8")) > MAX_TEMPLATE_SIZE:
            raise TemplateDefinitionError(f"{what} dépasse {MAX_TEMPLATE_SIZE} octets")
        if not source.strip():
            raise TemplateDefinitionError(f"{what} est vide")
        try:
            return environment.from_string(source)
        except TemplateSyntaxError as error:
            raise TemplateDefinitionError(
                f"{what}, ligne {error.lineno} : erreur de syntaxe ({error.message})"
            ) from None

    def render(self, context: Mapping[str, str]) -> Rendered:
        subject = " ".join(_render(self.subject, context, MAX_SUBJECT_LENGTH).split()).strip()
        if not subject:
            raise RenderError(SUBJECT_INVALID, "l'objet rendu est vide")
        if len(subject) > MAX_SUBJECT_LENGTH:
            raise RenderError(
                SUBJECT_INVALID, f"l'objet rendu dépasse {MAX_SUBJECT_LENGTH} caractères"
            )
        body = _render(self.body, context, MAX_BODY_LENGTH)
        if len(body) > MAX_BODY_LENGTH:
            raise RenderError(BODY_TOO_LONG, f"le corps rendu dépasse {MAX_BODY_LENGTH} caractères")
        return Rendered(subject, body)


def _render(template: object, context: Mapping[str, str], bound: int) -> str:
    """The rendered text, cut once past ``bound`` characters (the caller refuses it)."""
    try:
        chunks: list[str] = []
        produced = 0
        for chunk in template.generate(dict(context)):  # type: ignore[attr-defined]
            chunks.append(chunk)
            produced += len(chunk)
            if produced > bound:
                break
        return "".join(chunks)
    except UndefinedError as error:
        message = str(error.message or "")
        match = _UNDEFINED_NAME.match(message) or _UNDEFINED_ATTRIBUTE.search(message)
        field = match.group(1) if match else None
        shown = field or message[:100]
        raise RenderError(
            FIELD_MISSING, f"le champ « {shown} » n'existe pas dans le fichier", field
        ) from None
    except SecurityError:
        raise RenderError(TEMPLATE_FAILED, "le modèle tente une opération interdite") from None
    except (TemplateError, ArithmeticError, TypeError, ValueError, LookupError) as error:
        raise RenderError(TEMPLATE_FAILED, f"le modèle échoue ({type(error).__name__})") from None
