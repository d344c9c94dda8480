"""End to end: real `vcpd` processes, real websockets on 127.0.0.1, real SQLite files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from vcharness import LocalVc, make_local_vc

pytestmark = pytest.mark.slow


@pytest.fixture
def vc(tmp_path: Path) -> Iterator[LocalVc]:
    local = make_local_vc(tmp_path, n_parties=3)
    try:
        local.wait_healthy()
        yield local
    finally:
        codes = local.stop_all()
        assert all(code == 0 for code in codes.values()), f"unclean shutdown: {codes}"


def vcpctl(vc: LocalVc, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "vcpctl", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "VCPCTL_VC": str(vc.client_config)},
    )
    if check:
        assert result.returncode == 0, result.stderr + result.stdout
    return result


def test_status_shows_every_vcp_linked(vc: LocalVc) -> None:
    data = json.loads(vcpctl(vc, "status", "--json").stdout)
    assert [v["party"] for v in data["vcps"]] == [0, 1, 2]
    for entry in data["vcps"]:
        assert entry["reachable"] is True
        assert entry["offline"] == "dealer" and entry["insecure_offline"] is True
        assert entry["version"]
        others = {str(p) for p in range(3) if p != entry["party"]}
        assert entry["links"] == {p: "up" for p in others}
    text = vcpctl(vc, "status").stdout
    assert "dealer (INSECURE)" in text


def test_killed_vcp_is_reported_down_quickly_and_relinks(vc: LocalVc) -> None:
    vc.stop(1)
    started = time.monotonic()
    while True:
        result = vcpctl(vc, "status", "--json", check=False)
        data = json.loads(result.stdout)
        by_party = {v["party"]: v for v in data["vcps"]}
        if (
            not by_party[1]["reachable"]
            and by_party[0]["links"]["1"] == "down"
            and by_party[2]["links"]["1"] == "down"
        ):
            break
        assert time.monotonic() - started < 5, data
    assert result.returncode == 1
    vc.start(1)
    vc.wait_healthy(timeout=30)
    assert vcpctl(vc, "status", "--wait", "10").returncode == 0


def test_second_daemon_on_same_data_dir_is_refused(vc: LocalVc) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "vcpd", "start", "--config", str(vc.directory / "vcp0.toml")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "another vcpd is already running" in result.stderr
    assert "Traceback" not in result.stderr
