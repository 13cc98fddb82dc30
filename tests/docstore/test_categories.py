"""Categories: a closed list with stable codes and French labels; type codes map into it."""

from __future__ import annotations

import pytest

from pli.docstore.categories import (
    _BY_CATEGORY,
    LABELS,
    Category,
    category_for_type_code,
)

#: Stored in databases and exchanged over HTTP: renaming one is a data migration.
STABLE_CODES = {
    "ordonnance",
    "compte-rendu",
    "biologie",
    "imagerie",
    "lettre-liaison",
    "synthese",
    "certificat",
    "vaccination",
    "prevention",
    "administratif",
    "autre",
}


def test_the_codes_are_stable_and_every_category_has_a_french_label() -> None:
    assert {category.value for category in Category} == STABLE_CODES
    assert set(LABELS) == set(Category)
    assert Category.LETTRE_LIAISON.label == "Lettres de liaison"


def test_a_type_code_belongs_to_one_category_only() -> None:
    seen: dict[str, Category] = {}
    for category, codes in _BY_CATEGORY.items():
        for code in codes:
            assert code not in seen, f"{code} in {seen.get(code)} and {category}"
            seen[code] = category


@pytest.mark.parametrize(
    ("code", "scheme", "category"),
    [
        ("11490-0", "2.16.840.1.113883.6.1", Category.LETTRE_LIAISON),  # discharge summary
        ("11502-2", "2.16.840.1.113883.6.1", Category.BIOLOGIE),  # laboratory report
        ("18748-4", None, Category.IMAGERIE),  # diagnostic imaging study
        ("57833-6", "LOINC", Category.ORDONNANCE),  # prescription for medication
        ("89601-9", None, Category.CERTIFICAT),
        ("34112-3", None, Category.COMPTE_RENDU),
        ("PRESC-KINE", "1.2.250.1.213.1.1.4.12", Category.ORDONNANCE),
        (" 11502-2 ", None, Category.BIOLOGIE),
        ("99999-9", None, Category.AUTRE),
        ("11502-2", "1.2.3.4", Category.AUTRE),  # a LOINC-looking code of another scheme
        (None, None, Category.AUTRE),
        ("", None, Category.AUTRE),
    ],
)
def test_type_codes_map_to_categories_with_autre_as_fallback(
    code: str | None, scheme: str | None, category: Category
) -> None:
    assert category_for_type_code(code, scheme) is category
