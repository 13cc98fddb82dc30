"""The [filing] section: defaults, rules as the operator writes them, and each mistake refused
with a line naming the key (unknown keys included)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pli.config.loading import ConfigError, load_settings
from pli.config.schema import Settings


def load(tmp_path: Path, text: str) -> Settings:
    path = tmp_path / "pli.toml"
    path.write_text(text, encoding="utf-8")
    return load_settings(path, environ={})


def test_defaults() -> None:
    settings = load_settings(None, environ={})
    filing = settings.filing
    assert filing.enabled and filing.rules == []
    assert filing.retry_schedule == [10, 30, 60, 300, 900, 1800, 3600]
    assert (filing.concurrency, filing.timeout, filing.lease) == (4, 60, 300)


def test_rules_as_written_in_the_file(tmp_path: Path) -> None:
    settings = load(
        tmp_path,
        """
[filing]
retry_schedule = ["5s", "1m", "1h"]
[[filing.rules]]
name = "xdm-to-patient"
match = "ihe-xdm"
[[filing.rules]]
name = "pdf-from-labs"
match = "content-type"
types = ["Application/PDF", "image/*"]
from_domains = ["Labo.MSSante.fr"]
""",
    )
    filing = settings.filing
    assert filing.retry_schedule == [5, 60, 3600]
    xdm, pdf = filing.rules
    assert (xdm.name, xdm.match, xdm.types, xdm.from_domains) == (
        "xdm-to-patient",
        "ihe-xdm",
        [],
        [],
    )
    assert pdf.types == ["application/pdf", "image/*"]
    assert pdf.from_domains == ["labo.mssante.fr"]


def test_rules_from_the_environment() -> None:
    settings = load_settings(
        None,
        environ={
            "PLI_FILING__RULES": '[{name = "x", match = "ihe-xdm"}]',
            "PLI_FILING__CONCURRENCY": "8",
        },
    )
    assert [rule.name for rule in settings.filing.rules] == ["x"]
    assert settings.filing.concurrency == 8


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            '[[filing.rules]]\nname = "a"\nmatch = "ihe-xdm"\nmatches = 1\n',
            "unknown key filing.rules.0.matches",
        ),
        ('[[filing.rules]]\nname = "a"\nmatch = "everything"\n', "filing.rules.0.match"),
        ('[[filing.rules]]\nname = "a"\n', "filing.rules.0.match is required"),
        ('[[filing.rules]]\nname = "A b"\nmatch = "ihe-xdm"\n', "lower-case letters"),
        ('[[filing.rules]]\nname = "a"\nmatch = "content-type"\n', "needs types"),
        (
            '[[filing.rules]]\nname = "a"\nmatch = "ihe-xdm"\ntypes = ["application/pdf"]\n',
            "types is only for",
        ),
        (
            '[[filing.rules]]\nname = "a"\nmatch = "content-type"\ntypes = ["pdf"]\n',
            "'pdf': expected a media type",
        ),
        (
            '[[filing.rules]]\nname = "a"\nmatch = "ihe-xdm"\nfrom_domains = ["not a domain"]\n',
            "filing.rules.0.from_domains.0",
        ),
        (
            '[[filing.rules]]\nname = "a"\nmatch = "ihe-xdm"\n[[filing.rules]]\nname = "a"\n'
            'match = "ihe-xdm"\n',
            "rule names must be unique: a",
        ),
        ("[filing]\nretry_schedule = []\n", "at least one delay"),
        ("[filing]\nretry_schedule = [0]\n", "each above 0"),
        ("[filing]\nlease = 30\ntimeout = 60\n", "lease must be longer than filing.timeout"),
        ("[filing]\nconcurrency = 0\n", "filing.concurrency"),
        ("[filing]\nworkers = 2\n", "unknown key filing.workers"),
    ],
)
def test_mistakes_are_refused_naming_the_key(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as refused:
        load(tmp_path, text)
    assert message in str(refused.value)
    assert str(tmp_path / "pli.toml") in str(refused.value)
