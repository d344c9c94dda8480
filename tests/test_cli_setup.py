"""vcpctl keygen / vc init and vcpd's refusal of broken setups (one clear line, no traceback)."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from vcpd import __version__
from vcpd.keys import load_identity, encode_public_key
from vcpctl.cli import cli


def test_versions() -> None:
    result = CliRunner().invoke(cli, ["--version"])
    assert result.exit_code == 0 and __version__ in result.output
    daemon = subprocess.run([sys.executable, "-m", "vcpd", "--version"], capture_output=True, text=True)
    assert daemon.returncode == 0 and __version__ in daemon.stdout


def test_keygen_writes_private_key_and_prints_public(tmp_path: Path) -> None:
    out = tmp_path / "me.key"
    result = CliRunner().invoke(cli, ["keygen", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert result.output.strip() == encode_public_key(load_identity(out).verify_key)
    again = CliRunner().invoke(cli, ["keygen", "--out", str(out)])
    assert again.exit_code == 1 and "refusing to overwrite" in again.output


def test_vc_init_json(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli, ["vc", "init", "--parties", "2", "--dir", str(tmp_path / "vc"), "--offline", "mascot", "--json"]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert len(data["vcp_configs"]) == 2 and data["offline"] == "mascot"
    assert Path(data["client_config"]).exists()


def test_client_commands_need_a_vc(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VCPCTL_VC", raising=False)
    result = CliRunner().invoke(cli, ["status"])
    assert result.exit_code == 2 and "VCPCTL_VC" in result.output


def _start(config: Path, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "vcpd", "start", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture
def vc_dir(tmp_path: Path) -> Path:
    result = CliRunner().invoke(cli, ["vc", "init", "--parties", "2", "--dir", str(tmp_path / "vc"), "--base-port", "7600"])
    assert result.exit_code == 0, result.output
    return tmp_path / "vc"


def _assert_one_clear_line(proc: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert proc.returncode == 2
    lines = [line for line in proc.stderr.splitlines() if line.startswith("vcpd: error:")]
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_start_refuses_malformed_config(vc_dir: Path) -> None:
    config = vc_dir / "vcp0.toml"
    config.write_text(config.read_text().replace("party = 0", "party = zero"))
    _assert_one_clear_line(_start(config), "vcp0.toml", "not valid TOML")


def test_start_refuses_missing_key_file(vc_dir: Path) -> None:
    (vc_dir / "keys" / "vcp0.key").unlink()
    _assert_one_clear_line(_start(vc_dir / "vcp0.toml"), "vcp0.key", "key file not found")


def test_start_refuses_wrong_prime(vc_dir: Path) -> None:
    config = vc_dir / "vcp0.toml"
    config.write_text(config.read_text().replace("198766463529478683931867765928436695041", "198766463529478683931867765928436695043"))
    _assert_one_clear_line(_start(config), "vc.prime")


def test_start_refuses_foreign_identity_key(vc_dir: Path) -> None:
    (vc_dir / "keys" / "vcp0.key").unlink()
    (vc_dir / "keys" / "vcp1.key").rename(vc_dir / "keys" / "vcp0.key")
    _assert_one_clear_line(_start(vc_dir / "vcp0.toml"), "does not match the public key listed for party 0")
