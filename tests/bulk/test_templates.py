"""The templates run in Jinja2's sandbox: no way to Python internals, output bounded before it
is built, a missing field named, a subject that cannot carry a header."""

from __future__ import annotations

import pytest

from pli.mailgateway.bulk.limits import MAX_BODY_LENGTH
from pli.mailgateway.bulk.templates import (
    BODY_TOO_LONG,
    FIELD_MISSING,
    TEMPLATE_FAILED,
    CampaignTemplates,
    RenderError,
    TemplateDefinitionError,
)

CONTEXT = {"nom": "DUPONT", "prenom": "Marie", "date_rdv": "12/03/2025"}


def render_body(body: str) -> str:
    return CampaignTemplates("Objet", body).render(CONTEXT).body


@pytest.mark.parametrize(
    "escape",
    [
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ nom.__class__.__base__ }}",
        "{{ lipsum.__globals__['os'] }}",
        "{{ cycler.__init__.__globals__ }}",
        "{{ namespace.__init__.__globals__ }}",
        "{{ nom.format.__self__ }}",
        "{{ range.__self__ }}",
        "{% set x = nom.__class__ %}{{ x }}",
        "{{ (nom|attr('__class__')).__mro__ }}",
    ],
)
def test_attribute_escapes_are_refused(escape: str) -> None:
    try:
        text = render_body(escape)
    except RenderError as error:
        assert error.reason in (TEMPLATE_FAILED, FIELD_MISSING)
        return
    assert "class" not in text and "module" not in text and "function" not in text


@pytest.mark.parametrize(
    "hog",
    [
        "{{ 'x' * 10**9 }}",
        "{{ [1] * 10**9 }}",
        "{{ 7 ** 9999999 }}",
        "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}",
    ],
)
def test_output_is_bounded_while_it_is_produced(hog: str) -> None:
    with pytest.raises(RenderError) as raised:
        render_body(hog)
    assert raised.value.reason in (TEMPLATE_FAILED, BODY_TOO_LONG)


def test_a_long_body_is_cut_then_refused() -> None:
    with pytest.raises(RenderError) as raised:
        render_body("{% for i in range(50000) %}0123456789{% endfor %}")
    assert raised.value.reason == BODY_TOO_LONG and str(MAX_BODY_LENGTH) in raised.value.text


def test_a_missing_field_names_it() -> None:
    with pytest.raises(RenderError) as raised:
        render_body("Bonjour {{ prenom }}, le {{ heure_rdv }}")
    assert (raised.value.reason, raised.value.field) == (FIELD_MISSING, "heure_rdv")


def test_the_subject_is_one_line() -> None:
    rendered = CampaignTemplates("RDV {{ nom }}\r\nBcc: x@y", "b").render(
        {**CONTEXT, "nom": "A\nX-Evil: 1"}
    )
    assert "\n" not in rendered.subject and "\r" not in rendered.subject


def test_syntax_errors_name_the_template_and_line() -> None:
    with pytest.raises(TemplateDefinitionError, match="ligne 2"):
        CampaignTemplates("ok", "Bonjour\n{{ nom ")


def test_a_letter_renders_as_written() -> None:
    """trim_blocks: the line break after a block tag goes with it."""
    body = "Bonjour {{ prenom }} {{ nom }},\n{% if date_rdv %}\nle {{ date_rdv }}\n{% endif %}\n"
    body += "Fin\n"
    assert render_body(body) == "Bonjour Marie DUPONT,\nle 12/03/2025\nFin\n"
