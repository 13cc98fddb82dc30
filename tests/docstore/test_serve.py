"""The store as pli runs it: `pli docstore serve` alone, `pli serve` with the docstore
listener, refusals at start-up, and the OpenAPI description kept in the repository."""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from plitest.docstore import CITIZEN, PDF_BYTES, TEST_TOKEN, actor_headers
from plitest.docstore_process import docstore_config_file
from plitest.process import PliProcess, run_pli

from pli.docstore.openapi import openapi_document

ROOT = Path(__file__).resolve().parents[2]
OPENAPI_FILE = ROOT / "docs" / "docstore-openapi.json"


@pytest.fixture
def config(tmp_path: Path) -> Iterator[Path]:
    with docstore_config_file(tmp_path) as path:
        yield path


def serve(args: list[str]) -> tuple[PliProcess, dict[str, tuple[str, int]]]:
    server = PliProcess(args)
    try:
        return server, server.listening()
    except BaseException:
        server.stop()
        raise


def test_pli_docstore_serve_runs_the_store_alone_and_stops_on_sigterm(config: Path) -> None:
    server, where = serve(["docstore", "serve", "-c", str(config)])
    try:
        assert set(where) == {"docstore"}
        host, port = where["docstore"]
        base = f"http://{host}:{port}"
        assert httpx.get(f"{base}/health").json() == {"status": "ok"}
        filed = httpx.post(
            f"{base}/v1/citizens/{CITIZEN}/documents",
            headers=actor_headers(
                **{"Authorization": f"Bearer {TEST_TOKEN}", "Idempotency-Key": "k"}
            ),
            data={"title": "Ordonnance", "type_code": "57833-6"},
            files={"content": ("o.pdf", PDF_BYTES, "application/pdf")},
        )
        assert filed.status_code == 201, filed.text
        assert filed.json()["category"] == "ordonnance"
        served = httpx.get(f"{base}/openapi.json").json()
        assert served == json.loads(OPENAPI_FILE.read_text(encoding="utf-8"))
        server.signal(signal.SIGTERM)
        assert server.wait() == 0
    finally:
        server.stop()


def test_pli_docstore_serve_runs_a_listener_pli_serve_would_not(config: Path) -> None:
    server = PliProcess(
        ["docstore", "serve", "-c", str(config)],
        env={"PLI_LISTENERS__DOCSTORE__ENABLED": "false"},
    )
    try:
        assert set(server.listening()) == {"docstore"}
    finally:
        server.stop()


def test_pli_serve_starts_the_store_and_reports_its_health(config: Path) -> None:
    server, where = serve(["serve", "-c", str(config)])
    try:
        assert {"admin", "docstore"} <= set(where)
        host, port = where["admin"]
        health = httpx.get(f"http://{host}:{port}/health").json()
        assert health["checks"]["docstore"] == "ok"
        host, port = where["docstore"]
        listed = httpx.get(
            f"http://{host}:{port}/v1/citizens/{CITIZEN}/documents",
            headers={"Authorization": f"Bearer {TEST_TOKEN}"},
        )
        assert listed.json() == {"documents": [], "next_cursor": None}
    finally:
        server.stop()


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"PLI_DOCSTORE__TOKEN": ""}, "docstore.token is empty"),
        ({"PLI_LISTENERS__DOCSTORE__TLS": "implicit"}, "serves plain HTTP only"),
        (
            {
                "PLI_DOCSTORE__DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none",
                "PLI_DOCSTORE__DATABASE_SCHEMA": "",
            },
            "cannot open its database",
        ),
    ],
)
def test_a_store_that_cannot_run_stops_pli_at_start_with_one_line(
    config: Path, env: dict[str, str], message: str
) -> None:
    result = run_pli("docstore", "serve", "-c", str(config), env=env, timeout=60)
    assert result.returncode == 1, result.stderr
    (line,) = [line for line in result.stderr.splitlines() if line.startswith("pli: ")]
    assert line.startswith("pli: listener 'docstore': ")
    assert message in line


def test_no_docstore_listener_is_a_configuration_error(config: Path) -> None:
    result = run_pli(
        "docstore", "serve", "-c", str(config), env={"PLI_LISTENERS__DOCSTORE__PROTOCOL": "admin"}
    )
    assert result.returncode == 2
    assert 'no listener has protocol = "docstore"' in result.stderr


def test_a_short_token_is_refused_by_the_configuration(config: Path) -> None:
    result = run_pli("config", "check", "-c", str(config), env={"PLI_DOCSTORE__TOKEN": "short"})
    assert result.returncode == 2
    assert "docstore.token = 'short': expected at least 22 characters" in result.stderr


def test_the_openapi_file_in_the_repository_is_the_apps_description() -> None:
    assert OPENAPI_FILE.read_text(encoding="utf-8") == openapi_document(), (
        "regenerate it: pli docstore openapi > docs/docstore-openapi.json"
    )
    printed = run_pli("docstore", "openapi")
    assert printed.returncode == 0
    assert printed.stdout == openapi_document()
    description = json.loads(printed.stdout)
    assert description["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    paths = description["paths"]
    assert set(paths) == {
        "/v1/citizens/{ins}/documents",
        "/v1/citizens/{ins}/documents/{document_id}",
        "/v1/citizens/{ins}/documents/{document_id}/content",
        "/v1/citizens/{ins}/documents/{document_id}/confidentiality",
        "/health",
    }
