"""Configuration: TOML file, PLI_… environment overrides, validation errors, reference."""

from __future__ import annotations

from pathlib import Path

import pytest

from pli.config.loading import ConfigError, load_settings
from pli.config.reference import render_reference
from pli.config.units import format_duration, format_size, parse_duration, parse_size

ROOT = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "pli.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_without_a_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings(None, environ={})
    assert settings.server.data_dir == tmp_path.resolve()
    assert settings.database_url == f"sqlite+aiosqlite:///{tmp_path.resolve()}/pli.sqlite3"
    assert settings.limits.message_size == 25 * 1024 * 1024
    assert settings.domains.citizen == "patient.mssante.fr"
    assert settings.tls.profile == "mssante"
    assert set(settings.enabled_listeners()) == {
        "admin",
        "docstore",
        "mta",
        "submission",
        "submissions",
        "imap",
        "imaps",
    }


def test_file_values_units_and_relative_paths(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
[server]
data_dir = "data"
shutdown_grace = "2m"
[limits]
message_size = "10MiB"
imap_idle_timeout = 1800
[domains]
professional = ["CH-Exemple.MSSante.fr."]
[tls]
key = "/etc/pli/server.key"
""",
    )
    settings = load_settings(path, environ={})
    assert settings.server.data_dir == tmp_path / "data"
    assert settings.server.shutdown_grace == 120.0
    assert settings.limits.message_size == 10 * 1024 * 1024
    assert settings.limits.imap_idle_timeout == 1800.0
    assert settings.domains.professional == ["ch-exemple.mssante.fr"]
    assert settings.tls.certificate == tmp_path / "data" / "pki/server/server.crt"
    assert settings.tls.key == Path("/etc/pli/server.key")
    assert settings.source == path


def test_environment_overrides_win_over_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "[limits]\nmessage_size = 1000\n")
    settings = load_settings(
        path,
        environ={
            "PLI_LIMITS__MESSAGE_SIZE": "2KiB",
            "PLI_LISTENERS__ADMIN__PORT": "0",
            "PLI_DOMAINS__PROFESSIONAL": '["a.mssante.fr", "b.mssante.fr"]',
            "PLI_DATABASE__URL": "postgresql://postgres@127.0.0.1/test",
            "PLI_CONFIG": "ignored.toml",
            "PLI_TEST_DATABASE_URL": "ignored",
        },
    )
    assert settings.limits.message_size == 2048
    assert settings.listeners["admin"].port == 0
    assert settings.listeners["admin"].protocol == "admin"  # merged with the default listener
    assert settings.domains.professional == ["a.mssante.fr", "b.mssante.fr"]
    assert settings.database_url == "postgresql+asyncpg://postgres@127.0.0.1/test"


def test_a_listener_table_overrides_the_default_key_by_key_or_adds_one(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
[listeners.admin]
port = 9999
[listeners.extra]
protocol = "admin"
port = 0
enabled = false
""",
    )
    settings = load_settings(path, environ={})
    assert settings.listeners["admin"].port == 9999
    assert settings.listeners["admin"].address == "127.0.0.1"
    assert set(settings.enabled_listeners()) == {
        "admin",
        "docstore",
        "mta",
        "submission",
        "submissions",
        "imap",
        "imaps",
    }


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            '[limits]\nmessage_size = "lots"\n',
            "pli.toml: limits.message_size = 'lots': expected a size",
        ),
        ("[limits]\nmessage_sise = 10\n", "pli.toml: unknown key limits.message_sise"),
        ("[nonsense]\nx = 1\n", "pli.toml: unknown key nonsense"),
        (
            '[server]\nlog_format = "xml"\n',
            "pli.toml: server.log_format = 'xml': expected 'console' or 'json'",
        ),
        ("[listeners.admin]\nport = 70000\n", "pli.toml: listeners.admin.port = 70000: "),
        ('[listeners.new]\nprotocol = "imap"\n', "pli.toml: listeners.new.port is required"),
        ('[domains]\nprofessional = ["not a domain"]\n', "domains.professional.0 = 'not a domain'"),
        ('[domains]\nprofessional = ["patient.mssante.fr"]\n', "cannot be both"),
        ('[database]\nurl = "mysql://x"\n', "database.url = 'mysql://x': expected empty"),
        ("[limits]\nrecipients = 10\n", "limits.recipients = 10: "),
        ("[server\n", "pli.toml: not valid TOML"),
    ],
)
def test_a_bad_file_is_refused_naming_file_key_value_and_expectation(
    tmp_path: Path, text: str, expected: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as raised:
        load_settings(path, environ={})
    message = str(raised.value)
    assert expected.replace("pli.toml", str(path)) in message
    assert "Traceback" not in message


def test_a_bad_environment_value_names_the_variable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"environment PLI_LIMITS__RECIPIENTS: limits.recipients"):
        load_settings(write(tmp_path, ""), environ={"PLI_LIMITS__RECIPIENTS": "many"})
    with pytest.raises(ConfigError, match=r"unknown key limits.nope"):
        load_settings(write(tmp_path, ""), environ={"PLI_LIMITS__NOPE": "1"})
    with pytest.raises(ConfigError, match=r"expected PLI_SECTION__KEY"):
        load_settings(write(tmp_path, ""), environ={"PLI_LIMITS____X": "1"})


def test_missing_and_non_utf8_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        load_settings(tmp_path / "absent.toml", environ={})
    path = tmp_path / "pli.toml"
    path.write_bytes(b'[server]\nhostname = "\xff"\n')
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(path, environ={})


@pytest.mark.parametrize(
    ("value", "size"),
    [
        (0, 0),
        (1024, 1024),
        ("1KiB", 1024),
        ("1kb", 1000),
        ("25MiB", 25 * 1024**2),
        (" 2 GiB ", 2 * 1024**3),
    ],
)
def test_sizes(value: object, size: int) -> None:
    assert parse_size(value) == size


@pytest.mark.parametrize("value", ["", "MiB", "1.5B", "-1", "1 parsec", True, 1.5, None])
def test_bad_sizes(value: object) -> None:
    with pytest.raises(ValueError):
        parse_size(value)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (30, 30.0),
        (0.5, 0.5),
        ("250ms", 0.25),
        ("30s", 30.0),
        ("5m", 300.0),
        ("2h", 7200.0),
        ("7d", 604800.0),
    ],
)
def test_durations(value: object, seconds: float) -> None:
    assert parse_duration(value) == seconds


@pytest.mark.parametrize("value", ["soon", "5 fortnights", -1, False, [1]])
def test_bad_durations(value: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(value)


def test_units_format_back_to_what_an_operator_writes() -> None:
    assert format_size(25 * 1024**2) == "25MiB"
    assert format_size(1000) == "1000"
    assert format_duration(3600) == "1h"
    assert format_duration(90) == "90s"


def test_every_key_is_documented_and_the_reference_file_is_current() -> None:
    reference = render_reference()
    for line in reference.splitlines():
        if line.startswith("| `"):
            assert not line.rstrip().endswith("| None |"), f"undocumented key: {line}"
    committed = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    assert committed == reference, "run: pli config reference > docs/configuration.md"
