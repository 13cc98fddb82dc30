"""`pli init`, `pli config check` and `pli serve` as real processes."""

from __future__ import annotations

import json
import signal
import socket
import stat
import urllib.request
from pathlib import Path

import pytest
from plitest.process import PliProcess, run_pli


def http_get(host: str, port: int, path: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(f"http://{host}:{port}{path}", timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def test_init_writes_a_private_config_and_refuses_nothing_twice(tmp_path: Path) -> None:
    result = run_pli("init", "--dir", str(tmp_path / "d"), "--demo")
    assert result.returncode == 0, result.stderr
    config = tmp_path / "d" / "pli.toml"
    assert stat.S_IMODE(config.stat().st_mode) == 0o600  # it holds the docstore secret
    assert "hopital-demo.mssante.fr" in config.read_text()
    first = config.read_text()
    again = run_pli("init", "--dir", str(tmp_path / "d"))
    assert again.returncode == 0, again.stderr
    assert config.read_text() == first  # an existing configuration is kept
    check = run_pli("config", "check", "-c", str(config))
    assert check.returncode == 0, check.stderr
    assert check.stdout.startswith(f"OK: {config}")


def test_config_check_refuses_a_bad_file_in_one_line_naming_the_key(tmp_path: Path) -> None:
    config = tmp_path / "pli.toml"
    config.write_text('[limits]\nmessage_size = "huge"\n')
    result = run_pli("config", "check", "-c", str(config))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"pli: {config}: limits.message_size = 'huge': expected a size")


def test_config_check_json_prints_effective_settings(tmp_path: Path) -> None:
    config = tmp_path / "pli.toml"
    config.write_text("[limits]\nmessage_size = 1024\n")
    result = run_pli(
        "config", "check", "-c", str(config), "--json", env={"PLI_LIMITS__RECIPIENTS": "200"}
    )
    assert result.returncode == 0, result.stderr
    effective = json.loads(result.stdout)
    assert effective["limits"]["message_size"] == "1KiB"
    assert effective["limits"]["recipients"] == 200


def test_config_reference_is_printed() -> None:
    result = run_pli("config", "reference")
    assert result.returncode == 0
    assert "| `message_size` | size (bytes) |" in result.stdout


def test_serve_dev_starts_answers_health_and_metrics_and_stops_on_sigterm(tmp_path: Path) -> None:
    server = PliProcess(
        ["serve", "--dev"],
        cwd=tmp_path,
        env={
            "PLI_LISTENERS__ADMIN__PORT": "0",
            "PLI_LISTENERS__DOCSTORE__PORT": "0",
            "PLI_LISTENERS__MTA__PORT": "0",
            "PLI_LISTENERS__SUBMISSION__PORT": "0",
            "PLI_LISTENERS__SUBMISSIONS__PORT": "0",
            "PLI_LISTENERS__IMAP__PORT": "0",
            "PLI_LISTENERS__IMAPS__PORT": "0",
            "PLI_LISTENERS__WEBMAIL__PORT": "0",
        },
    )
    try:
        where = server.listening()
        host, port = where["admin"]
        status, body = http_get(host, port, "/health")
        assert status == 200
        assert json.loads(body)["status"] == "ok"
        status, body = http_get(host, port, "/metrics")
        assert status == 200
        assert b"# TYPE process_cpu_seconds_total counter" in body
        assert (tmp_path / "pli-dev" / "pli.toml").exists()
        server.signal(signal.SIGTERM)
        assert server.wait() == 0
        assert server.wait_for("stopped")
    finally:
        server.stop()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_serve_stops_cleanly_on_either_signal(tmp_path: Path, signum: int) -> None:
    run_pli("init", "--dir", str(tmp_path))
    server = PliProcess(
        ["serve", "-c", str(tmp_path / "pli.toml")],
        env={
            "PLI_LISTENERS__ADMIN__PORT": "0",
            "PLI_LISTENERS__DOCSTORE__PORT": "0",
            "PLI_LISTENERS__MTA__PORT": "0",
            "PLI_LISTENERS__SUBMISSION__PORT": "0",
            "PLI_LISTENERS__SUBMISSIONS__PORT": "0",
            "PLI_LISTENERS__IMAP__PORT": "0",
            "PLI_LISTENERS__IMAPS__PORT": "0",
            "PLI_LISTENERS__WEBMAIL__PORT": "0",
        },
    )
    try:
        server.listening()
        server.signal(signum)
        assert server.wait() == 0
        assert server.wait_for("stopped")
    finally:
        server.stop()


def test_serve_reports_a_taken_port_in_one_line_and_exits_1(tmp_path: Path) -> None:
    run_pli("init", "--dir", str(tmp_path))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_pli(
            "serve", "-c", str(tmp_path / "pli.toml"), env={"PLI_LISTENERS__ADMIN__PORT": str(port)}
        )
    assert result.returncode == 1
    assert (
        f"pli: listener 'admin' cannot bind 127.0.0.1:{port}: Address already in use"
        in result.stderr
    )


def test_serve_refuses_a_bad_config_before_binding_anything(tmp_path: Path) -> None:
    config = tmp_path / "pli.toml"
    config.write_text("[listeners.admin]\nprot = 1\n")
    result = run_pli("serve", "-c", str(config))
    assert result.returncode == 2
    assert "unknown key listeners.admin.prot" in result.stderr
